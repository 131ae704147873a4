//! Self-checking test frames: each frame's bytes are a pure function of its sequence
//! number, so a receiver can verify that what arrived is byte-identical to what was sent
//! without keeping copies. Used by the demo's generator, the integration tests and the
//! benchmarks.

/// EtherType of test frames (IEEE 802 local experimental EtherType 1).
pub const ETHERTYPE: u16 = 0x88b5;

/// Smallest frame (without FCS).
pub const MIN_LEN: usize = 60;
/// Largest frame (without FCS) for a 1500-byte MTU.
pub const MAX_LEN: usize = 1514;

const HEADER: usize = 14 + 8 + 4;

/// The frame length used for sequence number `seq` in a mixed-size stream: mostly small
/// frames (like real traffic) with every size up to 1514 appearing.
pub fn mixed_len(seq: u64) -> usize {
    let h = mix(seq);
    match h % 8 {
        0..=3 => MIN_LEN,
        4 => 128 + (h >> 8) as usize % 128,
        5 => 576,
        6 => MAX_LEN,
        _ => MIN_LEN + (h >> 16) as usize % (MAX_LEN - MIN_LEN + 1),
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: a fixed bijection, so content differs per sequence number.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes the frame for `seq` into `buf` (its length is the frame length, >= 26 bytes):
/// destination and source MAC, EtherType, the sequence number, the stream id, then a
/// pattern derived from the sequence number.
pub fn fill(buf: &mut [u8], seq: u64, stream: u32, dst: [u8; 6], src: [u8; 6]) {
    assert!(
        buf.len() >= HEADER,
        "test frames are at least {HEADER} bytes"
    );
    buf[0..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    buf[14..22].copy_from_slice(&seq.to_be_bytes());
    buf[22..26].copy_from_slice(&stream.to_be_bytes());
    let mut x = mix(seq ^ ((stream as u64) << 40));
    for chunk in buf[HEADER..].chunks_mut(8) {
        x = mix(x);
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// What a received test frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Sequence number.
    pub seq: u64,
    /// Stream id.
    pub stream: u32,
}

/// Why a frame is not a valid test frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the header.
    #[error("frame of {0} bytes is too short for a test frame")]
    Short(usize),
    /// Wrong EtherType.
    #[error("EtherType {0:#06x} is not the test EtherType")]
    EtherType(u16),
    /// Payload differs from what the sequence number implies.
    #[error("frame seq {seq} differs from what was sent at byte {offset}")]
    Corrupt {
        /// Sequence number in the frame.
        seq: u64,
        /// First differing byte.
        offset: usize,
    },
}

/// Reads the stamp of a frame without checking the payload.
pub fn stamp(frame: &[u8]) -> Result<Stamp, FrameError> {
    if frame.len() < HEADER {
        return Err(FrameError::Short(frame.len()));
    }
    let et = u16::from_be_bytes([frame[12], frame[13]]);
    if et != ETHERTYPE {
        return Err(FrameError::EtherType(et));
    }
    let seq = u64::from_be_bytes(frame[14..22].try_into().expect("8 bytes"));
    let stream = u32::from_be_bytes(frame[22..26].try_into().expect("4 bytes"));
    Ok(Stamp { seq, stream })
}

/// Checks that `frame` is exactly what [`fill`] wrote for its own sequence number and
/// stream (addresses excluded, payload and length included).
pub fn verify(frame: &[u8], expected_len: usize) -> Result<Stamp, FrameError> {
    let st = stamp(frame)?;
    let mut x = mix(st.seq ^ ((st.stream as u64) << 40));
    if frame.len() != expected_len {
        return Err(FrameError::Corrupt {
            seq: st.seq,
            offset: frame.len().min(expected_len),
        });
    }
    for (i, chunk) in frame[HEADER..].chunks(8).enumerate() {
        x = mix(x);
        let b = x.to_le_bytes();
        if chunk != &b[..chunk.len()] {
            return Err(FrameError::Corrupt {
                seq: st.seq,
                offset: HEADER + i * 8,
            });
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify() {
        for seq in 0..2000u64 {
            let len = mixed_len(seq);
            assert!((MIN_LEN..=MAX_LEN).contains(&len));
            let mut buf = vec![0u8; len];
            fill(&mut buf, seq, 3, [2; 6], [4; 6]);
            assert_eq!(verify(&buf, len), Ok(Stamp { seq, stream: 3 }));
        }
    }

    #[test]
    fn corruption_is_found() {
        let mut buf = vec![0u8; 200];
        fill(&mut buf, 42, 0, [2; 6], [4; 6]);
        buf[150] ^= 1;
        assert!(matches!(
            verify(&buf, 200),
            Err(FrameError::Corrupt { seq: 42, .. })
        ));
        assert!(matches!(
            verify(&buf[..100], 200),
            Err(FrameError::Corrupt { .. })
        ));
        buf[12] = 0x08;
        assert!(matches!(stamp(&buf), Err(FrameError::EtherType(_))));
        assert_eq!(stamp(&buf[..10]), Err(FrameError::Short(10)));
    }

    #[test]
    fn mixed_sizes_cover_small_and_large() {
        let lens: Vec<usize> = (0..1000).map(mixed_len).collect();
        assert!(lens.contains(&MIN_LEN));
        assert!(lens.contains(&MAX_LEN));
        assert!(lens.iter().any(|&l| l > 600 && l < 1500));
    }
}
