//! Ethernet ports: lookup, configure -> start -> stop -> close, per-queue handles owned by
//! one thread each, statistics, link status and addressing.

use std::cell::Cell;
use std::ffi::c_void;
use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use super::eal::Eal;
use super::error::DpdkError;
use super::mbuf::Burst;
use super::mempool::Mempool;

/// A DPDK ethdev port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A queue index on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub u16);

/// MAC addresses, link speed and duplex are fastlag's shared value types. DPDK has a single
/// duplex bit; it means nothing when the speed is unknown, so duplex is `Unknown` then.
pub use types::{Duplex, MacAddr, Speed};

/// Link state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Carrier up.
    pub up: bool,
    /// Negotiated speed, possibly unknown.
    pub speed: Speed,
    /// Duplex, possibly unknown.
    pub duplex: Duplex,
    /// Autonegotiation enabled.
    pub autoneg: bool,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.up {
            return write!(f, "down");
        }
        match self.speed {
            Speed::Unknown => write!(f, "up, speed unknown")?,
            Speed::Mbps(m) if m % 1000 == 0 => write!(f, "up, {} Gb/s", m / 1000)?,
            Speed::Mbps(m) => write!(f, "up, {m} Mb/s")?,
        }
        match self.duplex {
            Duplex::Full => write!(f, ", full duplex"),
            Duplex::Half => write!(f, ", half duplex"),
            Duplex::Unknown => write!(f, ", duplex unknown"),
        }
    }
}

/// Port counters as the PMD reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped by the hardware/PMD because no RX descriptor was free.
    pub rx_missed: u64,
    /// Erroneous received packets.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortSetup {
    /// Receive queues (one per worker, plus any the control thread owns).
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue (adjusted to the PMD's limits).
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue.
    pub tx_descriptors: u16,
    /// MTU to set; `None` keeps the PMD's.
    pub mtu: Option<u16>,
    /// Pool receive buffers come from.
    pub pool: Arc<Mempool>,
}

#[derive(Debug)]
struct PortInner {
    id: PortId,
    name: String,
    /// The PMD delivers a symmetric Toeplitz RSS hash over IP addresses and TCP/UDP ports
    /// in every mbuf.
    rss_hash_l4: bool,
}

/// The symmetric Toeplitz key (one 16-bit pattern repeated): swapping source and
/// destination (addresses, ports) gives the same hash, so both directions of a flow land
/// on the same queue and the same bond member (Woo and Park, 2012).
static SYMMETRIC_RSS_KEY: [u8; 52] = {
    let mut k = [0u8; 52];
    let mut i = 0;
    while i < 52 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// A configured port with one handle per queue, as [`Port::configure`] returns it.
pub type ConfiguredPort = (Port<Configured>, Vec<RxQueue>, Vec<TxQueue>);

/// Marker: configured, not started.
#[derive(Debug)]
pub enum Configured {}
/// Marker: started (queues are live).
#[derive(Debug)]
pub enum Started {}

/// A port in lifecycle state `S` ([`Configured`] or [`Started`]).
///
/// Queue handles keep the port's shared part alive; [`Port::close`] refuses while any
/// queue handle still exists, so no thread can poll a closed port.
#[derive(Debug)]
pub struct Port<S> {
    inner: Arc<PortInner>,
    /// Cloned into every queue handle: its count tells whether queues are still alive.
    queues: Arc<()>,
    pool: Arc<Mempool>,
    _state: PhantomData<S>,
}

/// A cheap, shareable handle for reading a port's state from any thread (stats, link,
/// MAC). It cannot touch queues.
#[derive(Debug, Clone)]
pub struct PortInfo {
    inner: Arc<PortInner>,
}

/// Finds a probed port by its DPDK device name (a PCI address or the vdev name).
pub fn port_by_name(_eal: &Eal, name: &str) -> Result<PortId, DpdkError> {
    let c =
        CString::new(name).map_err(|_| DpdkError::Invalid(format!("bad port name {name:?}")))?;
    let mut id = 0u16;
    // SAFETY: valid C string and out pointer; EAL is initialised.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
    DpdkError::check(&format!("looking up DPDK port {name:?}"), ret)?;
    Ok(PortId(id))
}

fn dev_info(id: PortId) -> Result<dpdk_sys::rte_eth_dev_info, DpdkError> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: out pointer to a properly sized, zero-initialised struct.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id.0, &mut info) };
    DpdkError::check("rte_eth_dev_info_get", ret)?;
    Ok(info)
}

/// What a device can do, as far as fastlag's setup cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Most RX queues.
    pub max_rx_queues: u16,
    /// Most TX queues.
    pub max_tx_queues: u16,
    /// RSS redirection table size (0: no RSS).
    pub reta_size: u16,
}

/// Limits of port `id`.
pub fn device_limits(_eal: &Eal, id: PortId) -> Result<DeviceLimits, DpdkError> {
    device_limits_of(id)
}

fn device_limits_of(id: PortId) -> Result<DeviceLimits, DpdkError> {
    let info = dev_info(id)?;
    Ok(DeviceLimits {
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        reta_size: info.reta_size,
    })
}

/// An rte_flow rule on a port. Destroy it before closing the port ([`FlowRule::destroy`]);
/// closing the port also removes it.
#[derive(Debug)]
pub struct FlowRule {
    port: PortId,
    ptr: std::ptr::NonNull<dpdk_sys::rte_flow>,
}

// SAFETY: a flow handle is an opaque token DPDK accepts from any thread for destroy.
unsafe impl Send for FlowRule {}

impl FlowRule {
    /// Removes the rule.
    pub fn destroy(self) -> Result<(), DpdkError> {
        // SAFETY: the rule was created on this port and is destroyed once (self is moved).
        let ret = unsafe { dpdk_sys::fl_flow_destroy(self.port.0, self.ptr.as_ptr()) };
        DpdkError::check("rte_flow_destroy", ret).map(drop)
    }
}

fn flow_message(buf: &[std::ffi::c_char]) -> String {
    // SAFETY: the shim NUL-terminates within the buffer (snprintf), which starts zeroed.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

impl<S> Port<S> {
    /// Checks whether the PMD can steer untagged frames of `ethertype` to RX `queue`.
    pub fn validate_ethertype_steering(&self, ethertype: u16, queue: u16) -> Result<(), DpdkError> {
        let mut msg = [0 as std::ffi::c_char; 256];
        // SAFETY: valid port; msg is a writable buffer of the given length.
        let ret = unsafe {
            dpdk_sys::fl_flow_ethertype_validate(
                self.inner.id.0,
                ethertype,
                queue,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        if ret < 0 {
            return Err(DpdkError::Call {
                op: format!("rte_flow_validate (EtherType {ethertype:#06x} to queue {queue})"),
                errno: -ret,
                text: flow_message(&msg),
            });
        }
        Ok(())
    }
}

impl Port<Started> {
    /// Steers untagged frames of `ethertype` to RX `queue` (rte_flow).
    pub fn steer_ethertype(&self, ethertype: u16, queue: u16) -> Result<FlowRule, DpdkError> {
        let mut msg = [0 as std::ffi::c_char; 256];
        let mut err = 0;
        // SAFETY: valid started port; err and msg are writable.
        let flow = unsafe {
            dpdk_sys::fl_flow_ethertype_create(
                self.inner.id.0,
                ethertype,
                queue,
                &mut err,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        match std::ptr::NonNull::new(flow) {
            Some(ptr) => Ok(FlowRule {
                port: self.inner.id,
                ptr,
            }),
            None => Err(DpdkError::Call {
                op: format!("rte_flow_create (EtherType {ethertype:#06x} to queue {queue})"),
                errno: -err,
                text: flow_message(&msg),
            }),
        }
    }

    /// Points the whole RSS redirection table at queues `0..queues`, so that further
    /// queues receive only what a flow rule steers there.
    pub fn restrict_rss(&self, queues: u16) -> Result<(), DpdkError> {
        let limits = device_limits_of(self.inner.id)?;
        // SAFETY: valid port; the shim bounds reta_size by its own table size.
        let ret =
            unsafe { dpdk_sys::fl_rss_reta_spread(self.inner.id.0, limits.reta_size, queues) };
        DpdkError::check(
            &format!("rte_eth_dev_rss_reta_update on port {}", self.name()),
            ret,
        )
        .map(drop)
    }
}

impl Port<Configured> {
    /// Configures port `id` with `setup`: queues, descriptors, MTU, RSS when there is more
    /// than one receive queue. Returns the port and one handle per queue.
    pub fn configure(
        _eal: &Eal,
        id: PortId,
        name: &str,
        setup: &PortSetup,
    ) -> Result<ConfiguredPort, DpdkError> {
        let info = dev_info(id)?;
        let what = |op: &str| format!("{op} on port {name}");
        if setup.rx_queues > info.max_rx_queues || setup.tx_queues > info.max_tx_queues {
            return Err(DpdkError::Invalid(format!(
                "port {name}: the device supports at most {} rx / {} tx queues, {} rx / {} tx are needed \
                 (one per worker, plus the control thread's); use fewer worker_cores",
                info.max_rx_queues, info.max_tx_queues, setup.rx_queues, setup.tx_queues
            )));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        // RSS over addresses and TCP/UDP ports with a symmetric key: it spreads flows over
        // the workers' queues, and where the PMD also writes the hash into each mbuf
        // (RSS_HASH offload) the bond distributor uses it instead of hashing in software.
        let l4 = (dpdk_sys::RTE_ETH_RSS_IP | dpdk_sys::RTE_ETH_RSS_UDP | dpdk_sys::RTE_ETH_RSS_TCP)
            as u64;
        let hf = l4 & info.flow_type_rss_offloads;
        let hash_offload = dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH as u64;
        let delivers_hash = info.rx_offload_capa & hash_offload != 0;
        let key_len = info.hash_key_size as usize;
        let mut rss_hash_l4 = false;
        if hf != 0 && (setup.rx_queues > 1 || delivers_hash) {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
            if (1..=SYMMETRIC_RSS_KEY.len()).contains(&key_len) {
                // DPDK copies the key during configure; it is only read.
                conf.rx_adv_conf.rss_conf.rss_key = SYMMETRIC_RSS_KEY.as_ptr() as *mut u8;
                conf.rx_adv_conf.rss_conf.rss_key_len = key_len as u8;
                if delivers_hash {
                    conf.rxmode.offloads |= hash_offload;
                    // TCP and UDP ports covered for both families, or the hash is not
                    // layer3+4's.
                    let ports = (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP
                        | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP
                        | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP
                        | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP)
                        as u64;
                    rss_hash_l4 = hf & ports == ports;
                }
            }
        }
        // Every mbuf comes from one pool with refcount 1, which is what fast free needs.
        let fast_free = dpdk_sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE as u64;
        if info.tx_offload_capa & fast_free != 0 {
            conf.txmode.offloads |= fast_free;
        }
        // SAFETY: valid port id (from lookup) and a fully initialised configuration.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_configure(id.0, setup.rx_queues, setup.tx_queues, &conf)
        };
        DpdkError::check(&what("rte_eth_dev_configure"), ret)?;

        let (mut nrx, mut ntx) = (setup.rx_descriptors, setup.tx_descriptors);
        // SAFETY: valid port id and out pointers.
        let ret = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id.0, &mut nrx, &mut ntx) };
        DpdkError::check(&what("rte_eth_dev_adjust_nb_rx_tx_desc"), ret)?;

        if let Some(mtu) = setup.mtu {
            let mut current = 0u16;
            // SAFETY: valid port id and out pointer.
            let got = unsafe { dpdk_sys::rte_eth_dev_get_mtu(id.0, &mut current) };
            if got != 0 || current != mtu {
                // SAFETY: valid port id.
                let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id.0, mtu) };
                if ret == -(libc_enotsup()) {
                    tracing::warn!(
                        port = name,
                        mtu,
                        "the PMD cannot set the MTU; keeping its own"
                    );
                } else {
                    DpdkError::check(&what(&format!("setting MTU {mtu}")), ret)?;
                }
            }
        }

        // SAFETY: valid port id.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id.0) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        let mut txconf = info.default_txconf;
        txconf.offloads = conf.txmode.offloads;
        for q in 0..setup.rx_queues {
            // SAFETY: valid port, queue < configured count, pool pointer valid while the
            // port exists (the port keeps an Arc to the pool).
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id.0,
                    q,
                    nrx,
                    socket,
                    std::ptr::null(),
                    setup.pool.as_ptr(),
                )
            };
            DpdkError::check(&what(&format!("setting up rx queue {q}")), ret)?;
        }
        for q in 0..setup.tx_queues {
            // SAFETY: valid port and queue index; txconf derived from the device defaults.
            let ret = unsafe { dpdk_sys::rte_eth_tx_queue_setup(id.0, q, ntx, socket, &txconf) };
            DpdkError::check(&what(&format!("setting up tx queue {q}")), ret)?;
        }

        let inner = Arc::new(PortInner {
            id,
            name: name.to_string(),
            rss_hash_l4,
        });
        let queues = Arc::new(());
        let rx = (0..setup.rx_queues)
            .map(|q| RxQueue {
                port: id,
                queue: QueueId(q),
                _alive: queues.clone(),
                _not_sync: PhantomData,
            })
            .collect();
        let tx = (0..setup.tx_queues)
            .map(|q| TxQueue {
                port: id,
                queue: QueueId(q),
                _alive: queues.clone(),
                _not_sync: PhantomData,
            })
            .collect();
        Ok((
            Port {
                inner,
                queues,
                pool: setup.pool.clone(),
                _state: PhantomData,
            },
            rx,
            tx,
        ))
    }

    /// Starts the port: queues become live.
    pub fn start(self) -> Result<Port<Started>, (Port<Configured>, DpdkError)> {
        // SAFETY: configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.inner.id.0) };
        if ret < 0 {
            let e = DpdkError::from_errno(format!("starting port {}", self.inner.name), -ret);
            return Err((self, e));
        }
        Ok(self.transition())
    }

    /// Closes the port, releasing its queues. Refused while queue handles are alive.
    pub fn close(self) -> Result<(), (Port<Configured>, DpdkError)> {
        if Arc::strong_count(&self.queues) > 1 {
            let e = DpdkError::Invalid(format!(
                "port {} still has queue handles; stop the threads that own them first",
                self.inner.name
            ));
            return Err((self, e));
        }
        // SAFETY: the port is stopped and no queue handle exists (checked above), so no
        // thread can poll it after this.
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(self.inner.id.0) };
        if ret < 0 {
            let e = DpdkError::from_errno(format!("closing port {}", self.inner.name), -ret);
            return Err((self, e));
        }
        Ok(())
    }
}

impl Port<Started> {
    /// Stops the port. Threads polling its queues must have stopped.
    pub fn stop(self) -> Result<Port<Configured>, (Port<Started>, DpdkError)> {
        // SAFETY: started port; callers stop pollers first (queues are handed back by
        // joining worker threads before shutdown).
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.inner.id.0) };
        if ret < 0 {
            let e = DpdkError::from_errno(format!("stopping port {}", self.inner.name), -ret);
            return Err((self, e));
        }
        Ok(self.transition())
    }
}

impl<S> Port<S> {
    fn transition<T>(self) -> Port<T> {
        Port {
            inner: self.inner,
            queues: self.queues,
            pool: self.pool,
            _state: PhantomData,
        }
    }

    /// The DPDK port id.
    pub fn id(&self) -> PortId {
        self.inner.id
    }

    /// The name the port was configured under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The pool its receive buffers come from.
    pub fn pool(&self) -> &Arc<Mempool> {
        &self.pool
    }

    /// A read-only handle for other threads.
    pub fn info(&self) -> PortInfo {
        PortInfo {
            inner: self.inner.clone(),
        }
    }

    /// Enables or disables promiscuous mode.
    pub fn set_promiscuous(&self, on: bool) -> Result<(), DpdkError> {
        let id = self.inner.id.0;
        let ret = if on {
            // SAFETY: valid port id.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) }
        } else {
            // SAFETY: valid port id.
            unsafe { dpdk_sys::rte_eth_promiscuous_disable(id) }
        };
        DpdkError::check(
            &format!("setting promiscuous mode on port {}", self.name()),
            ret,
        )
        .map(drop)
    }

    /// Enables or disables reception of all multicast frames.
    pub fn set_allmulticast(&self, on: bool) -> Result<(), DpdkError> {
        let id = self.inner.id.0;
        let ret = if on {
            // SAFETY: valid port id.
            unsafe { dpdk_sys::rte_eth_allmulticast_enable(id) }
        } else {
            // SAFETY: valid port id.
            unsafe { dpdk_sys::rte_eth_allmulticast_disable(id) }
        };
        DpdkError::check(
            &format!("setting all-multicast on port {}", self.name()),
            ret,
        )
        .map(drop)
    }

    /// Sets the port's primary MAC address.
    pub fn set_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: valid port id and address struct.
        let ret = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.inner.id.0, &mut addr) };
        DpdkError::check(&format!("setting MAC {mac} on port {}", self.name()), ret).map(drop)
    }
}

impl PortInfo {
    /// Whether the PMD writes a symmetric RSS hash over IP addresses and TCP/UDP ports into
    /// every mbuf it receives (what the bond distributor can use for layer3+4).
    pub fn rss_hash_l4(&self) -> bool {
        self.inner.rss_hash_l4
    }

    /// Forces the link administratively up or down (PMDs that support it; in-process ring
    /// links use it to simulate a failed cable).
    pub fn set_link(&self, up: bool) -> Result<(), DpdkError> {
        let id = self.inner.id.0;
        let ret = if up {
            // SAFETY: valid port id; link up/down is a control-path call DPDK allows while
            // the port runs.
            unsafe { dpdk_sys::rte_eth_dev_set_link_up(id) }
        } else {
            // SAFETY: valid port id; link up/down is a control-path call DPDK allows while
            // the port runs.
            unsafe { dpdk_sys::rte_eth_dev_set_link_down(id) }
        };
        DpdkError::check(
            &format!(
                "setting link {} on port {}",
                if up { "up" } else { "down" },
                self.name()
            ),
            ret,
        )
        .map(drop)
    }

    /// The DPDK port id.
    pub fn id(&self) -> PortId {
        self.inner.id
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counters from the PMD.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        stats_of(self.inner.id)
    }

    /// Current link state without waiting for autonegotiation.
    pub fn link(&self) -> Result<Link, DpdkError> {
        link_of(self.inner.id)
    }

    /// The port's primary MAC address.
    pub fn mac(&self) -> Result<MacAddr, DpdkError> {
        mac_of(self.inner.id)
    }

    /// Whether promiscuous mode is on.
    pub fn promiscuous(&self) -> bool {
        // SAFETY: valid port id.
        unsafe { dpdk_sys::rte_eth_promiscuous_get(self.inner.id.0) == 1 }
    }
}

/// The DPDK device name of a port (e.g. "net_memif0" or "0000:03:00.0").
pub fn device_name(_eal: &Eal, id: PortId) -> Result<String, DpdkError> {
    device_name_of(id)
}

fn device_name_of(id: PortId) -> Result<String, DpdkError> {
    let mut buf = [0 as std::ffi::c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buffer of RTE_ETH_NAME_MAX_LEN bytes, as the API requires.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id.0, buf.as_mut_ptr()) };
    DpdkError::check("rte_eth_dev_get_name_by_port", ret)?;
    // SAFETY: DPDK wrote a NUL-terminated name into buf.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

/// Counters of port `id`.
pub fn stats(_eal: &Eal, id: PortId) -> Result<PortStats, DpdkError> {
    stats_of(id)
}

fn stats_of(id: PortId) -> Result<PortStats, DpdkError> {
    let mut s = dpdk_sys::rte_eth_stats::default();
    // SAFETY: out pointer to a properly sized struct; reading counters is safe while the
    // data path runs.
    let ret = unsafe { dpdk_sys::rte_eth_stats_get(id.0, &mut s) };
    DpdkError::check("rte_eth_stats_get", ret)?;
    Ok(PortStats {
        rx_packets: s.ipackets,
        tx_packets: s.opackets,
        rx_bytes: s.ibytes,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// Link state of port `id`.
pub fn link(_eal: &Eal, id: PortId) -> Result<Link, DpdkError> {
    link_of(id)
}

fn link_of(id: PortId) -> Result<Link, DpdkError> {
    let mut l = dpdk_sys::fl_link::default();
    // SAFETY: out pointer to a properly sized struct.
    let ret = unsafe { dpdk_sys::fl_link_get_nowait(id.0, &mut l) };
    DpdkError::check("rte_eth_link_get_nowait", ret)?;
    let speed = match l.speed_mbps {
        dpdk_sys::RTE_ETH_SPEED_NUM_UNKNOWN | dpdk_sys::RTE_ETH_SPEED_NUM_NONE => Speed::Unknown,
        m => Speed::Mbps(m),
    };
    let duplex = match (speed, l.full_duplex != 0) {
        (Speed::Unknown, _) => Duplex::Unknown,
        (_, true) => Duplex::Full,
        _ => Duplex::Half,
    };
    Ok(Link {
        up: l.up != 0,
        speed,
        duplex,
        autoneg: l.autoneg != 0,
    })
}

/// Primary MAC of port `id`.
pub fn mac(_eal: &Eal, id: PortId) -> Result<MacAddr, DpdkError> {
    mac_of(id)
}

fn mac_of(id: PortId) -> Result<MacAddr, DpdkError> {
    let mut a = dpdk_sys::rte_ether_addr::default();
    // SAFETY: out pointer to a 6-byte address struct.
    let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(id.0, &mut a) };
    DpdkError::check("rte_eth_macaddr_get", ret)?;
    Ok(MacAddr(a.addr_bytes))
}

fn libc_enotsup() -> i32 {
    95 // ENOTSUP on Linux
}

/// Which side of a queue [`fp_burst`] looks up.
#[derive(Clone, Copy)]
enum Dir {
    Rx,
    Tx,
}

/// A PMD's RX or TX burst function (`eth_rx_burst_t`, `eth_tx_burst_t`: one signature).
type BurstFn = unsafe extern "C" fn(*mut c_void, *mut *mut dpdk_sys::rte_mbuf, u16) -> u16;

/// The PMD burst function and queue data of (`port`, `queue`), read from DPDK's per-port
/// fast-path table `rte_eth_fp_ops` exactly as `rte_eth_rx_burst`/`rte_eth_tx_burst` read
/// them, so the worker calls the PMD directly: the C shim costs a call and five register
/// saves around the PMD's own call, twice per burst. `None` when the queue has ethdev
/// RX/TX callbacks installed (or the port id is out of the table): the caller then takes
/// DPDK's own inline function through the shim, which runs them.
#[inline(always)]
fn fp_burst(port: u16, queue: u16, dir: Dir) -> Option<(BurstFn, *mut c_void)> {
    let port = port as usize;
    if port >= dpdk_sys::RTE_MAX_ETHPORTS as usize {
        return None;
    }
    let table = std::ptr::addr_of!(dpdk_sys::rte_eth_fp_ops);
    // SAFETY: rte_eth_fp_ops is DPDK's exported array of RTE_MAX_ETHPORTS entries (bounds
    // checked above), valid while the EAL lives (a queue keeps its port, and so the EAL,
    // alive). Only the place is computed: no reference to the mutable static is made.
    let ops = unsafe { std::ptr::addr_of!((*table)[port]) };
    // `ops` points into the live table (above); the reads below are plain reads of the
    // words rte_eth_*_burst reads. DPDK keeps them valid at all times (dummy functions and
    // arrays while the port is stopped; stopping a port while a thread polls it is outside
    // DPDK's contract, and the runtime stops workers first).
    let (qdata, f) = match dir {
        Dir::Rx => (
            // SAFETY: see above.
            unsafe { (*ops).rxq },
            // SAFETY: see above.
            unsafe { (*ops).rx_pkt_burst },
        ),
        Dir::Tx => (
            // SAFETY: see above.
            unsafe { (*ops).txq },
            // SAFETY: see above.
            unsafe { (*ops).tx_pkt_burst },
        ),
    };
    let queue = queue as usize;
    // The queue arrays have RTE_MAX_QUEUES_PER_PORT entries and `queue` is one the port
    // was configured with (a queue object exists only for those).
    let cb_slot = qdata.clbk.wrapping_add(queue) as *const AtomicPtr<c_void>;
    // SAFETY: a valid, aligned pointer slot (above); DPDK publishes callbacks with a
    // release store and reads them relaxed, as here.
    let cb = unsafe { (*cb_slot).load(Ordering::Relaxed) };
    if !cb.is_null() {
        return None;
    }
    let f = f?;
    // SAFETY: as for the callback slot: an entry of the queue-data array.
    let qd = unsafe { *qdata.data.wrapping_add(queue) };
    Some((f, qd))
}

/// A receive queue, owned by exactly one thread (Send, not Sync).
#[derive(Debug)]
pub struct RxQueue {
    port: PortId,
    queue: QueueId,
    _alive: Arc<()>,
    _not_sync: PhantomData<Cell<()>>,
}

/// A transmit queue, owned by exactly one thread (Send, not Sync).
#[derive(Debug)]
pub struct TxQueue {
    port: PortId,
    queue: QueueId,
    _alive: Arc<()>,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// Port this queue belongs to.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// Queue index.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Receives up to `max` packets, appending them to `burst`. Returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst, max: usize) -> usize {
        let n = max.min(burst.room()) as u16;
        if n == 0 {
            return 0;
        }
        let spare = burst.spare_ptr();
        let (port, queue) = (self.port.0, self.queue.0);
        let got = match fp_burst(port, queue, Dir::Rx) {
            // SAFETY: this thread exclusively owns (port, queue) (RxQueue is !Sync and
            // unique per queue); `qd` is the queue's data as rte_eth_rx_burst reads it;
            // `spare` has room for `n` pointers; the PMD fills `got` of them with mbufs
            // whose ownership passes to the burst.
            Some((f, qd)) => unsafe { f(qd, spare, n) },
            // SAFETY: as above, through DPDK's own rte_eth_rx_burst (callbacks installed).
            None => unsafe { dpdk_sys::fl_rx_burst(port, queue, spare, n) },
        } as usize;
        // SAFETY: slots [len, len+got) were just filled with valid mbufs.
        unsafe { burst.set_len(burst.len() + got) };
        got
    }
}

impl TxQueue {
    /// Port this queue belongs to.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// Queue index.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Calls the PMD's transmit with zero packets. Some PMDs do work there (DPDK's bonding
    /// PMD sends its queued LACPDUs only inside a transmit call).
    pub fn flush(&mut self) {
        let mut none: [*mut dpdk_sys::rte_mbuf; 1] = [std::ptr::null_mut()];
        // SAFETY: exclusive owner of (port, queue); a zero-length burst reads no pointer.
        unsafe { dpdk_sys::fl_tx_burst(self.port.0, self.queue.0, none.as_mut_ptr(), 0) };
    }

    /// Transmits from the front of `burst`. Sent mbufs leave the burst; unsent ones stay,
    /// in order, for the caller to retry or free. Returns how many were sent.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        let front = burst.front_ptr();
        let (port, queue, n16) = (self.port.0, self.queue.0, n as u16);
        let sent = match fp_burst(port, queue, Dir::Tx) {
            // SAFETY: exclusive owner of (port, queue); `qd` is the queue's data as
            // rte_eth_tx_burst reads it; `front` points at `n` owned mbufs; the PMD takes
            // ownership of the first `sent`, which we then forget.
            Some((f, qd)) => unsafe { f(qd, front, n16) },
            // SAFETY: as above, through DPDK's own rte_eth_tx_burst (callbacks installed).
            None => unsafe { dpdk_sys::fl_tx_burst(port, queue, front, n16) },
        } as usize;
        burst.consume_front(sent);
        sent
    }
}
