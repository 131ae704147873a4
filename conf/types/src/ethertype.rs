//! EtherType numbers (IEEE 802 / IANA) that fastlag matches on, in host byte order: compare
//! them with `u16::from_be_bytes([frame[12], frame[13]])`, write them with `.to_be_bytes()`.

/// IPv4.
pub const IPV4: u16 = 0x0800;

/// ARP.
pub const ARP: u16 = 0x0806;

/// IEEE 802.1Q VLAN tag (C-tag) TPID.
pub const VLAN: u16 = 0x8100;

/// IPv6.
pub const IPV6: u16 = 0x86dd;

/// IEEE 802.3 Slow Protocols (LACP, Marker, OAM); Slow Protocols frames are never
/// VLAN-tagged.
pub const SLOW_PROTOCOLS: u16 = 0x8809;

/// IEEE 802.1ad service VLAN tag (S-tag, QinQ outer tag) TPID.
pub const QINQ: u16 = 0x88a8;

/// IEEE 802 Local Experimental EtherType 1: fastlag's self-checking test frames.
pub const LOCAL_EXPERIMENTAL_1: u16 = 0x88b5;

/// LLDP (IEEE 802.1AB).
pub const LLDP: u16 = 0x88cc;

/// Pre-standard QinQ outer tag TPID, still sent by some switches (Linux `ETH_P_QINQ1`).
pub const QINQ_LEGACY: u16 = 0x9100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes() {
        assert_eq!(SLOW_PROTOCOLS.to_be_bytes(), [0x88, 0x09]);
        assert_eq!(VLAN.to_be_bytes(), [0x81, 0x00]);
        assert_eq!(QINQ.to_be_bytes(), [0x88, 0xa8]);
        assert_eq!(QINQ_LEGACY.to_be_bytes(), [0x91, 0x00]);
        assert_eq!(IPV4.to_be_bytes(), [0x08, 0x00]);
        assert_eq!(IPV6.to_be_bytes(), [0x86, 0xdd]);
        assert_eq!(ARP.to_be_bytes(), [0x08, 0x06]);
        assert_eq!(LLDP.to_be_bytes(), [0x88, 0xcc]);
        assert_eq!(LOCAL_EXPERIMENTAL_1.to_be_bytes(), [0x88, 0xb5]);
    }

    #[test]
    fn all_distinct() {
        let all = [
            IPV4,
            ARP,
            VLAN,
            IPV6,
            SLOW_PROTOCOLS,
            QINQ,
            LOCAL_EXPERIMENTAL_1,
            LLDP,
            QINQ_LEGACY,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{a:#06x} twice");
        }
    }
}
