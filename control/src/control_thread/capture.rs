//! `ctl capture`: a fixed ring of the last slow-protocol frames of each bond, both
//! directions, recorded by the control thread as they pass.

use lacp::Instant;

/// Slow-protocol frames kept per bond for `ctl capture`.
pub const CAPTURE_FRAMES: usize = 512;
/// Bytes kept of each (LACPDUs and marker PDUs are 124; slow protocols frames at most 128).
pub const CAPTURE_SNAP: usize = 128;

#[derive(Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) at_ns: u64,
    pub(crate) member: u16,
    pub(crate) tx: bool,
    pub(crate) len: u16,
    pub(crate) orig_len: u32,
    pub(crate) bytes: [u8; CAPTURE_SNAP],
}

/// A fixed ring of the last [`CAPTURE_FRAMES`] slow-protocol frames of one bond, both
/// directions. Allocated once; recording copies at most [`CAPTURE_SNAP`] bytes.
pub(crate) struct CaptureRing {
    slots: Vec<Slot>,
    next: usize,
    pub(crate) total: u64,
}

impl CaptureRing {
    pub(crate) fn new() -> CaptureRing {
        CaptureRing {
            slots: vec![
                Slot {
                    at_ns: 0,
                    member: 0,
                    tx: false,
                    len: 0,
                    orig_len: 0,
                    bytes: [0; CAPTURE_SNAP],
                };
                CAPTURE_FRAMES
            ],
            next: 0,
            total: 0,
        }
    }

    pub(crate) fn record(&mut self, at: Instant, member: usize, tx: bool, frame: &[u8]) {
        let s = &mut self.slots[self.next];
        let n = frame.len().min(CAPTURE_SNAP);
        s.at_ns = at.as_nanos();
        s.member = member as u16;
        s.tx = tx;
        s.len = n as u16;
        s.orig_len = frame.len() as u32;
        s.bytes[..n].copy_from_slice(&frame[..n]);
        self.next = (self.next + 1) % CAPTURE_FRAMES;
        self.total += 1;
    }

    /// Oldest first.
    pub(crate) fn frames(&self) -> impl Iterator<Item = &Slot> {
        let kept = (self.total as usize).min(CAPTURE_FRAMES);
        let start = (self.next + CAPTURE_FRAMES - kept) % CAPTURE_FRAMES;
        (0..kept).map(move |i| &self.slots[(start + i) % CAPTURE_FRAMES])
    }
}

/// Lowercase hex of `b`.
pub(crate) fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_ring_keeps_the_newest_frames_oldest_first() {
        let mut r = CaptureRing::new();
        assert_eq!(r.frames().count(), 0);
        let big = [0xabu8; 200];
        for i in 0..(CAPTURE_FRAMES + 10) {
            let n = 60 + i % 100;
            r.record(Instant::from_nanos(i as u64), i % 3, i % 2 == 0, &big[..n]);
        }
        let kept: Vec<&Slot> = r.frames().collect();
        assert_eq!(kept.len(), CAPTURE_FRAMES);
        assert_eq!(kept[0].at_ns, 10);
        assert_eq!(kept.last().unwrap().at_ns, (CAPTURE_FRAMES + 9) as u64);
        assert!(kept.windows(2).all(|w| w[0].at_ns < w[1].at_ns));
        // Frames longer than the snap length keep their original length.
        let long = kept
            .iter()
            .find(|s| s.orig_len as usize > CAPTURE_SNAP)
            .unwrap();
        assert_eq!(long.len as usize, CAPTURE_SNAP);
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0x01, 0xab, 0xff]), "01abff");
    }
}
