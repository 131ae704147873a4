//! The handoff state file: what one fastlag process leaves for the next so that a restart
//! (planned, or after a crash) does not make LACP partners renegotiate (docs/restart.md).
//!
//! Per bond: its name, the engine's config digest ([`lacp::Engine::config_digest`]) and per
//! member the [`SavedPort`] (actor and partner information, Receive/Mux/Selection state, the
//! ages of the last LACPDU each way); for the file: the format, the fastlag version that wrote
//! it and a wall-clock timestamp. On disk:
//!
//! ```text
//! fastlag-handoff 1 <FNV-1a 64 of the body, 16 hex digits>
//! {"version": "...", "written_unix_ns": ..., "bonds": [...]}
//! ```
//!
//! written atomically (a temporary file in the same directory, mode 0600, fsync, rename,
//! fsync of the directory). Reading checks, in order: the header and the checksum
//! (corrupted), the format, the version, the age against the partners' timeout (stale); the
//! engine then checks each member (link down, partner changed, ...).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lacp::info::{AggregatorId, MuxState, RxState, Selected};
use lacp::{MacAddr, ParticipantInfo, PortState, SavedPort};
use serde::{Deserialize, Serialize};

/// The on-disk format this build reads and writes.
pub const FORMAT: u32 = 1;
/// The first word of a handoff file.
const MAGIC: &str = "fastlag-handoff";
/// The fastlag version written into (and required of) a handoff file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A file written this far in the future (by the wall clock) is refused: the clock went back.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// A handoff: every LACP member's saved state at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// fastlag version of the writer.
    pub version: String,
    /// When the state was taken (Unix time, ns); the members' ages count from here.
    pub written_unix_ns: u64,
    /// 802.3ad bonds.
    pub bonds: Vec<SavedBond>,
}

/// One bond's saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedBond {
    /// Bond name.
    pub name: String,
    /// [`lacp::Engine::config_digest`] of the bond that saved it.
    pub digest: u64,
    /// Members.
    pub members: Vec<SavedMember>,
}

/// One member's saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMember {
    /// Port name.
    pub name: String,
    /// The engine's state of it, ages counted from [`Handoff::written_unix_ns`].
    pub port: SavedPort,
}

/// Why a handoff file was not used as a whole (every member then starts normally).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not readable.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Header, checksum or body do not parse or do not match.
    #[error("corrupted: {0}")]
    Corrupted(String),
    /// Another on-disk format.
    #[error("written in handoff format {found}, this build reads format {FORMAT}")]
    Format {
        /// The file's format.
        found: u32,
    },
    /// Written by another fastlag version.
    #[error("written by fastlag {found}, this is fastlag {VERSION}")]
    Version {
        /// The writer's version.
        found: String,
    },
    /// Older than the partners' timeout: they have expired us by now.
    #[error("stale: written {age:?} ago, the partners' timeout is {timeout:?}")]
    Stale {
        /// Age of the file's state.
        age: Duration,
        /// The longest partner timeout among its members.
        timeout: Duration,
    },
    /// Written in the future by the wall clock (the clock was set back).
    #[error("written {ahead:?} in the future by the wall clock (the clock was set back)")]
    Future {
        /// How far.
        ahead: Duration,
    },
}

// ----- the serialized form ---------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    version: String,
    written_unix_ns: u64,
    bonds: Vec<FileBond>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBond {
    name: String,
    /// 16 hex digits.
    digest: String,
    members: Vec<FileMember>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMember {
    name: String,
    port_number: u16,
    actor: FileParticipant,
    partner: FileParticipant,
    rx: String,
    mux: String,
    selected: String,
    matched: bool,
    aggregator: Option<u16>,
    since_tx_ns: Option<u64>,
    since_rx_ns: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileParticipant {
    system_priority: u16,
    system: MacAddr,
    key: u16,
    port_priority: u16,
    port: u16,
    state: u8,
}

impl From<&ParticipantInfo> for FileParticipant {
    fn from(p: &ParticipantInfo) -> Self {
        FileParticipant {
            system_priority: p.system_priority,
            system: p.system,
            key: p.key,
            port_priority: p.port_priority,
            port: p.port,
            state: p.state.bits(),
        }
    }
}

impl From<&FileParticipant> for ParticipantInfo {
    fn from(p: &FileParticipant) -> Self {
        ParticipantInfo {
            system_priority: p.system_priority,
            system: p.system,
            key: p.key,
            port_priority: p.port_priority,
            port: p.port,
            state: PortState::from_bits(p.state),
        }
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// FNV-1a, 64 bits (a check against torn or edited files, not a security measure).
fn fnv64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Handoff {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = FileBody {
            version: self.version.clone(),
            written_unix_ns: self.written_unix_ns,
            bonds: self
                .bonds
                .iter()
                .map(|b| FileBond {
                    name: b.name.clone(),
                    digest: format!("{:016x}", b.digest),
                    members: b
                        .members
                        .iter()
                        .map(|m| {
                            let p = &m.port;
                            FileMember {
                                name: m.name.clone(),
                                port_number: p.port_number,
                                actor: (&p.actor).into(),
                                partner: (&p.partner).into(),
                                rx: p.rx.name().into(),
                                mux: p.mux.name().into(),
                                selected: p.selected.name().into(),
                                matched: p.matched,
                                aggregator: p.aggregator.map(|a| a.0),
                                since_tx_ns: p.since_tx.map(ns),
                                since_rx_ns: p.since_rx.map(ns),
                            }
                        })
                        .collect(),
                })
                .collect(),
        };
        let mut json = serde_json::to_vec_pretty(&body).expect("plain data serializes");
        json.push(b'\n');
        let mut out = format!("{MAGIC} {FORMAT} {:016x}\n", fnv64(&json)).into_bytes();
        out.extend_from_slice(&json);
        out
    }

    /// Parses a file's bytes: header, checksum, format, body (not the version or the age:
    /// [`Handoff::check`]).
    pub fn decode(bytes: &[u8]) -> Result<Handoff, Refusal> {
        let bad = |s: String| Refusal::Corrupted(s);
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no header line".into()))?;
        let header = std::str::from_utf8(&bytes[..nl])
            .map_err(|_| bad("the header line is not text".into()))?;
        let body = &bytes[nl + 1..];
        let words: Vec<&str> = header.split(' ').collect();
        if words.len() != 3 || words[0] != MAGIC {
            return Err(bad(format!(
                "the header line is {header:?}, not \"{MAGIC} <format> <checksum>\""
            )));
        }
        let format: u32 = words[1]
            .parse()
            .map_err(|_| bad(format!("format {:?} is not a number", words[1])))?;
        if format != FORMAT {
            return Err(Refusal::Format { found: format });
        }
        let sum = u64::from_str_radix(words[2], 16)
            .map_err(|_| bad(format!("checksum {:?} is not hexadecimal", words[2])))?;
        let actual = fnv64(body);
        if sum != actual {
            return Err(bad(format!(
                "checksum mismatch (header {sum:016x}, body {actual:016x})"
            )));
        }
        let f: FileBody = serde_json::from_slice(body).map_err(|e| bad(format!("body: {e}")))?;
        let mut bonds = Vec::with_capacity(f.bonds.len());
        for b in f.bonds {
            let digest = u64::from_str_radix(&b.digest, 16)
                .map_err(|_| bad(format!("bond {}: digest {:?}", b.name, b.digest)))?;
            let mut members = Vec::with_capacity(b.members.len());
            for m in b.members {
                let what = |k: &str, v: &str| bad(format!("member {}: {k} {v:?}", m.name));
                let port = SavedPort {
                    port_number: m.port_number,
                    actor: (&m.actor).into(),
                    partner: (&m.partner).into(),
                    rx: RxState::from_name(&m.rx).ok_or_else(|| what("rx", &m.rx))?,
                    mux: MuxState::from_name(&m.mux).ok_or_else(|| what("mux", &m.mux))?,
                    selected: Selected::from_name(&m.selected)
                        .ok_or_else(|| what("selected", &m.selected))?,
                    matched: m.matched,
                    aggregator: m.aggregator.map(AggregatorId),
                    since_tx: m.since_tx_ns.map(Duration::from_nanos),
                    since_rx: m.since_rx_ns.map(Duration::from_nanos),
                };
                members.push(SavedMember { name: m.name, port });
            }
            bonds.push(SavedBond {
                name: b.name,
                digest,
                members,
            });
        }
        Ok(Handoff {
            version: f.version,
            written_unix_ns: f.written_unix_ns,
            bonds,
        })
    }

    /// Whether this process may use it at Unix time `now_ns`: same fastlag version, not
    /// written in the future, and younger than `timeout` (the longest partner timeout of
    /// its members). Returns its age.
    pub fn check(&self, now_ns: u64, timeout: Duration) -> Result<Duration, Refusal> {
        if self.version != VERSION {
            return Err(Refusal::Version {
                found: self.version.clone(),
            });
        }
        if self.written_unix_ns > now_ns {
            let ahead = Duration::from_nanos(self.written_unix_ns - now_ns);
            if ahead > CLOCK_SLACK {
                return Err(Refusal::Future { ahead });
            }
        }
        let age = Duration::from_nanos(now_ns.saturating_sub(self.written_unix_ns));
        if age >= timeout {
            return Err(Refusal::Stale { age, timeout });
        }
        Ok(age)
    }

    /// The saved bond called `name`.
    pub fn bond(&self, name: &str) -> Option<&SavedBond> {
        self.bonds.iter().find(|b| b.name == name)
    }
}

impl SavedBond {
    /// The saved member called `name`.
    pub fn member(&self, name: &str) -> Option<&SavedMember> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// Writes `h` to `path` atomically: a temporary file next to it (mode 0600), fsync, rename
/// over `path`, fsync of the directory. A reader sees the old file or the new one, whole.
pub fn write(path: &Path, h: &Handoff) -> std::io::Result<()> {
    let bytes = h.encode();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "handoff".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads and decodes `path`. `Ok(None)`: there is no file.
pub fn read(path: &Path) -> Result<Option<Handoff>, Refusal> {
    match std::fs::read(path) {
        Ok(b) => Handoff::decode(&b).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Refusal::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn participant(mac: u8, port: u16, state: u8) -> ParticipantInfo {
        ParticipantInfo {
            system_priority: 65535,
            system: MacAddr([2, 0, 0, 0, 0, mac]),
            key: 9,
            port_priority: 255,
            port,
            state: PortState::from_bits(state),
        }
    }

    fn sample(version: &str, written: u64) -> Handoff {
        let port = |n: u16| SavedPort {
            port_number: n,
            actor: participant(1, n, 0x3f),
            partner: participant(2, n + 10, 0x3f),
            rx: RxState::Current,
            mux: MuxState::CollectingDistributing,
            selected: Selected::Selected,
            matched: true,
            aggregator: Some(AggregatorId(1)),
            since_tx: Some(Duration::from_millis(400)),
            since_rx: None,
        };
        Handoff {
            version: version.into(),
            written_unix_ns: written,
            bonds: vec![SavedBond {
                name: "bond0".into(),
                digest: 0xdead_beef_0123_4567,
                members: vec![
                    SavedMember {
                        name: "m0".into(),
                        port: port(1),
                    },
                    SavedMember {
                        name: "m1".into(),
                        port: port(2),
                    },
                ],
            }],
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fastlag-handoff-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const NOW: u64 = 1_800_000_000_000_000_000;
    const SHORT: Duration = Duration::from_secs(3);

    #[test]
    fn round_trip_through_a_file_with_mode_0600() {
        let d = scratch("rt");
        let path = d.join("state");
        let h = sample(VERSION, NOW);
        write(&path, &h).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "handoff file mode {mode:o}");
        let back = read(&path).unwrap().expect("file present");
        assert_eq!(back, h);
        assert_eq!(
            back.check(NOW + 500_000_000, SHORT).unwrap(),
            Duration::from_millis(500)
        );
        // Rewritten in place: still one file, no temporary left.
        write(&path, &sample(VERSION, NOW + 1)).unwrap();
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(read(&d.join("absent")).unwrap().is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupted_files_are_refused() {
        let good = sample(VERSION, NOW).encode();
        // One byte of the body changed.
        let mut flipped = good.clone();
        let i = flipped.len() - 10;
        flipped[i] ^= 0x01;
        let e = Handoff::decode(&flipped).unwrap_err();
        assert!(
            matches!(&e, Refusal::Corrupted(s) if s.contains("checksum mismatch")),
            "{e}"
        );
        // Torn write: the body cut short.
        let e = Handoff::decode(&good[..good.len() / 2]).unwrap_err();
        assert!(matches!(e, Refusal::Corrupted(_)), "{e}");
        // Not a handoff file at all.
        let e = Handoff::decode(b"{\"hello\": 1}\n").unwrap_err();
        assert!(
            matches!(&e, Refusal::Corrupted(s) if s.contains("header")),
            "{e}"
        );
        assert!(matches!(
            Handoff::decode(b"").unwrap_err(),
            Refusal::Corrupted(_)
        ));
        // A body with a valid checksum but an unknown state name.
        let text = String::from_utf8(good).unwrap();
        let (_, body) = text.split_once('\n').unwrap();
        let body = body.replacen("\"CURRENT\"", "\"CURRANT\"", 1);
        let edited = format!("{MAGIC} {FORMAT} {:016x}\n{body}", fnv64(body.as_bytes()));
        let e = Handoff::decode(edited.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, Refusal::Corrupted(s) if s.contains("CURRANT")),
            "{e}"
        );
    }

    #[test]
    fn another_format_or_version_is_refused() {
        let text = String::from_utf8(sample(VERSION, NOW).encode()).unwrap();
        let other = text.replacen(&format!("{MAGIC} {FORMAT} "), &format!("{MAGIC} 99 "), 1);
        assert!(matches!(
            Handoff::decode(other.as_bytes()).unwrap_err(),
            Refusal::Format { found: 99 }
        ));
        let old = Handoff::decode(&sample("0.0.1-old", NOW).encode()).unwrap();
        let e = old.check(NOW, SHORT).unwrap_err();
        assert!(matches!(&e, Refusal::Version { found } if found == "0.0.1-old"));
        assert!(e.to_string().contains(VERSION), "{e}");
    }

    #[test]
    fn stale_and_future_files_are_refused() {
        let h = sample(VERSION, NOW);
        let e = h.check(NOW + 3_000_000_000, SHORT).unwrap_err();
        assert!(
            matches!(e, Refusal::Stale { age, timeout } if age == SHORT && timeout == SHORT),
            "{e}"
        );
        assert!(h.check(NOW + 2_900_000_000, SHORT).is_ok());
        // Slightly in the future (another clock read first): fine; far: refused.
        assert_eq!(h.check(NOW - 1_000, SHORT).unwrap(), Duration::ZERO);
        assert!(matches!(
            h.check(NOW - 5_000_000_000, SHORT).unwrap_err(),
            Refusal::Future { .. }
        ));
    }
}
