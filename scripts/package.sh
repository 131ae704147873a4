#!/usr/bin/env bash
# Builds the Debian package of fastlag for the release this machine runs:
#   ./scripts/package.sh                   # cargo build --release, then target/package/fastlag_<version>_<arch>.deb
#   ./scripts/package.sh --binary PATH --out DIR   # package an already built binary (the package test)
# Contents: /usr/bin/fastlag, the systemd unit (packaging/fastlag.service),
# /etc/fastlag/fastlag.toml (a conffile: the commented example conf/bond-lacp.toml),
# /etc/default/fastlag (conffile), the man pages and bash/zsh/fish completions that
# `fastlag generate` writes from the clap definitions and the README. Depends: the
# libraries the binary links (dpkg-shlibdeps) plus the DPDK drivers EAL loads as plugins
# (ring mempool, af_packet, memif), named by the packages that hold them here. The test
# tools (fastlag-gen, fastlag-bond-peer) are not packaged. Needs dpkg-dev, gzip, binutils.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=""
out="$root/target/package"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "package.sh: unknown argument $1 (--binary PATH, --out DIR)" >&2; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  . scripts/env.sh
  # The same build as scripts/test.sh (one feature set: no rebuild between the two).
  cargo build --release --workspace --bins --quiet
  bin="$root/target/release/fastlag"
fi
bin=$(realpath "$bin")

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/fastlag-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/fastlag"

install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/lib/systemd/system" "$pkg/etc/fastlag" \
  "$pkg/etc/default" "$pkg/usr/share/man/man5" "$pkg/usr/share/man/man8" \
  "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
  "$pkg/usr/share/fish/vendor_completions.d" "$pkg/usr/share/doc/fastlag"
# The release profile keeps line tables (debug = 1) for profiling; the package does not.
strip --strip-debug -o "$pkg/usr/bin/fastlag" "$bin"
chmod 0755 "$pkg/usr/bin/fastlag"
install -m 0644 packaging/fastlag.service "$pkg/usr/lib/systemd/system/fastlag.service"
install -m 0644 conf/bond-lacp.toml "$pkg/etc/fastlag/fastlag.toml"
cat >"$pkg/etc/default/fastlag" <<'EOF'
# Environment of fastlag.service (EnvironmentFile=-/etc/default/fastlag).
# Extra arguments to `fastlag run`, e.g. a status file or a log level:
#FASTLAG_OPTS="--status /run/fastlag/status.json --log-level debug"
# Log filter (overrides --log-level), e.g. RUST_LOG=info
#RUST_LOG=info
EOF
chmod 0644 "$pkg/etc/default/fastlag"

gen=$(mktemp -d "$stage/gen.XXXXXX")
"$pkg/usr/bin/fastlag" generate man "$gen/man" >/dev/null
"$pkg/usr/bin/fastlag" generate completions "$gen/completions" >/dev/null
for page in "$gen"/man/*; do
  section=${page##*.}
  gzip -9n <"$page" >"$pkg/usr/share/man/man$section/$(basename "$page").gz"
done
install -m 0644 "$gen/completions/fastlag.bash" "$pkg/usr/share/bash-completion/completions/fastlag"
install -m 0644 "$gen/completions/_fastlag" "$pkg/usr/share/zsh/vendor-completions/_fastlag"
install -m 0644 "$gen/completions/fastlag.fish" "$pkg/usr/share/fish/vendor_completions.d/fastlag.fish"
rm -rf "$gen"
gzip -9n <README.md >"$pkg/usr/share/doc/fastlag/README.md.gz"
cat >"$pkg/usr/share/doc/fastlag/copyright" <<EOF
fastlag, by the fastlag developers.
License: $(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
EOF
chmod -R u=rwX,go=rX "$pkg/usr" "$pkg/etc"

# Depends: what the binary links (dpkg-shlibdeps reads the DPDK packages' shlibs files),
# and the packages holding the DPDK drivers EAL loads at run time rather than links.
shlib=$(mktemp -d "$stage/shlibdeps.XXXXXX")
mkdir -p "$shlib/debian"
printf 'Source: fastlag\n\nPackage: fastlag\nArchitecture: any\n' >"$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O "$pkg/usr/bin/fastlag" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
if [ -z "$depends" ]; then
  # No shlibs information: the packages that hold the linked libraries, unversioned.
  depends=$(ldd "$pkg/usr/bin/fastlag" | awk '/=> \//{print $3}' |
    while read -r lib; do dpkg -S "$(realpath "$lib")" 2>/dev/null || dpkg -S "$lib"; done |
    cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
fi
[ -n "$depends" ] || { echo "package.sh: could not derive the dependencies" >&2; exit 1; }
libdir=$(dirname "$(realpath "$(ldd "$pkg/usr/bin/fastlag" | awk '/librte_eal/{print $3}')")")
for driver in librte_mempool_ring librte_net_af_packet librte_net_memif; do
  so=$(ls "$libdir/$driver".so.* 2>/dev/null | head -n1)
  [ -n "$so" ] || { echo "package.sh: DPDK driver $driver not installed in $libdir" >&2; exit 1; }
  depends="$depends, $(dpkg -S "$so" | cut -d: -f1 | head -n1)"
done

cat >"$pkg/DEBIAN/control" <<EOF
Package: fastlag
Version: $version
Architecture: $arch
Maintainer: fastlag developers <fastlag@example.invalid>
Section: net
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $depends
Recommends: dpdk
Description: userspace DPDK gateway fast path with native 802.1AX LACP
 Poll-mode workers on pinned cores forward between DPDK ports; a control thread in the
 same process runs IEEE 802.1AX (802.3ad) link aggregation next to the ports it speaks
 for. Includes the systemd unit (readiness, status, watchdog), man pages and completions.
 The dpdk package (recommended) brings dpdk-devbind.py and the NIC drivers.
EOF
printf '/etc/fastlag/fastlag.toml\n/etc/default/fastlag\n' >"$pkg/DEBIAN/conffiles"
# systemd: reload unit files after install and removal; the service is not started or
# enabled by the package (it needs a configuration for this machine's NICs first).
cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
EOF
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop fastlag.service >/dev/null 2>&1 || true
fi
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm" "$pkg/DEBIAN/prerm"

mkdir -p "$out"
deb="$out/fastlag_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
