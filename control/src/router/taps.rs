//! The control thread's half of the exception path: frames the workers hand to the kernel
//! go to the interface's TAP; what the kernel sends on a TAP leaves through the interface
//! (a port, or a bond's member picked by the bond's hash).

use api::ExceptionCounters;
use dataplane::bond::{flow_hash, HashPolicy, SharedTable};
use dataplane::router::set_vlan;
use dpdk::{Burst, Consumer, RxQueue, TxQueue};

use super::fib::Device;

/// A TAP as the control thread drives it.
pub struct Tap {
    /// Interface index.
    pub iface: usize,
    /// Frames the kernel sends.
    pub rx: RxQueue,
    /// Frames for the kernel.
    pub tx: TxQueue,
}

/// How the control thread reaches an interface's egress.
pub struct Egress {
    /// The device.
    pub device: Device,
    /// VLAN to tag with.
    pub vlan: Option<u16>,
}

/// A bond's table and hash, for picking the member a kernel frame leaves on.
pub struct BondEgress {
    /// Published table.
    pub table: SharedTable,
    /// Hash policy.
    pub hash: HashPolicy,
}

/// The control thread's half of the exception path.
pub struct TapService {
    /// TAPs.
    pub taps: Vec<Tap>,
    /// Per interface: one ring per worker with frames for the kernel.
    pub from_workers: Vec<Vec<Consumer>>,
    /// Per interface.
    pub egress: Vec<Egress>,
    /// Per bond.
    pub bonds: Vec<BondEgress>,
    /// Per interface.
    pub counters: Vec<ExceptionCounters>,
}

impl TapService {
    /// Moves frames both ways; `port_tx` are the control thread's TX queues by port.
    /// Returns how many frames it took (both ways, sent or dropped).
    pub fn service(&mut self, port_tx: &mut [Option<TxQueue>], burst: &mut Burst) -> usize {
        let mut moved = 0;
        // Workers -> kernel. The TAP is the L3 interface itself: untagged.
        for tap in &mut self.taps {
            let c = &mut self.counters[tap.iface];
            for ring in &mut self.from_workers[tap.iface] {
                while ring.pop_into(burst, 32) > 0 {
                    moved += burst.len();
                    let mut out = Burst::new();
                    for mut m in burst.drain() {
                        if set_vlan(&mut m, None) {
                            let _ = out.push(m);
                        } else {
                            c.to_kernel_dropped += 1;
                        }
                    }
                    let n = out.len();
                    let sent = tap.tx.tx_burst(&mut out);
                    c.to_kernel += sent as u64;
                    c.to_kernel_dropped += (n - sent) as u64;
                }
            }
        }
        // Kernel -> wire: what the kernel sends on a TAP leaves through its interface.
        for tap in &mut self.taps {
            let egress = &self.egress[tap.iface];
            let c = &mut self.counters[tap.iface];
            while tap.rx.rx_burst(burst, 32) > 0 {
                moved += burst.len();
                for mut m in burst.drain() {
                    if !set_vlan(&mut m, egress.vlan) {
                        c.from_kernel_dropped += 1;
                        continue;
                    }
                    let port = match egress.device {
                        Device::Port(p) => Some(p),
                        Device::Bond(b) => {
                            let bond = &self.bonds[b];
                            bond.table
                                .load()
                                .pick(flow_hash(m.data(), bond.hash))
                                .map(|p| p as usize)
                        }
                    };
                    let Some(port) = port else {
                        c.from_kernel_link_down += 1;
                        continue;
                    };
                    let Some(tx) = port_tx.get_mut(port).and_then(|q| q.as_mut()) else {
                        c.from_kernel_dropped += 1;
                        continue;
                    };
                    let mut out = Burst::new();
                    let _ = out.push(m);
                    if tx.tx_burst(&mut out) == 1 {
                        c.from_kernel += 1;
                    } else {
                        c.from_kernel_dropped += 1;
                    }
                }
            }
        }
        moved
    }
}
