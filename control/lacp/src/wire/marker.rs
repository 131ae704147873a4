//! The Marker PDU (802.1AX-2014 clause 6.5.3, Figure 6-19).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | Subtype = 2 (Marker) |
//! | 1 | 1 | Version Number = 1 |
//! | 2 | 2 | TLV_type = 1 (Marker Information) or 2 (Marker Response), length = 16 |
//! | 4 | 2 | Requester_Port u16 |
//! | 6 | 6 | Requester_System |
//! | 12 | 4 | Requester_Transaction_ID u32 |
//! | 16 | 2 | Pad = 0 |
//! | 18 | 2 | TLV_type = 0 (Terminator), length = 0 |
//! | 20 | 90 | reserved |

use super::{MacAddr, TlvKind, WireError, SUBTYPE_MARKER};

/// Length of a Marker PDU after the Ethernet header.
pub const MARKER_LEN: usize = 110;

mod field {
    pub(super) type Field = core::ops::Range<usize>;
    pub(super) const SUBTYPE: usize = 0;
    pub(super) const VERSION: usize = 1;
    pub(super) const TLV_TYPE: usize = 2;
    pub(super) const TLV_LEN: usize = 3;
    pub(super) const REQUESTER_PORT: Field = 4..6;
    pub(super) const REQUESTER_SYSTEM: Field = 6..12;
    pub(super) const TRANSACTION_ID: Field = 12..16;
    pub(super) const PAD: Field = 16..18;
    pub(super) const TERMINATOR_TYPE: usize = 18;
    pub(super) const TERMINATOR_LEN: usize = 19;
    pub(super) const RESERVED: Field = 20..110;
}

/// Length of the Marker Information / Response TLV (header included).
pub const MARKER_TLV_LEN: u8 = 16;

/// Which Marker TLV a PDU carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MarkerKind {
    /// Marker Information (TLV type 1): a request the responder must answer.
    Information,
    /// Marker Response (TLV type 2).
    Response,
}

impl MarkerKind {
    fn tlv_type(self) -> u8 {
        match self {
            MarkerKind::Information => 1,
            MarkerKind::Response => 2,
        }
    }
}

/// A zero-copy view of a Marker PDU.
#[derive(Debug, Clone)]
pub struct MarkerPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MarkerPacket<T> {
    /// Wraps a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> Self {
        MarkerPacket { buffer }
    }
    /// Wraps a buffer after checking it holds at least [`MARKER_LEN`] octets.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// Checks the length.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < MARKER_LEN {
            Err(WireError::Truncated {
                len,
                min: MARKER_LEN,
            })
        } else {
            Ok(())
        }
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Subtype octet.
    pub fn subtype(&self) -> u8 {
        self.b()[field::SUBTYPE]
    }
    /// Version octet.
    pub fn version(&self) -> u8 {
        self.b()[field::VERSION]
    }
    /// Marker TLV type and length.
    pub fn marker_tlv(&self) -> (u8, u8) {
        (self.b()[field::TLV_TYPE], self.b()[field::TLV_LEN])
    }
    /// Terminator TLV type and length.
    pub fn terminator_tlv(&self) -> (u8, u8) {
        (
            self.b()[field::TERMINATOR_TYPE],
            self.b()[field::TERMINATOR_LEN],
        )
    }
    /// Requester_Port.
    pub fn requester_port(&self) -> u16 {
        let b = &self.b()[field::REQUESTER_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Requester_System.
    pub fn requester_system(&self) -> MacAddr {
        super::mac_at(&self.b()[field::REQUESTER_SYSTEM])
    }
    /// Requester_Transaction_ID.
    pub fn transaction_id(&self) -> u32 {
        let b = &self.b()[field::TRANSACTION_ID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MarkerPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Writes the subtype and version octets.
    pub fn set_header(&mut self, version: u8) {
        self.bm()[field::SUBTYPE] = SUBTYPE_MARKER;
        self.bm()[field::VERSION] = version;
    }
    /// Writes the marker TLV.
    pub fn set_marker(&mut self, kind: MarkerKind, port: u16, system: MacAddr, transaction: u32) {
        let b = self.bm();
        b[field::TLV_TYPE] = kind.tlv_type();
        b[field::TLV_LEN] = MARKER_TLV_LEN;
        b[field::REQUESTER_PORT].copy_from_slice(&port.to_be_bytes());
        b[field::REQUESTER_SYSTEM].copy_from_slice(&system.0);
        b[field::TRANSACTION_ID].copy_from_slice(&transaction.to_be_bytes());
        b[field::PAD].fill(0);
    }
    /// Writes the terminator and zeroes the reserved octets.
    pub fn set_terminator(&mut self) {
        let b = self.bm();
        b[field::TERMINATOR_TYPE] = 0;
        b[field::TERMINATOR_LEN] = 0;
        b[field::RESERVED].fill(0);
    }
}

/// A validated Marker PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MarkerRepr {
    /// Information (request) or Response.
    pub kind: MarkerKind,
    /// Requester_Port.
    pub requester_port: u16,
    /// Requester_System.
    pub requester_system: MacAddr,
    /// Requester_Transaction_ID.
    pub transaction_id: u32,
}

impl MarkerRepr {
    /// Parses and validates a Marker PDU. An unknown TLV type is [`WireError::UnknownMarkerTlv`]
    /// (counted as unknown, like Linux's marker_unknown_rx); a wrong TLV length is illegal; the
    /// terminator is checked in version 1 only.
    pub fn parse<T: AsRef<[u8]>>(packet: &MarkerPacket<T>) -> Result<MarkerRepr, WireError> {
        packet.check_len()?;
        if packet.subtype() != SUBTYPE_MARKER {
            return Err(WireError::WrongSubtype {
                found: packet.subtype(),
                expected: SUBTYPE_MARKER,
            });
        }
        let (ty, len) = packet.marker_tlv();
        let kind = match ty {
            1 => MarkerKind::Information,
            2 => MarkerKind::Response,
            other => return Err(WireError::UnknownMarkerTlv(other)),
        };
        if len != MARKER_TLV_LEN {
            return Err(WireError::BadTlv {
                tlv: TlvKind::Marker,
                ty,
                len,
            });
        }
        if packet.version() == 1 {
            let (ty, len) = packet.terminator_tlv();
            if ty != 0 || len != 0 {
                return Err(WireError::BadTlv {
                    tlv: TlvKind::Terminator,
                    ty,
                    len,
                });
            }
        }
        Ok(MarkerRepr {
            kind,
            requester_port: packet.requester_port(),
            requester_system: packet.requester_system(),
            transaction_id: packet.transaction_id(),
        })
    }

    /// Octets [`MarkerRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        MARKER_LEN
    }

    /// Writes a version-1 Marker PDU.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut MarkerPacket<T>) {
        packet.set_header(1);
        packet.set_marker(
            self.kind,
            self.requester_port,
            self.requester_system,
            self.transaction_id,
        );
        packet.set_terminator();
    }

    /// The response the Marker Responder sends to this information PDU
    /// (802.1AX-2014 clause 6.5.4.2: same requester fields, TLV type 2).
    pub fn response(&self) -> MarkerRepr {
        MarkerRepr {
            kind: MarkerKind::Response,
            ..*self
        }
    }
}
