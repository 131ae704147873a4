#!/usr/bin/env bash
# Bounded coverage-guided fuzz runs of the parsers (libFuzzer through cargo-fuzz), as CI runs
# them: each target for FUZZ_SECONDS (default 20) on the stable toolchain (RUSTC_BOOTSTRAP=1
# enables the sanitizer-coverage flags cargo-fuzz needs). A crash, a panic or a failed
# assertion fails the script and leaves the input in <crate>/fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [crate:target ...]   (default: every target below)
# Longer runs for humans: FUZZ_SECONDS=600 scripts/fuzz.sh lacp:engine_frames
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-20}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(conf:parse lacp:parse lacp:engine_frames)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (crates.io, its own lockfile)" >&2
  cargo install --locked --quiet cargo-fuzz
fi

dir_of() {
  case "$1" in
    conf) echo conf ;;
    lacp) echo control/lacp ;;
    *) echo "fuzz.sh: unknown crate $1" >&2; exit 2 ;;
  esac
}

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$root/target/fuzz"
summary="$root/target/fuzz/summary.txt"
mkdir -p "$root/target/fuzz"
: > "$summary"
for t in "${targets[@]}"; do
  crate=${t%%:*} name=${t#*:}
  dir=$(dir_of "$crate")
  corpus="$root/target/fuzz/corpus/$crate-$name"
  seeds="$root/target/fuzz/seeds/$crate-$name"
  rm -rf "$seeds"; mkdir -p "$corpus" "$seeds"
  # Seeds: the configs we ship and the broken-config corpus (conf); nothing for the LACP
  # targets, whose inputs libFuzzer finds from the comparisons in the parser.
  if [ "$crate" = conf ]; then
    cp conf/*.toml conf/tests/broken/*.toml "$seeds"/ 2>/dev/null || true
  fi
  log="$root/target/fuzz/$crate-$name.log"
  echo "fuzz.sh: $crate:$name for ${seconds}s" >&2
  # -s none: the targets are safe Rust (a sanitizer only slows them); debug assertions on.
  if ! (cd "$dir" && cargo fuzz run --sanitizer none --debug-assertions "$name" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz.sh: $crate:$name FAILED (input in $dir/fuzz/artifacts/$name/)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  echo "$crate:$name ${seconds}s executions=${execs:-?} coverage=${cov:-?} corpus=$(ls "$corpus" | wc -l)" | tee -a "$summary" >&2
done
