//! The LACPDU (802.1AX-2014 clause 6.4.2, Figure 6-7).
//!
//! Octets after the Ethernet header (offsets from the subtype octet):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | Subtype = 1 (LACP) |
//! | 1 | 1 | Version Number = 1 |
//! | 2 | 2 | TLV_type = 1 (Actor Information), Actor_Information_Length = 20 |
//! | 4 | 18 | Actor: System_Priority u16, System `[u8; 6]`, Key u16, Port_Priority u16, Port u16, State u8, 3 reserved |
//! | 22 | 2 | TLV_type = 2 (Partner Information), Partner_Information_Length = 20 |
//! | 24 | 18 | Partner: same layout as the actor |
//! | 42 | 2 | TLV_type = 3 (Collector Information), Collector_Information_Length = 16 |
//! | 44 | 2 | CollectorMaxDelay u16 |
//! | 46 | 12 | reserved |
//! | 58 | 2 | TLV_type = 0 (Terminator), Terminator_Length = 0 |
//! | 60 | 50 | reserved |
//!
//! 110 octets in all; all multi-octet fields big-endian.

use super::{MacAddr, PortState, TlvKind, WireError, SUBTYPE_LACP};

/// Length of an LACPDU after the Ethernet header.
pub const LACPDU_LEN: usize = 110;

mod field {
    pub(super) type Field = core::ops::Range<usize>;
    pub(super) const SUBTYPE: usize = 0;
    pub(super) const VERSION: usize = 1;
    pub(super) const ACTOR_TYPE: usize = 2;
    pub(super) const ACTOR_LEN: usize = 3;
    pub(super) const ACTOR: Field = 4..22;
    pub(super) const PARTNER_TYPE: usize = 22;
    pub(super) const PARTNER_LEN: usize = 23;
    pub(super) const PARTNER: Field = 24..42;
    pub(super) const COLLECTOR_TYPE: usize = 42;
    pub(super) const COLLECTOR_LEN: usize = 43;
    pub(super) const COLLECTOR_MAX_DELAY: Field = 44..46;
    pub(super) const COLLECTOR_RESERVED: Field = 46..58;
    pub(super) const TERMINATOR_TYPE: usize = 58;
    pub(super) const TERMINATOR_LEN: usize = 59;
    pub(super) const RESERVED: Field = 60..110;

    // Inside an actor/partner information value.
    pub(super) const SYS_PRIO: Field = 0..2;
    pub(super) const SYSTEM: Field = 2..8;
    pub(super) const KEY: Field = 8..10;
    pub(super) const PORT_PRIO: Field = 10..12;
    pub(super) const PORT: Field = 12..14;
    pub(super) const STATE: usize = 14;
    pub(super) const INFO_RESERVED: Field = 15..18;
}

/// TLV type of Actor Information.
pub const TLV_ACTOR: u8 = 1;
/// TLV type of Partner Information.
pub const TLV_PARTNER: u8 = 2;
/// TLV type of Collector Information.
pub const TLV_COLLECTOR: u8 = 3;
/// TLV type of the Terminator.
pub const TLV_TERMINATOR: u8 = 0;
/// Length of the actor and partner TLVs (header included).
pub const INFO_TLV_LEN: u8 = 20;
/// Length of the collector TLV (header included).
pub const COLLECTOR_TLV_LEN: u8 = 16;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A zero-copy view of an LACPDU (the octets after the Ethernet header).
#[derive(Debug, Clone)]
pub struct LacpduPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LacpduPacket<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        LacpduPacket { buffer }
    }

    /// Wraps a buffer after checking that it holds at least [`LACPDU_LEN`] octets, so that no
    /// accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the length once (padding beyond 110 octets is accepted).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < LACPDU_LEN {
            Err(WireError::Truncated {
                len,
                min: LACPDU_LEN,
            })
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Subtype octet (1 for LACP).
    pub fn subtype(&self) -> u8 {
        self.b()[field::SUBTYPE]
    }
    /// Version Number octet.
    pub fn version(&self) -> u8 {
        self.b()[field::VERSION]
    }
    /// Actor TLV type and length octets.
    pub fn actor_tlv(&self) -> (u8, u8) {
        (self.b()[field::ACTOR_TYPE], self.b()[field::ACTOR_LEN])
    }
    /// Partner TLV type and length octets.
    pub fn partner_tlv(&self) -> (u8, u8) {
        (self.b()[field::PARTNER_TYPE], self.b()[field::PARTNER_LEN])
    }
    /// Collector TLV type and length octets.
    pub fn collector_tlv(&self) -> (u8, u8) {
        (
            self.b()[field::COLLECTOR_TYPE],
            self.b()[field::COLLECTOR_LEN],
        )
    }
    /// Terminator TLV type and length octets (at the version-1 offset).
    pub fn terminator_tlv(&self) -> (u8, u8) {
        (
            self.b()[field::TERMINATOR_TYPE],
            self.b()[field::TERMINATOR_LEN],
        )
    }
    /// The actor information fields.
    pub fn actor(&self) -> ParticipantInfo {
        ParticipantInfo::read(&self.b()[field::ACTOR])
    }
    /// The partner information fields.
    pub fn partner(&self) -> ParticipantInfo {
        ParticipantInfo::read(&self.b()[field::PARTNER])
    }
    /// CollectorMaxDelay, in tens of microseconds.
    pub fn collector_max_delay(&self) -> u16 {
        be16(&self.b()[field::COLLECTOR_MAX_DELAY])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LacpduPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets the subtype octet.
    pub fn set_subtype(&mut self, v: u8) {
        self.bm()[field::SUBTYPE] = v;
    }
    /// Sets the version octet.
    pub fn set_version(&mut self, v: u8) {
        self.bm()[field::VERSION] = v;
    }
    /// Writes the actor TLV (header and value, reserved octets zero).
    pub fn set_actor(&mut self, info: &ParticipantInfo) {
        self.bm()[field::ACTOR_TYPE] = TLV_ACTOR;
        self.bm()[field::ACTOR_LEN] = INFO_TLV_LEN;
        info.write(&mut self.bm()[field::ACTOR]);
    }
    /// Writes the partner TLV (header and value, reserved octets zero).
    pub fn set_partner(&mut self, info: &ParticipantInfo) {
        self.bm()[field::PARTNER_TYPE] = TLV_PARTNER;
        self.bm()[field::PARTNER_LEN] = INFO_TLV_LEN;
        info.write(&mut self.bm()[field::PARTNER]);
    }
    /// Writes the collector TLV.
    pub fn set_collector(&mut self, max_delay: u16) {
        self.bm()[field::COLLECTOR_TYPE] = TLV_COLLECTOR;
        self.bm()[field::COLLECTOR_LEN] = COLLECTOR_TLV_LEN;
        self.bm()[field::COLLECTOR_MAX_DELAY].copy_from_slice(&max_delay.to_be_bytes());
        self.bm()[field::COLLECTOR_RESERVED].fill(0);
    }
    /// Writes the terminator TLV and zeroes the 50 reserved octets.
    pub fn set_terminator(&mut self) {
        self.bm()[field::TERMINATOR_TYPE] = TLV_TERMINATOR;
        self.bm()[field::TERMINATOR_LEN] = 0;
        self.bm()[field::RESERVED].fill(0);
    }
}

/// One side's information in an LACPDU: the actor's view of itself or of its partner
/// (802.1AX-2014 clause 6.4.2.3, items e-m and o-u).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ParticipantInfo {
    /// System_Priority.
    pub system_priority: u16,
    /// System (MAC address part of the System Identifier).
    pub system: MacAddr,
    /// Key (operational key).
    pub key: u16,
    /// Port_Priority.
    pub port_priority: u16,
    /// Port (port number; 0 is never a valid actor port number).
    pub port: u16,
    /// State bits.
    pub state: PortState,
}

impl ParticipantInfo {
    fn read(b: &[u8]) -> ParticipantInfo {
        ParticipantInfo {
            system_priority: be16(&b[field::SYS_PRIO]),
            system: super::mac_at(&b[field::SYSTEM]),
            key: be16(&b[field::KEY]),
            port_priority: be16(&b[field::PORT_PRIO]),
            port: be16(&b[field::PORT]),
            state: PortState::from_bits(b[field::STATE]),
        }
    }

    fn write(&self, b: &mut [u8]) {
        b[field::SYS_PRIO].copy_from_slice(&self.system_priority.to_be_bytes());
        b[field::SYSTEM].copy_from_slice(&self.system.0);
        b[field::KEY].copy_from_slice(&self.key.to_be_bytes());
        b[field::PORT_PRIO].copy_from_slice(&self.port_priority.to_be_bytes());
        b[field::PORT].copy_from_slice(&self.port.to_be_bytes());
        b[field::STATE] = self.state.bits();
        b[field::INFO_RESERVED].fill(0);
    }

    /// The System Identifier (priority, MAC) as one comparable value.
    pub fn system_id(&self) -> crate::config::SystemId {
        crate::config::SystemId {
            priority: self.system_priority,
            mac: self.system,
        }
    }
}

/// A validated LACPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LacpduRepr {
    /// Version Number as received (we emit what is stored here; the engine always uses 1).
    pub version: u8,
    /// Actor information: the sender's view of itself.
    pub actor: ParticipantInfo,
    /// Partner information: the sender's view of its partner (the receiver).
    pub partner: ParticipantInfo,
    /// CollectorMaxDelay in tens of microseconds.
    pub collector_max_delay: u16,
}

impl LacpduRepr {
    /// Parses and validates a checked packet view.
    ///
    /// Strict on the subtype and the TLV headers that give the actor, partner and collector
    /// information their meaning; in version 1 the terminator must sit at offset 58. Any other
    /// version is accepted with its extra TLVs skipped (802.1AX-2014 clause 6.4.2.3 keeps the
    /// version-1 TLVs at the same offsets in version 2; IEEE 802.3 clause 43.4.12 tells receivers
    /// not to validate the version number). Reserved octets are never checked.
    pub fn parse<T: AsRef<[u8]>>(packet: &LacpduPacket<T>) -> Result<LacpduRepr, WireError> {
        packet.check_len()?;
        if packet.subtype() != SUBTYPE_LACP {
            return Err(WireError::WrongSubtype {
                found: packet.subtype(),
                expected: SUBTYPE_LACP,
            });
        }
        let check = |tlv: TlvKind, (ty, len): (u8, u8), want_ty: u8, want_len: u8| {
            if ty == want_ty && len == want_len {
                Ok(())
            } else {
                Err(WireError::BadTlv { tlv, ty, len })
            }
        };
        check(TlvKind::Actor, packet.actor_tlv(), TLV_ACTOR, INFO_TLV_LEN)?;
        check(
            TlvKind::Partner,
            packet.partner_tlv(),
            TLV_PARTNER,
            INFO_TLV_LEN,
        )?;
        check(
            TlvKind::Collector,
            packet.collector_tlv(),
            TLV_COLLECTOR,
            COLLECTOR_TLV_LEN,
        )?;
        if packet.version() == 1 {
            check(
                TlvKind::Terminator,
                packet.terminator_tlv(),
                TLV_TERMINATOR,
                0,
            )?;
        }
        Ok(LacpduRepr {
            version: packet.version(),
            actor: packet.actor(),
            partner: packet.partner(),
            collector_max_delay: packet.collector_max_delay(),
        })
    }

    /// Octets [`LacpduRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        LACPDU_LEN
    }

    /// Writes the version-1 layout (with `self.version` in the version octet) into a packet of at
    /// least [`LACPDU_LEN`] octets; all reserved octets are zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut LacpduPacket<T>) {
        packet.set_subtype(SUBTYPE_LACP);
        packet.set_version(self.version);
        packet.set_actor(&self.actor);
        packet.set_partner(&self.partner);
        packet.set_collector(self.collector_max_delay);
        packet.set_terminator();
    }
}
