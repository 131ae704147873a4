//! The one way a worker transmits: send what the queue takes, count it, count and free
//! the rest (a full TX queue drops; nothing waits).

use dpdk::{Burst, TxQueue};

use crate::counters::PortCounters;

/// Sends `frames` on `tx`; what does not fit is freed and counted as `drop_tx_full` of
/// `port`. Leaves `frames` empty.
#[inline]
pub(super) fn send(tx: &mut TxQueue, frames: &mut Burst, port: &PortCounters) {
    let sent = tx.tx_burst(frames);
    port.tx.add(sent as u64);
    if !frames.is_empty() {
        port.drop_tx_full.add(frames.len() as u64);
        frames.clear();
    }
}
