//! Runtime steps that join the pieces: bond tables, the workers' per-port plans, the rings
//! between workers and the control thread, the LACP engine with its members, then the
//! control thread and the workers themselves.

use std::sync::Arc;

use dataplane::bond::{shared_down, SharedTable};
use dataplane::counters::WorkerCounters;
use dataplane::worker::router::RouterPlan;
use dataplane::worker::{self, BondPlan, PortPlan, SharedPlans, WorkerSpec};
use dpdk::{Consumer, Eal, MacAddr, Producer, RxQueue, TxQueue};

use super::ports::OpenedPort;
use super::{Injector, Runtime, RuntimeError};
use crate::control_thread::{
    Bond, BondParts, ControlLoop, ControlParts, Member, MemberParts, Reloader, SparePort,
};
use crate::plan::Plan;
use crate::router::RouterControl;

/// Everything built between opening the ports and starting the threads.
pub(super) struct Wiring {
    /// Per port: the workers' RX and TX queues.
    rx: Vec<Vec<RxQueue>>,
    tx: Vec<Vec<TxQueue>>,
    /// Per worker, per port: the ring to the control thread for slow-protocol frames.
    slow_producers: Vec<Vec<Option<Producer>>>,
    /// Per port: frames the control thread hands worker 0 to send.
    control_to_worker: Vec<Option<Consumer>>,
    /// The workers' per-port plans.
    plans: SharedPlans,
    /// The workers' view of each bond.
    bond_plans: Vec<BondPlan>,
    /// Per worker (router mode).
    router_plans: Vec<Option<RouterPlan>>,
    /// The control thread, when anything needs one.
    control: Option<ControlParts>,
    /// DPDK's EAL, for the threads to register with.
    eal: &'static Eal,
}

impl Runtime {
    /// Step: tables, plans, rings, the LACP engine and members, the router.
    pub(super) fn wire(
        &mut self,
        eal: &'static Eal,
        plan: &Plan,
        opened: Vec<OpenedPort>,
    ) -> Result<Wiring, RuntimeError> {
        let nports = plan.ports.len();
        let workers = plan.workers();
        let tables: Vec<SharedTable> = plan.bonds.iter().map(|_| shared_down(nports)).collect();
        let bond_plans: Vec<BondPlan> = plan
            .bonds
            .iter()
            .zip(&tables)
            .map(|(b, t)| BondPlan {
                table: t.clone(),
                hash: b.hash,
            })
            .collect();
        let worker_plans: Vec<PortPlan> = plan
            .ports
            .iter()
            .zip(&opened)
            .zip(&self.ports)
            .map(|((p, o), run)| PortPlan {
                member_of: p.member_of,
                divert_slow: p.lacp_member && !o.steered(),
                egress: p.egress,
                rss_l4: run.port.info().rss_hash_l4(),
            })
            .collect();

        // Control thread -> worker 0, per 802.3ad member: the fallback TX path for LACPDUs.
        // Spare ports (a reload may make them members) get a member's rings from the start.
        let mut control_to_worker: Vec<Option<Consumer>> = (0..nports).map(|_| None).collect();
        let mut via_worker: Vec<Option<Producer>> = (0..nports).map(|_| None).collect();
        for (pi, p) in plan.ports.iter().enumerate() {
            if p.lacp_member || p.spare {
                let (tx, rx) = dpdk::mbuf_ring(eal, 64)?;
                via_worker[pi] = Some(tx);
                control_to_worker[pi] = Some(rx);
            }
        }
        // Benchmarks: ring link ends without the control thread's queue inject through
        // worker 0 as well, so their link keeps single-producer rings.
        for (pi, p) in plan.ports.iter().enumerate() {
            if p.injector && !p.injects_by_queue() && control_to_worker[pi].is_none() {
                let (tx, rx) = dpdk::mbuf_ring(eal, 1024)?;
                self.injectors.push((pi, Injector::Worker(tx)));
                control_to_worker[pi] = Some(rx);
            }
        }
        // Slow-protocol rings: one per (worker, member that diverts), so the ring names
        // the port.
        let mut slow_producers: Vec<Vec<Option<Producer>>> = (0..workers)
            .map(|_| (0..nports).map(|_| None).collect())
            .collect();
        let mut slow_consumers: Vec<Vec<Consumer>> = (0..nports).map(|_| Vec::new()).collect();
        for (pi, wp) in worker_plans.iter().enumerate() {
            if wp.divert_slow || plan.ports[pi].spare {
                for w in slow_producers.iter_mut() {
                    let (tx, rx) = dpdk::mbuf_ring(eal, 1024)?;
                    w[pi] = Some(tx);
                    slow_consumers[pi].push(rx);
                }
            }
        }

        let macs: Vec<MacAddr> = opened.iter().map(|o| o.mac).collect();
        let mut port_tx = Vec::with_capacity(nports);
        let mut slow_rx = Vec::with_capacity(nports);
        let (mut rx, mut tx) = (Vec::with_capacity(nports), Vec::with_capacity(nports));
        for o in opened {
            port_tx.push(o.control_tx);
            slow_rx.push(o.slow_rx);
            rx.push(o.rx);
            tx.push(o.tx);
        }

        // Control plane: the LACP engine with every 802.3ad bond, static bonds by link.
        let mut engine = lacp::Engine::new();
        let mut members = Vec::new();
        let mut bonds = Vec::new();
        let epoch = std::time::Instant::now();
        for (bi, b) in plan.bonds.iter().enumerate() {
            let lacp_bond = match &b.lacp {
                Some(bc) => {
                    let id = engine
                        .add_bond(bc.clone())
                        .map_err(|e| RuntimeError::Unsupported(format!("bond {}: {e}", b.name)))?;
                    tracing::info!(bond = %b.name, system = %bc.system.mac, priority = bc.system.priority, key = bc.admin_key, "LACP bond");
                    Some(id)
                }
                None => None,
            };
            let mut idx = Vec::new();
            for (&pi, &(number, priority)) in b.members.iter().zip(&b.lacp_ports) {
                let p = &plan.ports[pi];
                let lacp =
                    match lacp_bond {
                        Some(bond_id) => {
                            let mut pc = lacp::PortConfig::new(p.name.clone(), macs[pi], number);
                            pc.port_priority = priority;
                            Some(engine.add_port(bond_id, pc, lacp::Instant::ZERO).map_err(
                                |e| {
                                    RuntimeError::Unsupported(format!(
                                        "bond {} member {}: {e}",
                                        b.name, p.name
                                    ))
                                },
                            )?)
                        }
                        None => None,
                    };
                idx.push(members.len());
                members.push(Member::new(MemberParts {
                    port: pi,
                    name: p.name.clone(),
                    bond: bi,
                    info: self.ports[pi].port.info(),
                    slow: std::mem::take(&mut slow_consumers[pi]),
                    lacp,
                    speed_override: p.speed_mbps,
                    duplex_override: p.duplex,
                    kernel_iface: p.kernel_iface.clone(),
                    slow_rx: slow_rx[pi].take(),
                    via_worker: via_worker[pi].take(),
                }));
            }
            let mac = b
                .mac
                .or_else(|| b.members.first().map(|&i| macs[i]))
                .unwrap_or_default();
            tracing::info!(bond = %b.name, mode = %b.mode.as_str(), mac = %mac, "bond");
            bonds.push(Bond::new(BondParts {
                name: b.name.clone(),
                mode: b.mode,
                hash: plan.config.bonds[bi].hash.as_str().to_string(),
                members: idx,
                table: tables[bi].clone(),
                lacp: lacp_bond,
                min_links: b.min_links,
                mac,
                nports,
            }));
        }

        // Router mode: interfaces, their TAPs, the FIB, and each worker's view of them.
        let mut router_plans: Vec<Option<RouterPlan>> = (0..workers).map(|_| None).collect();
        let mut router: Option<RouterControl> = None;
        if plan.router {
            let bond_macs: Vec<MacAddr> = bonds.iter().map(Bond::mac).collect();
            let ifaces = crate::router::interfaces(&plan.config, &macs, &bond_macs);
            let (control, plans) = self.build_router(eal, plan, ifaces, &tables)?;
            router = Some(control);
            router_plans = plans.into_iter().map(Some).collect();
        }

        let plans = worker::shared_plans(worker_plans);
        let spares = plan
            .ports
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                p.spare.then(|| SparePort {
                    info: self.ports[pi].port.info(),
                    slow: std::mem::take(&mut slow_consumers[pi]),
                    via_worker: via_worker[pi].take(),
                    slow_rx: None,
                    left_as: None,
                })
            })
            .collect();
        let control = if plan.needs_control_thread() {
            let (reload_tx, reload_rx) = std::sync::mpsc::channel();
            self.reload_tx = Some(reload_tx);
            Some(ControlParts {
                eal,
                engine,
                members,
                bonds,
                router,
                port_tx,
                pool: self.pool.clone(),
                epoch,
                port_names: plan.ports.iter().map(|p| p.name.clone()).collect(),
                status: self.status.clone(),
                hub: self.mgmt.clone(),
                reloader: Reloader {
                    path: self.config_path.clone(),
                    running: plan.clone(),
                    spares,
                    plans: plans.clone(),
                    requests: Some(reload_rx),
                    macs,
                    leaving: Vec::new(),
                },
                state_file: plan.config.management.state_file.clone(),
                restart: self.restart.clone(),
            })
        } else {
            None
        };
        Ok(Wiring {
            rx,
            tx,
            slow_producers,
            control_to_worker,
            plans,
            bond_plans,
            router_plans,
            control,
            eal,
        })
    }

    /// Step: the control thread, then one pinned worker per worker core. Queue q of a port
    /// goes to worker q; RX queues beyond the workers (af_packet opens one socket per queue
    /// pair and the kernel spreads frames over all) are shared out.
    pub(super) fn start_threads(&mut self, plan: Plan, w: Wiring) -> Result<(), RuntimeError> {
        if let Some(parts) = w.control {
            let control = ControlLoop::new(parts);
            let core = plan.control_core;
            let stop = self.control_stop.clone();
            self.control = Some(
                std::thread::Builder::new()
                    .name("fl-control".into())
                    .spawn(move || control.run(core, &stop))?,
            );
        }
        let nports = plan.ports.len();
        let workers = plan.workers() as usize;
        let mut per_worker_rx: Vec<Vec<(usize, RxQueue)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut per_worker_tx: Vec<Vec<TxQueue>> = (0..workers).map(|_| Vec::new()).collect();
        for (pi, (rx, tx)) in w.rx.into_iter().zip(w.tx).enumerate() {
            for (i, q) in rx.into_iter().enumerate() {
                per_worker_rx[i % workers].push((pi, q));
            }
            for (i, q) in tx.into_iter().enumerate() {
                per_worker_tx[i].push(q);
            }
        }
        let mut control_to_worker = w.control_to_worker;
        let mut router_plans = w.router_plans;
        for (i, ((rx, tx), slow)) in per_worker_rx
            .into_iter()
            .zip(per_worker_tx)
            .zip(w.slow_producers)
            .enumerate()
        {
            let counters = Arc::new(WorkerCounters::new(nports));
            let spec = WorkerSpec {
                eal: w.eal,
                index: i,
                core: plan.worker_cores[i],
                burst: plan.burst,
                rx,
                tx,
                ports: w.plans.clone(),
                bonds: w.bond_plans.clone(),
                slow,
                router: router_plans[i].take(),
                control_tx: if i == 0 {
                    std::mem::take(&mut control_to_worker)
                } else {
                    (0..nports).map(|_| None).collect()
                },
                counters: counters.clone(),
            };
            self.counters.push(counters);
            self.workers
                .push(worker::spawn(spec, self.worker_stop.clone())?);
        }
        Ok(())
    }
}
