//! Packet captures inside a namespace (tcpdump into a pcap file) and the pcap reader.

use super::*;

/// A packet capture (`tcpdump`, immediate mode, packet-buffered) on an interface inside a
/// namespace, into a pcap file. Stopped by PID on drop; [`Capture::stop`] stops it and
/// reads what it wrote.
pub struct Capture {
    /// Interface captured on.
    pub iface: String,
    /// The pcap file.
    pub file: PathBuf,
    /// tcpdump's stderr (start banner, final counts).
    pub log: PathBuf,
    proc: Option<ChildGuard>,
}

/// What a stopped [`Capture`] holds.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Frames (each cut at the snap length).
    pub frames: Vec<Vec<u8>>,
    /// "N packets dropped by kernel" from tcpdump's final counts (None: not printed).
    pub dropped_by_kernel: Option<u64>,
    /// tcpdump's stderr.
    pub log: String,
}

impl Capture {
    /// Starts tcpdump on `iface` in `ns` writing `<dir>/<name>.pcap` (snap length 128),
    /// with an optional BPF `filter`; returns once tcpdump is listening.
    pub fn start(ns: &Netns, iface: &str, dir: &Path, name: &str, filter: &[&str]) -> Capture {
        let file = dir.join(format!("{name}.pcap"));
        let log = dir.join(format!("{name}.tcpdump.log"));
        let f = file.display().to_string();
        let mut args = vec![
            "tcpdump",
            "-Z",
            "root",
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            "128",
            "-i",
            iface,
            "-w",
            &f,
        ];
        args.extend_from_slice(filter);
        let mut proc = ChildGuard::spawn("tcpdump", ns.cmd_dies_with_parent(&args), &log);
        let listening = wait_until(Duration::from_secs(10), || {
            !proc.running()
                || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening on"))
        }) && proc.running();
        assert!(
            listening,
            "tcpdump on {iface} in {} did not start:\n{}",
            ns.name,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Capture {
            iface: iface.to_string(),
            file,
            log,
            proc: Some(proc),
        }
    }

    /// Stops tcpdump (SIGTERM: it writes out what it holds and prints its counts) and
    /// reads the file.
    pub fn stop(&mut self) -> Captured {
        if let Some(mut p) = self.proc.take() {
            if p.running() {
                p.signal("TERM");
            }
            if p.wait_timeout(Duration::from_secs(5)).is_none() {
                eprintln!("tcpdump on {} did not exit on SIGTERM", self.iface);
            }
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let dropped_by_kernel = log.lines().find_map(|l| {
            l.trim()
                .strip_suffix("packets dropped by kernel")
                .or_else(|| l.trim().strip_suffix("packet dropped by kernel"))
                .and_then(|n| n.trim().parse().ok())
        });
        let frames = read_pcap(&self.file).unwrap_or_else(|e| panic!("{e}\n{log}"));
        Captured {
            frames,
            dropped_by_kernel,
            log,
        }
    }
}

/// The frames of a classic pcap file (either byte order, micro- or nanosecond
/// timestamps); a record cut short at the end (a writer that was killed) is ignored.
pub fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 24 {
        return Err(format!(
            "{}: no pcap header ({} bytes)",
            path.display(),
            b.len()
        ));
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => {
            return Err(format!(
                "{}: not a pcap file ({magic:02x?})",
                path.display()
            ))
        }
    };
    let u32_at = |at: usize| {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let linktype = u32_at(20);
    if linktype != 1 {
        return Err(format!(
            "{}: link type {linktype}, not Ethernet",
            path.display()
        ));
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let incl = u32_at(at + 8) as usize;
        let start = at + 16;
        if start + incl > b.len() {
            break;
        }
        frames.push(b[start..start + incl].to_vec());
        at = start + incl;
    }
    Ok(frames)
}

/// The EtherType of an Ethernet frame, looking through one 802.1Q/802.1ad tag; `None`
/// when the frame is too short.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    let outer = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if outer == 0x8100 || outer == 0x88a8 {
        Some(u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]))
    } else {
        Some(outer)
    }
}

/// Whether an Ethernet frame is a Slow Protocols frame (EtherType 0x8809: LACP, marker),
/// tagged or not.
pub fn is_slow_protocols(frame: &[u8]) -> bool {
    let outer = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
    outer == Some(0x8809) || ethertype(frame) == Some(0x8809)
}
