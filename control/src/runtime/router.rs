//! Runtime step for router mode: a TAP per interface that has one, the FIB from the
//! config, the exception rings (one per worker and interface) and every worker's plan.

use std::sync::Arc;

use dataplane::bond::SharedTable;
use dataplane::router::{ExceptionPolicer, IfaceId};
use dataplane::worker::router::{IfaceCounters, IfaceDevice, RouterPlan};
use dpdk::{Consumer, Eal, Port, PortSetup, Producer};

use super::{Runtime, RuntimeError};
use crate::plan::{tap_port_name, Plan};
use crate::router::{self, Iface, RouterControl, TapService};

impl Runtime {
    /// Router mode: opens a TAP per interface that has one, builds the FIB from the
    /// config, the exception rings (one per worker and interface) and every worker's plan.
    pub(super) fn build_router(
        &mut self,
        eal: &Eal,
        plan: &Plan,
        ifaces: Vec<Iface>,
        tables: &[SharedTable],
    ) -> Result<(RouterControl, Vec<RouterPlan>), RuntimeError> {
        let nports = plan.ports.len();
        let workers = plan.workers();
        let mut builder =
            router::fib_builder(&plan.config, &ifaces).map_err(RuntimeError::Unsupported)?;
        let fib = Arc::new(arc_swap::ArcSwap::from_pointee(builder.build()));
        self.router_fib = Some(fib.clone());

        let mut taps = Vec::new();
        for (n, i) in ifaces.iter().enumerate() {
            if i.tap.is_none() {
                continue;
            }
            let name = tap_port_name(n);
            let ctx = |source| RuntimeError::Port {
                port: format!("{} (TAP of {})", name, i.name),
                source,
            };
            let id = dpdk::port_by_name(eal, &name).map_err(ctx)?;
            let setup = PortSetup {
                rx_queues: 1,
                tx_queues: 1,
                rx_descriptors: 512,
                tx_descriptors: 512,
                mtu: Some(i.mtu),
                pool: self.pool.clone(),
            };
            let (port, mut rx, mut tx) = Port::configure(eal, id, &name, &setup).map_err(ctx)?;
            // The kernel answers ARP/ND with the TAP's MAC: it must be the interface's.
            if let Err(e) = port.set_mac(i.mac) {
                tracing::warn!(interface = %i.name, "cannot give the TAP the interface MAC {}: {e}", i.mac);
            }
            let port = port.start().map_err(|(_, e)| ctx(e))?;
            taps.push(router::Tap {
                iface: n,
                rx: rx.pop().expect("one rx queue"),
                tx: tx.pop().expect("one tx queue"),
            });
            self.spare_ports.push(port);
        }

        let mut from_workers: Vec<Vec<Consumer>> = ifaces.iter().map(|_| Vec::new()).collect();
        let mut to_control: Vec<Vec<Option<Producer>>> = (0..workers)
            .map(|_| ifaces.iter().map(|_| None).collect())
            .collect();
        for w in to_control.iter_mut() {
            for (n, i) in ifaces.iter().enumerate() {
                if i.tap.is_some() {
                    let (tx, rx) = dpdk::mbuf_ring(eal, 1024)?;
                    w[n] = Some(tx);
                    from_workers[n].push(rx);
                }
            }
        }

        // A port receives for the interfaces on its device: itself, or its bond.
        let device_of = |pi: usize| match plan.ports[pi].member_of {
            Some(b) => router::Device::Bond(b),
            None => router::Device::Port(pi),
        };
        let ingress: Vec<Vec<(Option<u16>, IfaceId)>> = (0..nports)
            .map(|pi| {
                ifaces
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.device == device_of(pi))
                    .map(|(n, i)| (i.vlan, IfaceId(n as u16)))
                    .collect()
            })
            .collect();
        let egress: Vec<IfaceDevice> = ifaces
            .iter()
            .map(|i| match i.device {
                router::Device::Port(p) => IfaceDevice::Port(p),
                router::Device::Bond(b) => IfaceDevice::Bond(b),
            })
            .collect();
        let mut plans = Vec::new();
        for exceptions in to_control {
            let counters: Arc<[IfaceCounters]> = (0..ifaces.len())
                .map(|_| IfaceCounters::default())
                .collect();
            self.iface_counters.push(counters.clone());
            plans.push(RouterPlan {
                fib: fib.clone(),
                ingress: ingress.clone(),
                egress: egress.clone(),
                exceptions,
                policers: (0..ifaces.len())
                    .map(|_| ExceptionPolicer::with_defaults(self.tsc_hz))
                    .collect(),
                counters,
            });
        }
        self.iface_names = ifaces.iter().map(|i| i.name.clone()).collect();
        let service = TapService {
            taps,
            from_workers,
            egress: ifaces
                .iter()
                .map(|i| router::Egress {
                    device: i.device,
                    vlan: i.vlan,
                })
                .collect(),
            bonds: plan
                .bonds
                .iter()
                .zip(tables)
                .map(|(b, t)| router::BondEgress {
                    table: t.clone(),
                    hash: b.hash,
                })
                .collect(),
            counters: vec![api::ExceptionCounters::default(); ifaces.len()],
        };
        for i in &ifaces {
            tracing::info!(
                interface = %i.name,
                vlan = ?i.vlan,
                mac = %i.mac,
                tap = ?i.tap,
                addresses = ?i.addresses,
                "L3 interface"
            );
        }
        let ports = self
            .ports
            .iter()
            .zip(&plan.ports)
            .map(|(p, planned)| (p.port.info(), planned.kernel_iface.clone()))
            .collect();
        Ok((
            RouterControl::new(&plan.config, ifaces, builder, fib, service, ports),
            plans,
        ))
    }
}
