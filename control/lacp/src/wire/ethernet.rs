//! Whole Ethernet frames carrying Slow Protocols PDUs, as the dataplane receives and transmits
//! them (no FCS): DA, SA, EtherType 0x8809, then the PDU.

use core::fmt;
use core::ops::Deref;

use super::{
    LacpduPacket, LacpduRepr, MacAddr, MarkerPacket, MarkerRepr, WireError, LACPDU_LEN, MARKER_LEN,
    SUBTYPE_LACP, SUBTYPE_MARKER, SUBTYPE_MAX_ASSIGNED,
};

/// The Slow_Protocols_Multicast group address 01-80-C2-00-00-02 (IEEE 802.3 Annex 57A).
pub const SLOW_PROTOCOLS_MULTICAST: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x02]);
/// Nearest Customer Bridge group address, also allowed for LACPDUs by 802.1AX-2014 clause 6.2.11.
pub const NEAREST_CUSTOMER_BRIDGE: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);
/// Nearest non-TPMR Bridge group address, also allowed by 802.1AX-2014 clause 6.2.11.
pub const NEAREST_NON_TPMR_BRIDGE: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x03]);
/// The Slow Protocols EtherType.
pub const ETHERTYPE_SLOW_PROTOCOLS: u16 = types::ethertype::SLOW_PROTOCOLS;
/// Length of the untagged Ethernet header.
pub const ETH_HEADER_LEN: usize = 14;
/// Length of every frame the engine transmits: 14 + 110 = 124 octets before the FCS.
pub const FRAME_LEN: usize = ETH_HEADER_LEN + LACPDU_LEN;

const TPIDS: [u16; 3] = [
    types::ethertype::VLAN,
    types::ethertype::QINQ,
    types::ethertype::QINQ_LEGACY,
];

/// The untagged Ethernet header of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetHeader {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// EtherType.
    pub ethertype: u16,
}

/// What a Slow Protocols frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlowPdu {
    /// An LACPDU (subtype 1).
    Lacpdu(LacpduRepr),
    /// A Marker PDU (subtype 2).
    Marker(MarkerRepr),
    /// Another assigned Slow Protocols subtype (3..=10: OAM, OSSP, ...), not handled here.
    Other {
        /// The subtype octet.
        subtype: u8,
    },
}

/// A parsed Slow Protocols frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlowFrame {
    /// The Ethernet header.
    pub header: EthernetHeader,
    /// The PDU.
    pub pdu: SlowPdu,
}

/// Parses a whole Ethernet frame (without FCS; trailing octets are ignored).
///
/// VLAN-tagged frames (TPID 0x8100, 0x88a8, 0x9100, priority tags included) are rejected with
/// [`WireError::VlanTagged`]: Slow Protocols frames are never tagged (IEEE 802.3 Annex 57A.4), and
/// DPDK's bonding PMD makes the same choice. The destination address is *not* checked here; the
/// engine decides which destinations it accepts.
pub fn parse_frame(bytes: &[u8]) -> Result<SlowFrame, WireError> {
    if bytes.len() < ETH_HEADER_LEN {
        return Err(WireError::Truncated {
            len: bytes.len(),
            min: ETH_HEADER_LEN,
        });
    }
    let header = EthernetHeader {
        dst: super::mac_at(&bytes[0..6]),
        src: super::mac_at(&bytes[6..12]),
        ethertype: u16::from_be_bytes([bytes[12], bytes[13]]),
    };
    if TPIDS.contains(&header.ethertype) {
        return Err(WireError::VlanTagged(header.ethertype));
    }
    if header.ethertype != ETHERTYPE_SLOW_PROTOCOLS {
        return Err(WireError::NotSlowProtocols(header.ethertype));
    }
    let payload = &bytes[ETH_HEADER_LEN..];
    let Some(&subtype) = payload.first() else {
        return Err(WireError::Truncated {
            len: 0,
            min: LACPDU_LEN,
        });
    };
    let pdu = match subtype {
        SUBTYPE_LACP => SlowPdu::Lacpdu(LacpduRepr::parse(&LacpduPacket::new_checked(payload)?)?),
        SUBTYPE_MARKER => SlowPdu::Marker(MarkerRepr::parse(&MarkerPacket::new_checked(payload)?)?),
        3..=SUBTYPE_MAX_ASSIGNED => SlowPdu::Other { subtype },
        _ => return Err(WireError::IllegalSubtype(subtype)),
    };
    Ok(SlowFrame { header, pdu })
}

/// A frame the engine transmits: always [`FRAME_LEN`] octets (LACPDU or Marker PDU), no heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    bytes: [u8; FRAME_LEN],
}

impl Frame {
    fn header(src: MacAddr) -> Frame {
        let mut bytes = [0u8; FRAME_LEN];
        bytes[0..6].copy_from_slice(&SLOW_PROTOCOLS_MULTICAST.0);
        bytes[6..12].copy_from_slice(&src.0);
        bytes[12..14].copy_from_slice(&ETHERTYPE_SLOW_PROTOCOLS.to_be_bytes());
        Frame { bytes }
    }

    /// An LACPDU frame from the member whose MAC is `src` (802.1AX-2014 clause 6.2.11: the
    /// source address is the individual address of the Aggregation Port).
    pub fn lacpdu(src: MacAddr, repr: &LacpduRepr) -> Frame {
        let mut f = Frame::header(src);
        repr.emit(&mut LacpduPacket::new_unchecked(
            &mut f.bytes[ETH_HEADER_LEN..],
        ));
        f
    }

    /// A Marker PDU frame from the member whose MAC is `src`.
    pub fn marker(src: MacAddr, repr: &MarkerRepr) -> Frame {
        let mut f = Frame::header(src);
        debug_assert_eq!(MARKER_LEN, LACPDU_LEN);
        repr.emit(&mut MarkerPacket::new_unchecked(
            &mut f.bytes[ETH_HEADER_LEN..],
        ));
        f
    }

    /// The octets, DA first.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match parse_frame(&self.bytes) {
            Ok(p) => write!(
                f,
                "Frame({} -> {}: {:?})",
                p.header.src, p.header.dst, p.pdu
            ),
            Err(e) => write!(f, "Frame(unparsable: {e})"),
        }
    }
}
