//! Wire layer: golden byte fixtures written by hand from the 802.1AX-2014 layout (clause
//! 6.4.2: actor, partner, collector and terminator TLVs; the Marker PDU of clause 6.5.3),
//! checked field by field, and every malformed class the receive policy names
//! (docs/lacp-engine.md, "Wire decisions"), numbered P1-P10 below.

use lacp::wire::*;

/// A 124-octet LACPDU frame, written octet by octet.
#[rustfmt::skip]
const GOLDEN_LACPDU: [u8; 124] = [
    // Ethernet: DA 01-80-C2-00-00-02, SA 02-00-00-01-00-01, EtherType 0x8809
    0x01, 0x80, 0xc2, 0x00, 0x00, 0x02,
    0x02, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x88, 0x09,
    // Subtype LACP, Version 1
    0x01, 0x01,
    // Actor TLV: type 1, length 20
    0x01, 0x14,
    0x80, 0x00,                          // system priority 32768
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55,  // system
    0x00, 0x0a,                          // key 10
    0x00, 0xff,                          // port priority 255
    0x00, 0x01,                          // port 1
    0x3d,                                // activity aggregation sync collecting distributing
    0x00, 0x00, 0x00,                    // reserved
    // Partner TLV: type 2, length 20
    0x02, 0x14,
    0x7f, 0xff,
    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x00, 0x14,
    0x00, 0x80,
    0x01, 0x02,
    0x3f,
    0x00, 0x00, 0x00,
    // Collector TLV: type 3, length 16, max delay 0x1234, 12 reserved
    0x03, 0x10,
    0x12, 0x34,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    // Terminator: type 0, length 0
    0x00, 0x00,
    // 50 reserved octets
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A 124-octet Marker Information frame.
#[rustfmt::skip]
const GOLDEN_MARKER: [u8; 124] = [
    0x01, 0x80, 0xc2, 0x00, 0x00, 0x02,
    0x02, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x88, 0x09,
    0x02, 0x01,                          // subtype Marker, version 1
    0x01, 0x10,                          // Marker Information, length 16
    0x00, 0x07,                          // requester port 7
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55,  // requester system
    0xde, 0xad, 0xbe, 0xef,              // transaction id
    0x00, 0x00,                          // pad
    0x00, 0x00,                          // terminator
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

const SA: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x01, 0x00, 0x01]);

fn golden_repr() -> LacpduRepr {
    LacpduRepr {
        version: 1,
        actor: ParticipantInfo {
            system_priority: 32768,
            system: MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            key: 10,
            port_priority: 255,
            port: 1,
            state: PortState::ACTIVITY
                | PortState::AGGREGATION
                | PortState::SYNCHRONIZATION
                | PortState::COLLECTING
                | PortState::DISTRIBUTING,
        },
        partner: ParticipantInfo {
            system_priority: 0x7fff,
            system: MacAddr([0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb]),
            key: 0x14,
            port_priority: 0x80,
            port: 0x0102,
            state: PortState::from_bits(0x3f),
        },
        collector_max_delay: 0x1234,
    }
}

fn golden_marker() -> MarkerRepr {
    MarkerRepr {
        kind: MarkerKind::Information,
        requester_port: 7,
        requester_system: MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
        transaction_id: 0xdead_beef,
    }
}

#[test]
fn p1_golden_lacpdu_frame_layout_field_by_field() {
    let f = Frame::lacpdu(SA, &golden_repr());
    let b = f.as_bytes();
    assert_eq!(b.len(), 124, "124-byte frame before FCS");
    assert_eq!(
        &b[0..6],
        &[0x01, 0x80, 0xc2, 0x00, 0x00, 0x02],
        "DA slow protocols"
    );
    assert_eq!(&b[6..12], &SA.0, "SA is the member's own MAC");
    assert_eq!(&b[12..14], &[0x88, 0x09], "EtherType");
    assert_eq!(b[14], 1, "subtype LACP");
    assert_eq!(b[15], 1, "version 1");
    assert_eq!((b[16], b[17]), (1, 20), "actor TLV");
    assert_eq!(
        &b[18..20],
        &32768u16.to_be_bytes(),
        "actor system priority BE"
    );
    assert_eq!(
        &b[20..26],
        &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
        "actor system"
    );
    assert_eq!(&b[26..28], &[0x00, 0x0a], "actor key BE");
    assert_eq!(&b[28..30], &[0x00, 0xff], "actor port priority BE");
    assert_eq!(&b[30..32], &[0x00, 0x01], "actor port BE");
    assert_eq!(b[32], 0x3d, "actor state");
    assert_eq!(&b[33..36], &[0, 0, 0], "actor reserved");
    assert_eq!((b[36], b[37]), (2, 20), "partner TLV");
    assert_eq!(&b[38..40], &[0x7f, 0xff]);
    assert_eq!(&b[40..46], &[0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb]);
    assert_eq!(&b[46..48], &[0x00, 0x14]);
    assert_eq!(&b[48..50], &[0x00, 0x80]);
    assert_eq!(
        &b[50..52],
        &[0x01, 0x02],
        "partner port BE (0x0102, not 0x0201)"
    );
    assert_eq!(b[52], 0x3f);
    assert_eq!((b[56], b[57]), (3, 16), "collector TLV");
    assert_eq!(&b[58..60], &[0x12, 0x34], "collector max delay BE");
    assert!(b[60..72].iter().all(|&x| x == 0), "collector reserved");
    assert_eq!((b[72], b[73]), (0, 0), "terminator");
    assert!(b[74..124].iter().all(|&x| x == 0), "50 reserved octets");
    assert_eq!(
        b,
        &GOLDEN_LACPDU[..],
        "whole frame equals the hand-written fixture"
    );
}

#[test]
fn p1_golden_lacpdu_parses_and_round_trips() {
    let f = parse_frame(&GOLDEN_LACPDU).unwrap();
    assert_eq!(f.header.dst, SLOW_PROTOCOLS_MULTICAST);
    assert_eq!(f.header.src, SA);
    assert_eq!(f.header.ethertype, 0x8809);
    assert_eq!(f.pdu, SlowPdu::Lacpdu(golden_repr()));
    // View accessors, field by field.
    let p = LacpduPacket::new_checked(&GOLDEN_LACPDU[14..]).unwrap();
    assert_eq!(p.subtype(), 1);
    assert_eq!(p.version(), 1);
    assert_eq!(p.actor_tlv(), (1, 20));
    assert_eq!(p.partner_tlv(), (2, 20));
    assert_eq!(p.collector_tlv(), (3, 16));
    assert_eq!(p.terminator_tlv(), (0, 0));
    assert_eq!(p.actor().port, 1);
    assert_eq!(p.partner().port, 0x0102);
    assert_eq!(p.collector_max_delay(), 0x1234);
    let repr = LacpduRepr::parse(&p).unwrap();
    assert_eq!(repr.buffer_len(), LACPDU_LEN);
    let mut buf = [0xffu8; LACPDU_LEN];
    repr.emit(&mut LacpduPacket::new_unchecked(&mut buf[..]));
    assert_eq!(
        &buf[..],
        &GOLDEN_LACPDU[14..],
        "emit zeroes reserved octets"
    );
}

#[test]
fn p9_golden_marker_layout_and_response() {
    let f = Frame::marker(SA, &golden_marker());
    assert_eq!(f.as_bytes(), &GOLDEN_MARKER[..]);
    let b = f.as_bytes();
    assert_eq!((b[14], b[15]), (2, 1), "subtype marker, version 1");
    assert_eq!((b[16], b[17]), (1, 16), "marker information TLV");
    assert_eq!(&b[18..20], &[0, 7]);
    assert_eq!(&b[26..30], &[0xde, 0xad, 0xbe, 0xef], "transaction id BE");
    assert_eq!((b[32], b[33]), (0, 0), "terminator");
    let parsed = parse_frame(&GOLDEN_MARKER).unwrap();
    assert_eq!(parsed.pdu, SlowPdu::Marker(golden_marker()));
    let resp = golden_marker().response();
    assert_eq!(resp.kind, MarkerKind::Response);
    let rf = Frame::marker(SA, &resp);
    assert_eq!(rf[16], 2, "response TLV type 2");
    assert_eq!(&rf[18..34], &GOLDEN_MARKER[18..34], "same requester fields");
}

fn lacpdu_bytes() -> Vec<u8> {
    GOLDEN_LACPDU.to_vec()
}

#[test]
fn p5_short_frames_are_truncated() {
    for len in [0, 13, 14, 15, 60, 123] {
        let b = &GOLDEN_LACPDU[..len];
        match parse_frame(b) {
            Err(WireError::Truncated { len: l, .. }) => assert!(l < 110 || len < 14),
            other => panic!("len {len}: {other:?}"),
        }
    }
    assert!(matches!(
        LacpduPacket::new_checked(&GOLDEN_LACPDU[14..123]),
        Err(WireError::Truncated { len: 109, min: 110 })
    ));
    assert!(parse_frame(&GOLDEN_LACPDU[..14]).unwrap_err().is_illegal());
}

#[test]
fn p5_padded_and_oversized_frames_are_accepted() {
    let mut b = lacpdu_bytes();
    b.extend_from_slice(&[0xaa; 1376]); // jumbo padding / FCS
    assert_eq!(parse_frame(&b).unwrap().pdu, SlowPdu::Lacpdu(golden_repr()));
}

#[test]
fn p4_tlv_lengths_and_types_are_strict() {
    let cases: [(usize, u8, TlvKind); 10] = [
        (17, 19, TlvKind::Actor),
        (17, 21, TlvKind::Actor),
        (16, 2, TlvKind::Actor),
        (37, 19, TlvKind::Partner),
        (37, 21, TlvKind::Partner),
        (36, 1, TlvKind::Partner),
        (57, 15, TlvKind::Collector),
        (57, 17, TlvKind::Collector),
        (73, 1, TlvKind::Terminator),
        (72, 9, TlvKind::Terminator),
    ];
    for (offset, value, tlv) in cases {
        let mut b = lacpdu_bytes();
        b[offset] = value;
        match parse_frame(&b) {
            Err(e @ WireError::BadTlv { tlv: t, .. }) => {
                assert_eq!(t, tlv, "offset {offset}");
                assert!(e.is_illegal());
            }
            other => panic!("offset {offset} value {value}: {other:?}"),
        }
    }
}

#[test]
fn p3_reserved_octets_are_not_checked() {
    let mut b = lacpdu_bytes();
    for i in [33, 34, 35, 53, 54, 55, 60, 71, 74, 100, 123] {
        b[i] = 0x5a;
    }
    assert_eq!(parse_frame(&b).unwrap().pdu, SlowPdu::Lacpdu(golden_repr()));
}

#[test]
fn p6_version_2_with_extra_tlvs_yields_actor_and_partner() {
    // Version 2: extra TLVs after the collector, terminator later, frame longer than 124.
    let mut b = lacpdu_bytes();
    b[15] = 2;
    let mut extra = vec![
        0x04, 0x06, 0x00, 0x80, 0xc2, 0x01, // a Port Algorithm TLV
        0x05, 0x12, // a Port Conversation ID Digest TLV, 16 octets of digest
    ];
    extra.extend_from_slice(&[0x11; 16]);
    extra.extend_from_slice(&[0x00, 0x00]); // terminator
    b.splice(72..74, extra);
    let f = parse_frame(&b).unwrap();
    let SlowPdu::Lacpdu(r) = f.pdu else { panic!() };
    assert_eq!(r.version, 2);
    assert_eq!(r.actor, golden_repr().actor);
    assert_eq!(r.partner, golden_repr().partner);
    // A version-2 PDU of the standard size with a TLV where v1 has its terminator.
    let mut c = lacpdu_bytes();
    c[15] = 2;
    c[72] = 0x04;
    c[73] = 0x06;
    assert!(matches!(parse_frame(&c).unwrap().pdu, SlowPdu::Lacpdu(_)));
    // Version 1 with the same bytes is strict.
    c[15] = 1;
    assert!(matches!(
        parse_frame(&c),
        Err(WireError::BadTlv {
            tlv: TlvKind::Terminator,
            ..
        })
    ));
    // But actor/partner lengths stay strict in version 2.
    let mut d = lacpdu_bytes();
    d[15] = 2;
    d[17] = 22;
    assert!(matches!(
        parse_frame(&d),
        Err(WireError::BadTlv {
            tlv: TlvKind::Actor,
            ..
        })
    ));
}

#[test]
fn wrong_subtype_and_other_slow_protocols() {
    let mut b = lacpdu_bytes();
    b[14] = 0;
    assert_eq!(parse_frame(&b), Err(WireError::IllegalSubtype(0)));
    b[14] = 11;
    assert_eq!(parse_frame(&b), Err(WireError::IllegalSubtype(11)));
    for st in [3u8, 10] {
        b[14] = st;
        assert_eq!(parse_frame(&b).unwrap().pdu, SlowPdu::Other { subtype: st });
    }
    // A marker handed to the LACPDU parser is the wrong subtype.
    let p = LacpduPacket::new_checked(&GOLDEN_MARKER[14..]).unwrap();
    assert_eq!(
        LacpduRepr::parse(&p),
        Err(WireError::WrongSubtype {
            found: 2,
            expected: 1
        })
    );
}

#[test]
fn p7_vlan_tagged_and_foreign_ethertypes() {
    let mut tagged = GOLDEN_LACPDU[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x00]); // priority tag, VID 0
    tagged.extend_from_slice(&GOLDEN_LACPDU[12..]);
    let e = parse_frame(&tagged).unwrap_err();
    assert_eq!(e, WireError::VlanTagged(0x8100));
    assert!(!e.is_illegal(), "counted as unknown, not illegal");
    let mut ip = lacpdu_bytes();
    ip[12] = 0x08;
    ip[13] = 0x00;
    assert_eq!(parse_frame(&ip), Err(WireError::NotSlowProtocols(0x0800)));
}

#[test]
fn p9_marker_malformed_classes() {
    let mut b = GOLDEN_MARKER.to_vec();
    b[16] = 3;
    assert_eq!(parse_frame(&b), Err(WireError::UnknownMarkerTlv(3)));
    assert!(!WireError::UnknownMarkerTlv(3).is_illegal());
    let mut b = GOLDEN_MARKER.to_vec();
    b[17] = 15;
    assert!(matches!(
        parse_frame(&b),
        Err(WireError::BadTlv {
            tlv: TlvKind::Marker,
            ..
        })
    ));
    let mut b = GOLDEN_MARKER.to_vec();
    b[33] = 4;
    assert!(matches!(
        parse_frame(&b),
        Err(WireError::BadTlv {
            tlv: TlvKind::Terminator,
            ..
        })
    ));
    assert!(matches!(
        parse_frame(&GOLDEN_MARKER[..100]),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn state_bits_decode_in_operator_words() {
    let s = golden_repr().actor.state;
    assert_eq!(
        s.to_string(),
        "activity aggregation synchronization collecting distributing"
    );
    assert!(s.activity() && !s.short_timeout() && s.aggregation() && s.synchronization());
    assert!(s.collecting() && s.distributing() && !s.defaulted() && !s.expired());
    assert_eq!(
        PortState::from_bits(0xc2).to_string(),
        "timeout defaulted expired"
    );
}

#[test]
fn fuzz_body_accepts_fixtures() {
    fuzz_parse(&GOLDEN_LACPDU);
    fuzz_parse(&GOLDEN_MARKER);
    fuzz_parse(&GOLDEN_LACPDU[14..]);
    fuzz_parse(&[]);
}
