//! Giving a frame the egress interface's 802.1Q tag: push, pop or rewrite. Push and pop
//! change the frame length, so they work on a buffer that can grow and shrink at the
//! front (an mbuf's headroom, or a `Vec` in tests); the same code runs on both.

use dpdk::Mbuf;
use types::ethertype;

/// A frame buffer whose front can move (headroom).
pub trait FrameBuf {
    /// The frame bytes.
    fn frame(&self) -> &[u8];
    /// The frame bytes, writable.
    fn frame_mut(&mut self) -> &mut [u8];
    /// Adds `n` bytes before the frame; false when there is no room.
    fn grow_front(&mut self, n: u16) -> bool;
    /// Removes `n` bytes from the front; false when the frame is shorter.
    fn shrink_front(&mut self, n: u16) -> bool;
}

impl FrameBuf for Mbuf {
    #[inline(always)]
    fn frame(&self) -> &[u8] {
        self.data()
    }
    #[inline(always)]
    fn frame_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
    #[inline(always)]
    fn grow_front(&mut self, n: u16) -> bool {
        self.prepend(n).is_some()
    }
    #[inline(always)]
    fn shrink_front(&mut self, n: u16) -> bool {
        self.adj(n)
    }
}

/// Test and control-plane buffers (allocates: not for the fast path).
impl FrameBuf for Vec<u8> {
    fn frame(&self) -> &[u8] {
        self
    }
    fn frame_mut(&mut self) -> &mut [u8] {
        self
    }
    fn grow_front(&mut self, n: u16) -> bool {
        self.splice(0..0, std::iter::repeat_n(0, n as usize));
        true
    }
    fn shrink_front(&mut self, n: u16) -> bool {
        if self.len() < n as usize {
            return false;
        }
        self.drain(..n as usize);
        true
    }
}

/// Makes the frame carry exactly `vlan`: pushes a tag (priority 0), pops it, or rewrites
/// the VLAN id of the tag it has (keeping its priority and DEI bits). Nothing happens when
/// the frame already matches. False (frame untouched) when the frame is shorter than an
/// Ethernet header or there is no headroom for a push.
#[inline]
pub fn set_vlan_in<B: FrameBuf + ?Sized>(b: &mut B, vlan: Option<u16>) -> bool {
    let f = b.frame();
    if f.len() < 14 {
        return false;
    }
    let tagged = u16::from_be_bytes([f[12], f[13]]) == ethertype::VLAN;
    match (tagged, vlan) {
        (false, None) => true,
        (true, Some(v)) => {
            if f.len() < 18 {
                return false;
            }
            let f = b.frame_mut();
            let tci = (u16::from_be_bytes([f[14], f[15]]) & 0xf000) | (v & 0x0fff);
            f[14..16].copy_from_slice(&tci.to_be_bytes());
            true
        }
        (false, Some(v)) => {
            if !b.grow_front(4) {
                return false;
            }
            let f = b.frame_mut();
            f.copy_within(4..16, 0);
            f[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
            f[14..16].copy_from_slice(&(v & 0x0fff).to_be_bytes());
            true
        }
        (true, None) => {
            if f.len() < 18 {
                return false;
            }
            b.frame_mut().copy_within(0..12, 4);
            b.shrink_front(4)
        }
    }
}

/// [`set_vlan_in`] on an mbuf (the tag goes into/out of the headroom).
#[inline]
pub fn set_vlan(m: &mut Mbuf, vlan: Option<u16>) -> bool {
    set_vlan_in(m, vlan)
}

/// [`set_vlan_in`] on a `Vec` (tests, control plane).
pub fn set_vlan_vec(f: &mut Vec<u8>, vlan: Option<u16>) -> bool {
    set_vlan_in(f, vlan)
}

/// The VLAN id of a frame's outer 802.1Q tag, if it has one. A priority tag (VLAN id 0)
/// counts as untagged (802.1Q: the frame belongs to the port's untagged VLAN).
#[inline]
pub fn vlan_of(frame: &[u8]) -> Option<u16> {
    match frame.get(12..16) {
        Some(&[0x81, 0x00, hi, lo]) => {
            Some(u16::from_be_bytes([hi, lo]) & 0x0fff).filter(|&v| v != 0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged() -> Vec<u8> {
        let mut f = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00];
        f.extend(100..146u8);
        f
    }

    fn tagged(tci: u16) -> Vec<u8> {
        let mut f = untagged();
        f.splice(12..12, [0x81, 0x00, (tci >> 8) as u8, tci as u8]);
        f
    }

    #[test]
    fn push_pop_rewrite_keep() {
        let mut f = untagged();
        assert!(set_vlan_vec(&mut f, Some(100)));
        assert_eq!(f, tagged(100));
        assert_eq!(vlan_of(&f), Some(100));
        assert!(set_vlan_vec(&mut f, Some(100)));
        assert_eq!(f, tagged(100), "already right");
        let mut f = tagged(0xa000 | 5); // priority 5
        assert!(set_vlan_vec(&mut f, Some(4094)));
        assert_eq!(f, tagged(0xa000 | 4094), "priority kept");
        assert!(set_vlan_vec(&mut f, None));
        assert_eq!(f, untagged());
        assert_eq!(vlan_of(&f), None);
        assert!(set_vlan_vec(&mut f, None));
        assert_eq!(f, untagged());
    }

    #[test]
    fn priority_tagged_is_untagged() {
        let mut f = tagged(0x6000); // priority 3, VLAN 0
        assert_eq!(vlan_of(&f), None);
        assert!(
            set_vlan_vec(&mut f, None),
            "the priority tag goes on egress"
        );
        assert_eq!(f, untagged());
        assert_eq!(vlan_of(&tagged(0x6001)), Some(1));
    }

    #[test]
    fn too_short() {
        let mut f = vec![0u8; 13];
        assert!(!set_vlan_vec(&mut f, Some(1)));
        assert!(!set_vlan_vec(&mut f, None));
        let mut f = tagged(1)[..16].to_vec();
        let before = f.clone();
        assert!(!set_vlan_vec(&mut f, None));
        assert_eq!(f, before);
    }

    struct NoHeadroom(Vec<u8>);
    impl FrameBuf for NoHeadroom {
        fn frame(&self) -> &[u8] {
            &self.0
        }
        fn frame_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
        fn grow_front(&mut self, _: u16) -> bool {
            false
        }
        fn shrink_front(&mut self, n: u16) -> bool {
            self.0.shrink_front(n)
        }
    }

    #[test]
    fn no_headroom_leaves_frame_alone() {
        let mut b = NoHeadroom(untagged());
        assert!(!set_vlan_in(&mut b, Some(7)));
        assert_eq!(b.0, untagged());
    }
}
