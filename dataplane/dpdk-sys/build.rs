//! Build script: finds the system DPDK with pkg-config, compiles the C shim for DPDK's
//! static-inline functions, and runs bindgen over a tight allowlist.
//!
//! Failures that an operator can fix (DPDK or libclang missing) end the build with one
//! `cargo::error` line naming the Debian packages, not pages of compiler output.

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const MIN_VERSION: &str = "22.11";
/// The LTS releases fastlag is built and tested against (the shim covers their differences).
const SUPPORTED: &str = "22.11, 23.11 and 24.11";
const PACKAGES_HINT: &str = "install it with `apt-get install dpdk libdpdk-dev pkg-config` \
     (or run scripts/setup.sh as root)";

fn main() -> ExitCode {
    println!("cargo::rustc-check-cfg=cfg(fl_mbuf_unions)");
    println!("cargo::rerun-if-changed=csrc/shim.h");
    println!("cargo::rerun-if-changed=csrc/shim.c");
    println!("cargo::rerun-if-changed=csrc/bond.h");
    println!("cargo::rerun-if-changed=csrc/bond.c");
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    match build() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // `cargo::error` makes cargo fail the build with exactly this line.
            println!("cargo::error={message}");
            ExitCode::SUCCESS
        }
    }
}

fn pkg_config(args: &[&str]) -> Result<String, String> {
    let program = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(program).args(args).output().map_err(|e| {
        format!(
            "pkg-config could not be run ({e}); DPDK >= {MIN_VERSION} is required: {PACKAGES_HINT}"
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "DPDK >= {MIN_VERSION} (pkg-config module libdpdk) was not found; {PACKAGES_HINT}"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn build() -> Result<(), String> {
    pkg_config(&["--exists", "libdpdk"])?;
    let version = pkg_config(&["--modversion", "libdpdk"])?;
    if pkg_config(&["--atleast-version", MIN_VERSION, "libdpdk"]).is_err() {
        return Err(format!(
            "DPDK {version} is too old: fastlag supports DPDK {SUPPORTED} (LTS); {PACKAGES_HINT}"
        ));
    }
    let lts = ["22.11", "23.11", "24.11"]
        .iter()
        .any(|v| version == *v || version.starts_with(&format!("{v}.")));
    if !lts {
        println!(
            "cargo::warning=DPDK {version} is not one of the releases fastlag is tested with \
             ({SUPPORTED}); building anyway"
        );
    }
    // `fastlag --version` names the DPDK it was built against (next to rte_version()).
    println!("cargo::rustc-env=FL_DPDK_BUILD_VERSION={version}");
    let cflags: Vec<String> = split_flags(&pkg_config(&["--cflags", "libdpdk"])?);
    let libs: Vec<String> = split_flags(&pkg_config(&["--libs", "libdpdk"])?);

    // Shared linking: Debian's PMDs are plugins that EAL loads from its plugin directory.
    for flag in &libs {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo::rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo::rustc-link-lib=dylib={lib}");
        }
    }
    // rte_eth_from_rings() (in-process back-to-back links) lives in the ring PMD's library.
    println!("cargo::rustc-link-lib=dylib=rte_net_ring");
    // The bonding PMD's 802.3ad introspection, for the test peer that uses DPDK's own
    // bonding as an independent LACP implementation (feature `bonding`; fastlag never links it).
    let bonding = env::var_os("CARGO_FEATURE_BONDING").is_some();
    if bonding {
        println!("cargo::rustc-link-lib=dylib=rte_net_bond");
    }
    println!("cargo::metadata=version={version}");

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c").opt_level(2).warnings(true);
    if bonding {
        shim.file("csrc/bond.c");
    }
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.try_compile("fastlag_dpdk_shim")
        .map_err(|e| format!("compiling the DPDK C shim failed: {e}"))?;

    generate_bindings(&cflags, bonding)
}

/// Splits pkg-config output, keeping `-include FILE` together.
fn split_flags(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(file) = words.next() {
                out.push(format!("-include{file}"));
            }
        } else {
            out.push(w.to_string());
        }
    }
    out
}

fn generate_bindings(cflags: &[String], bonding: bool) -> Result<(), String> {
    let header = if bonding {
        "csrc/bond.h"
    } else {
        "csrc/shim.h"
    };
    let mut builder = bindgen::Builder::default()
        .header(header)
        .clang_args(cflags)
        .rust_edition(bindgen::RustEdition::Edition2021)
        .default_enum_style(bindgen::EnumVariation::NewType {
            is_bitfield: false,
            is_global: false,
        })
        .derive_default(true)
        .derive_debug(true)
        .impl_debug(false)
        .generate_comments(false)
        .layout_tests(true)
        .clang_macro_fallback()
        .opaque_type("rte_mempool")
        .opaque_type("rte_ring")
        .opaque_type("rte_flow")
        .opaque_type("rte_eth_dev")
        .opaque_type("rte_eth_dev_data")
        .opaque_type("rte_mbuf_sched")
        .opaque_type("rte_mbuf_ext_shared_info")
        .opaque_type("rte_lpm")
        .opaque_type("rte_lpm6")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .parse_callbacks(Box::new(EnumDefault));

    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }

    // bindgen panics when libclang is missing; turn that into one actionable line.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    std::panic::set_hook(previous_hook);
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(format!("bindgen could not read the DPDK headers: {e}")),
        Err(_) => {
            return Err("bindgen could not load libclang; install it with \
                 `apt-get install libclang-dev` (or run scripts/setup.sh)"
                .to_string())
        }
    };
    // DPDK 24.11 moved rte_mbuf's fields into anonymous unions: src/mbuf_fields.rs picks
    // the Rust path to each from this flag, set from what bindgen generated (the layout
    // itself, not a version number, decides).
    // Whitespace dropped: the text is formatted only where rustfmt is installed.
    let text: String = bindings
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mbuf = text
        .split("pubstructrte_mbuf{")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .ok_or_else(|| "bindgen generated no rte_mbuf".to_string())?;
    if !mbuf.contains("pubdata_off:") {
        println!("cargo::rustc-cfg=fl_mbuf_unions");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .map_err(|e| format!("writing bindings failed: {e}"))
}

/// NewType enums get `Default` (the zero value), so zero-initialised DPDK configuration
/// structs are expressible without `mem::zeroed` (a zeroed Rust enum would be UB).
#[derive(Debug)]
struct EnumDefault;

impl bindgen::callbacks::ParseCallbacks for EnumDefault {
    fn add_derives(&self, info: &bindgen::callbacks::DeriveInfo<'_>) -> Vec<String> {
        if info.kind == bindgen::callbacks::TypeKind::Enum {
            vec!["Default".to_string()]
        } else {
            Vec::new()
        }
    }
}

/// Functions we call. Static-inline DPDK functions are reached through the fl_* shim.
const FUNCTIONS: &[&str] = &[
    "fl_.*",
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_eal_get_runtime_dir",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_strerror",
    "rte_socket_id",
    "rte_get_tsc_hz",
    "rte_version",
    "rte_pktmbuf_pool_create",
    "rte_pktmbuf_free_bulk",
    "rte_mempool_free",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_ring_create",
    "rte_ring_free",
    "rte_eth_from_rings",
    "rte_eth_dev_configure",
    "rte_eth_dev_info_get",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_is_valid_port",
    "rte_eth_dev_set_mtu",
    "rte_eth_dev_set_link_up",
    "rte_eth_dev_set_link_down",
    "rte_eth_dev_get_mtu",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_eth_link_speed_to_str",
    "rte_eth_macaddr_get",
    "rte_eth_dev_default_mac_addr_set",
    "rte_eth_dev_mac_addr_add",
    "rte_eth_promiscuous_enable",
    "rte_eth_promiscuous_disable",
    "rte_eth_promiscuous_get",
    "rte_eth_allmulticast_enable",
    "rte_eth_allmulticast_disable",
    "rte_eth_allmulticast_get",
    "rte_eth_dev_callback_register",
    "rte_eth_dev_callback_unregister",
    "rte_flow_validate",
    "rte_flow_create",
    "rte_flow_destroy",
    "rte_flow_flush",
    // LPM (the router's benchmark reference; lookups of rte_lpm go through fl_lpm_*).
    "rte_lpm_create",
    "rte_lpm_add",
    "rte_lpm_delete",
    "rte_lpm_free",
    "rte_lpm6_create",
    "rte_lpm6_free",
];

const TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_eth_fp_ops",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_eth_stats",
    "rte_eth_link",
    "rte_ether_addr",
    "rte_ether_hdr",
    "rte_vlan_hdr",
    "rte_eth_event_type",
    "rte_flow_attr",
    "rte_flow_item",
    "rte_flow_item_type",
    "rte_flow_item_eth",
    "rte_flow_action",
    "rte_flow_action_type",
    "rte_flow_action_queue",
    "rte_flow_error",
    "fl_layout",
    "fl_bond_member_info",
    "fl_link",
    "fl_mbuf_seen",
    "rte_lpm_config",
    "rte_lpm6_config",
];

const VARS: &[&str] = &[
    "RTE_ETH_SPEED_NUM_.*",
    "RTE_ETH_LINK_.*",
    "RTE_ETH_RX_OFFLOAD_.*",
    "RTE_ETH_TX_OFFLOAD_.*",
    "RTE_ETH_MQ_.*",
    "RTE_ETH_RSS_.*",
    "RTE_ETHER_.*",
    "RTE_MBUF_DEFAULT_.*",
    "RTE_MBUF_F_.*",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MAX_ETHPORTS",
    "RTE_MAX_LCORE",
    "RTE_MAX_MEM_MB",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "SOCKET_ID_ANY",
    "RING_F_.*",
    "LCORE_ID_ANY",
    "rte_eth_fp_ops",
];
