//! Wire layer: zero-copy views and validated representations of Slow Protocols PDUs.
//!
//! Follows smoltcp's shape: each PDU has a `Packet<T: AsRef<[u8]>>` view with a private `field`
//! module of byte ranges, `new_checked()` that validates the length once, big-endian accessors,
//! and a `Repr` with `parse()`, `buffer_len()` and `emit()`.
//!
//! Receive policy (802.1AX-2014 clause 6.4.2.3 and IEEE 802.3 clause 43.4.12 / Annex 43B): lenient
//! where the standard allows it, strict where acting on bad bytes would be unsafe.
//! * Lenient: any version number (a version-2 LACPDU keeps the actor, partner and collector TLVs
//!   at their version-1 offsets; the TLVs after the collector are skipped), non-zero reserved
//!   octets, frames longer than the minimum (padding, FCS).
//! * Strict (counted as *illegal*, never acted on): fewer than 110 octets after the EtherType,
//!   actor/partner TLV type or length other than 1/20 and 2/20, collector TLV other than 3/16,
//!   and, in version 1, a terminator other than 0/0.
//!
//! Nothing in this module panics on any input; [`fuzz_parse`] is the body of the fuzz target
//! and of the arbitrary-bytes property test.

mod ethernet;
mod lacpdu;
mod marker;
mod state;

use core::fmt;

pub use ethernet::{
    parse_frame, EthernetHeader, Frame, SlowFrame, SlowPdu, ETHERTYPE_SLOW_PROTOCOLS,
    ETH_HEADER_LEN, FRAME_LEN, NEAREST_CUSTOMER_BRIDGE, NEAREST_NON_TPMR_BRIDGE,
    SLOW_PROTOCOLS_MULTICAST,
};
pub use lacpdu::{
    LacpduPacket, LacpduRepr, ParticipantInfo, COLLECTOR_TLV_LEN, INFO_TLV_LEN, LACPDU_LEN,
    TLV_ACTOR, TLV_COLLECTOR, TLV_PARTNER, TLV_TERMINATOR,
};
pub use marker::{MarkerKind, MarkerPacket, MarkerRepr, MARKER_LEN, MARKER_TLV_LEN};
pub use state::PortState;

/// Slow Protocols subtype of LACP (IEEE 802.3 Annex 43B).
pub const SUBTYPE_LACP: u8 = 1;
/// Slow Protocols subtype of the Marker protocol.
pub const SUBTYPE_MARKER: u8 = 2;
/// Highest subtype value IEEE 802.3 Annex 43B assigns (10 = OSSP); 0 and above this are illegal.
pub const SUBTYPE_MAX_ASSIGNED: u8 = 10;

/// A 48-bit IEEE 802 MAC address (fastlag's one definition, from the `types` crate).
pub use types::MacAddr;

/// Six octets at the start of `b` (callers pass exact field ranges, checked by the
/// packet views).
pub(crate) fn mac_at(b: &[u8]) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    MacAddr(m)
}

/// Which TLV of a PDU a [`WireError::BadTlv`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlvKind {
    /// LACPDU Actor Information (type 1, length 20).
    Actor,
    /// LACPDU Partner Information (type 2, length 20).
    Partner,
    /// LACPDU Collector Information (type 3, length 16).
    Collector,
    /// Terminator (type 0, length 0).
    Terminator,
    /// Marker Information or Marker Response (type 1 or 2, length 16).
    Marker,
}

impl fmt::Display for TlvKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlvKind::Actor => "actor information",
            TlvKind::Partner => "partner information",
            TlvKind::Collector => "collector information",
            TlvKind::Terminator => "terminator",
            TlvKind::Marker => "marker",
        })
    }
}

/// Why bytes are not an acceptable Slow Protocols PDU.
///
/// [`WireError::is_illegal`] tells which errors the 802.3 MIB counts as *illegal*
/// (dot3adAggPortStatsIllegalRx: badly formed PDU or illegal subtype) and which as *unknown*
/// (dot3adAggPortStatsUnknownRx: not a PDU this entity handles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// Fewer octets than the PDU (or the Ethernet header) needs.
    #[error("truncated: {len} octets, at least {min} needed")]
    Truncated {
        /// Octets available.
        len: usize,
        /// Octets needed.
        min: usize,
    },
    /// The frame does not carry the Slow Protocols EtherType 0x8809.
    #[error("not a Slow Protocols frame: EtherType {0:#06x}")]
    NotSlowProtocols(u16),
    /// The frame carries a VLAN tag; Slow Protocols frames are untagged (IEEE 802.3 Annex 57A).
    #[error("VLAN-tagged frame (TPID {0:#06x}); Slow Protocols frames are never tagged")]
    VlanTagged(u16),
    /// A PDU of another subtype than the parser expects.
    #[error("wrong subtype {found}, expected {expected}")]
    WrongSubtype {
        /// Subtype found.
        found: u8,
        /// Subtype expected.
        expected: u8,
    },
    /// Subtype 0 or above 10: not assigned by IEEE 802.3 Annex 43B.
    #[error("illegal Slow Protocols subtype {0}")]
    IllegalSubtype(u8),
    /// A TLV whose type or length is not the one the standard fixes for its position.
    #[error("bad {tlv} TLV: type {ty}, length {len}")]
    BadTlv {
        /// Which TLV.
        tlv: TlvKind,
        /// Type octet found.
        ty: u8,
        /// Length octet found.
        len: u8,
    },
    /// A Marker PDU with a TLV type other than information (1) or response (2).
    #[error("unknown marker TLV type {0}")]
    UnknownMarkerTlv(u8),
}

impl WireError {
    /// True when the 802.3 MIB counts this as an illegal frame (illegal_rx), false when it counts
    /// it as unknown (unknown_rx).
    pub fn is_illegal(&self) -> bool {
        matches!(
            self,
            WireError::Truncated { .. }
                | WireError::WrongSubtype { .. }
                | WireError::IllegalSubtype(_)
                | WireError::BadTlv { .. }
        )
    }
}

/// The body of the `parse` fuzz target and of the arbitrary-bytes property test.
///
/// Feeds `data` to every parser (whole frame, bare LACPDU, bare Marker PDU). Parsers must return
/// `Ok` or `Err`, never panic; whatever parses must emit and re-parse to the same value (the only
/// panics here are those assertions, which would be bugs).
pub fn fuzz_parse(data: &[u8]) {
    if let Ok(frame) = parse_frame(data) {
        match frame.pdu {
            SlowPdu::Lacpdu(repr) => {
                let out = Frame::lacpdu(frame.header.src, &repr);
                let again = parse_frame(&out).expect("re-parse of emitted LACPDU frame");
                assert_eq!(again.pdu, SlowPdu::Lacpdu(repr));
            }
            SlowPdu::Marker(repr) => {
                let out = Frame::marker(frame.header.src, &repr);
                let again = parse_frame(&out).expect("re-parse of emitted marker frame");
                assert_eq!(again.pdu, SlowPdu::Marker(repr));
            }
            SlowPdu::Other { .. } => {}
        }
    }
    if let Ok(pkt) = LacpduPacket::new_checked(data) {
        if let Ok(repr) = LacpduRepr::parse(&pkt) {
            let mut buf = [0u8; LACPDU_LEN];
            let mut out = LacpduPacket::new_unchecked(&mut buf[..]);
            repr.emit(&mut out);
            let back = LacpduRepr::parse(&LacpduPacket::new_unchecked(&buf[..]))
                .expect("re-parse of emitted LACPDU");
            assert_eq!(back, repr);
        }
    }
    if let Ok(pkt) = MarkerPacket::new_checked(data) {
        if let Ok(repr) = MarkerRepr::parse(&pkt) {
            let mut buf = [0u8; MARKER_LEN];
            repr.emit(&mut MarkerPacket::new_unchecked(&mut buf[..]));
            let back = MarkerRepr::parse(&MarkerPacket::new_unchecked(&buf[..]))
                .expect("re-parse of emitted marker");
            assert_eq!(back, repr);
        }
    }
}
