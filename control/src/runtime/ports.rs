//! Runtime steps that open devices: in-process links, configured ports (with rte_flow
//! steering of slow-protocol frames on 802.3ad members where the PMD can), spare link ends.

use conf::RingEnd;
use dpdk::{
    device_limits, DpdkError, Eal, FlowRule, MacAddr, Port, PortId, PortSetup, RxQueue, Started,
    TxQueue,
};
use types::ethertype::SLOW_PROTOCOLS;

use super::{Injector, RunPort, Runtime, RuntimeError, SpareEnd};
use crate::plan::{Plan, PlannedPort, PortDevice};

/// A started port with its queue handles.
type StartedPort = (Port<Started>, Vec<RxQueue>, Vec<TxQueue>);

/// Ring link ends by (link, end).
pub(super) type RingEnds = Vec<(String, RingEnd, PortId)>;

/// One opened port's queues and what the control thread needs of it.
pub(super) struct OpenedPort {
    /// Queues for the workers.
    pub(super) rx: Vec<RxQueue>,
    /// Queues for the workers.
    pub(super) tx: Vec<TxQueue>,
    /// The control thread's TX queue.
    pub(super) control_tx: Option<TxQueue>,
    /// The steered slow-protocol RX queue (rte_flow).
    pub(super) slow_rx: Option<RxQueue>,
    /// Its MAC.
    pub(super) mac: MacAddr,
}

impl OpenedPort {
    /// Slow-protocol frames reach the control thread on a queue of their own.
    pub(super) fn steered(&self) -> bool {
        self.slow_rx.is_some()
    }
}

impl Runtime {
    /// Step: both ends of every in-process link, with one queue pair per worker plus one
    /// for the control thread.
    pub(super) fn create_links(&self, eal: &Eal, plan: &Plan) -> Result<RingEnds, RuntimeError> {
        let mut ends = Vec::new();
        for link in &plan.links {
            let (a, b) = dpdk::ring_link(
                eal,
                &format!("ring_{link}_a"),
                &format!("ring_{link}_b"),
                plan.workers(),
                // The control thread's queue (and in benchmarks the injector's) where an
                // end has one; without, every ring of the link has a single producer.
                plan.link_extra_tx(link),
                1024,
            )?;
            ends.push((link.clone(), RingEnd::A, a));
            ends.push((link.clone(), RingEnd::B, b));
        }
        Ok(ends)
    }

    /// Step: configures and starts every port of the plan, in order.
    pub(super) fn open_ports(
        &mut self,
        eal: &Eal,
        plan: &Plan,
        ring_ends: &mut RingEnds,
    ) -> Result<Vec<OpenedPort>, RuntimeError> {
        let mut opened = Vec::new();
        for p in &plan.ports {
            let ctx = |source| RuntimeError::Port {
                port: p.name.clone(),
                source,
            };
            let id = match &p.device {
                PortDevice::Pci(name) | PortDevice::Vdev { name, .. } => {
                    dpdk::port_by_name(eal, name).map_err(ctx)?
                }
                PortDevice::Ring { link, end } => {
                    let at = ring_ends
                        .iter()
                        .position(|(l, e, _)| l == link && e == end)
                        .expect("config validation: one port per ring end");
                    ring_ends.remove(at).2
                }
            };
            let setup = PortSetup {
                rx_queues: p.rx_queues,
                tx_queues: p.tx_queues,
                rx_descriptors: p.rx_descriptors,
                tx_descriptors: p.tx_descriptors,
                mtu: Some(p.mtu),
                pool: self.pool.clone(),
            };
            let ((port, mut rx, mut tx), flow) = if p.lacp_member {
                open_member(eal, id, p, setup).map_err(ctx)?
            } else {
                (open_port(eal, id, p, &setup, false).map_err(ctx)?, None)
            };
            // With a flow rule, queue `workers` receives only slow-protocol frames and
            // belongs to the control thread.
            let slow_rx = if flow.is_some() { rx.pop() } else { None };
            let info = port.info();
            let pmd_mac = info.mac().map_err(ctx)?;
            // A kernel interface driven through af_packet/af_xdp stays a kernel netdev: take
            // it away from the kernel's IP stack (in router mode fastlag also uses a MAC of
            // its own there), or the kernel would answer ARP and accept frames to that MAC
            // as well (duplicates).
            if let Some(iface) = &p.kernel_iface {
                isolate_kernel_iface(iface);
            }
            let mac = p.mac.resolve(pmd_mac);
            let link = info.link().map_err(ctx)?;
            let device = p.device.describe();
            tracing::info!(port = %p.name, device = %device, dpdk_port = id.0, %mac, %link, "port started");
            if p.injects_by_queue() {
                if let Some(q) = tx.pop() {
                    self.injectors.push((opened.len(), Injector::Queue(q)));
                }
            }
            let control_tx = if p.control_queue { tx.pop() } else { None };
            opened.push(OpenedPort {
                rx,
                tx,
                control_tx,
                slow_rx,
                mac,
            });
            self.ports.push(RunPort {
                name: p.name.clone(),
                device,
                port,
                flow,
            });
        }
        Ok(opened)
    }

    /// Step: ends of in-process links that no port claims, for the demo's generator.
    pub(super) fn open_spare_ends(
        &mut self,
        eal: &Eal,
        plan: &Plan,
        mut ring_ends: RingEnds,
    ) -> Result<(), RuntimeError> {
        for s in &plan.spare_ends {
            let at = ring_ends
                .iter()
                .position(|(l, e, _)| *l == s.link && *e == s.end)
                .expect("every unclaimed end was created");
            let (_, _, id) = ring_ends.remove(at);
            let name = format!("ring:{}:{}", s.link, s.end);
            let setup = PortSetup {
                rx_queues: 1,
                tx_queues: 1,
                rx_descriptors: 1024,
                tx_descriptors: 1024,
                mtu: None,
                pool: self.pool.clone(),
            };
            let (port, mut rx, mut tx) = Port::configure(eal, id, &name, &setup)?;
            let port = port.start().map_err(|(_, e)| e)?;
            self.spare_ends.push(SpareEnd {
                link: s.link.clone(),
                peer: s.peer.clone(),
                rx: rx.pop().expect("one rx queue"),
                tx: tx.pop().expect("one tx queue"),
                mac: s.mac,
            });
            self.spare_ports.push(port);
        }
        Ok(())
    }
}

/// Configures and starts a port: MAC override, promiscuous mode (xconnect is a bump in the
/// wire), all-multicast as the fallback for LACP members (they must hear 01:80:c2:00:00:02).
fn open_port(
    eal: &Eal,
    id: PortId,
    p: &PlannedPort,
    setup: &PortSetup,
    lacp_member: bool,
) -> Result<StartedPort, DpdkError> {
    let (port, rx, tx) = Port::configure(eal, id, &p.name, setup)?;
    // Only a configured MAC is set on the device; a derived one is fastlag's own.
    if let Some(mac) = p.configured_mac {
        if let Err(e) = port.set_mac(mac) {
            tracing::warn!(port = %p.name, "the PMD refused MAC {mac}: {e}; using it for LACP anyway");
        }
    }
    if let Err(e) = port.set_promiscuous(true) {
        if lacp_member {
            if let Err(e2) = port.set_allmulticast(true) {
                tracing::warn!(port = %p.name, "the PMD refuses promiscuous ({e}) and all-multicast ({e2}) mode: LACPDUs (01:80:c2:00:00:02) may never arrive");
            }
        } else {
            tracing::warn!(port = %p.name, "the PMD refuses promiscuous mode ({e}); a device that filters by MAC will drop frames for other addresses");
        }
    }
    let port = port.start().map_err(|(_, e)| e)?;
    Ok((port, rx, tx))
}

/// An 802.3ad member: where the PMD can steer EtherType 0x8809 to a queue of its own
/// (rte_flow), that extra RX queue is the control thread's and the workers never see LACP
/// frames; otherwise the workers divert them through rings. Either way the result works;
/// the log says which path each member uses.
fn open_member(
    eal: &Eal,
    id: PortId,
    p: &PlannedPort,
    mut setup: PortSetup,
) -> Result<(StartedPort, Option<FlowRule>), DpdkError> {
    // The dedicated queue comes after the ones the workers poll.
    let base = setup.rx_queues;
    let capable = device_limits(eal, id).is_ok_and(|l| l.max_rx_queues > base);
    if capable {
        setup.rx_queues = base + 1;
        let (port, rx, tx) = Port::configure(eal, id, &p.name, &setup)?;
        match port.validate_ethertype_steering(SLOW_PROTOCOLS, base) {
            Ok(()) => {
                drop((rx, tx));
                let (port, rx, tx) = open_port(eal, id, p, &setup, true)?;
                let steer = if base > 1 {
                    port.restrict_rss(base)
                } else {
                    Ok(())
                }
                .and_then(|()| port.steer_ethertype(SLOW_PROTOCOLS, base));
                match steer {
                    Ok(flow) => {
                        tracing::info!(port = %p.name, queue = base, "slow-protocol frames steered to the control thread's queue (rte_flow)");
                        return Ok(((port, rx, tx), Some(flow)));
                    }
                    Err(e) => {
                        tracing::info!(port = %p.name, "rte_flow steering failed ({e}); the workers divert slow-protocol frames");
                        drop((rx, tx));
                        port.stop().map_err(|(_, e)| e)?;
                    }
                }
            }
            Err(e) => {
                tracing::info!(port = %p.name, "the workers divert slow-protocol frames (the PMD cannot steer them: {e})");
                drop((rx, tx, port));
            }
        }
        setup.rx_queues = base;
    } else {
        tracing::info!(port = %p.name, "the workers divert slow-protocol frames (no spare RX queue for a dedicated one)");
    }
    Ok((open_port(eal, id, p, &setup, true)?, None))
}

/// Keeps the kernel's IP stack off a netdev that fastlag drives through af_packet/af_xdp:
/// no ARP replies, no IPv6, no forwarding of what arrives there. (The PMD keeps it up and
/// promiscuous.) Failures are logged: the data path works without it, with duplicates.
fn isolate_kernel_iface(iface: &str) {
    for (key, value) in [
        (format!("net/ipv4/conf/{iface}/arp_ignore"), "8"),
        (format!("net/ipv4/conf/{iface}/forwarding"), "0"),
        (format!("net/ipv6/conf/{iface}/disable_ipv6"), "1"),
    ] {
        if let Err(e) = std::fs::write(format!("/proc/sys/{key}"), value) {
            tracing::warn!(
                interface = iface,
                "sysctl {key}={value} failed ({e}): the kernel may also answer on it"
            );
        }
    }
}
