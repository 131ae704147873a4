//! Warm restart from the control thread's side (docs/restart.md): at start, saved LACP state
//! from the handoff file is offered to the engine; while running, the file is kept current
//! (only when something in it changed, written by a small thread of its own, so the loop
//! never waits on the disk); before a planned restart, every member tells its partner it is
//! still there and the file is written one last time, with no final out-of-sync LACPDU.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use lacp::{Instant, SavedPort};

use super::ControlLoop;
use crate::handoff::{self, Handoff, SavedBond, SavedMember, VERSION};

/// What a restart request and the planned-restart stop share between the management
/// socket, the main thread and the control thread.
#[derive(Debug, Default)]
pub struct RestartFlags {
    /// `fastlag ctl restart` asked for a planned restart (the main thread carries it out).
    pub requested: AtomicBool,
    /// The stop under way is a planned restart: write the handoff file, no final
    /// out-of-sync LACPDUs.
    pub planned: AtomicBool,
}

/// The handoff file's writer thread and what it last wrote.
pub(super) struct HandoffWriter {
    path: PathBuf,
    tx: Option<mpsc::Sender<Handoff>>,
    thread: Option<JoinHandle<()>>,
    /// The state last sent to the writer, with absolute times (so it compares equal while
    /// nothing happens).
    last: Option<Vec<(u64, String, SavedPort)>>,
}

impl HandoffWriter {
    /// Starts the writer thread for `path` (creating its directory if missing).
    pub(super) fn start(path: PathBuf) -> std::io::Result<HandoffWriter> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let (tx, rx) = mpsc::channel::<Handoff>();
        let p = path.clone();
        let thread = std::thread::Builder::new()
            .name("fl-handoff".into())
            .spawn(move || writer(&p, &rx))?;
        Ok(HandoffWriter {
            path,
            tx: Some(tx),
            thread: Some(thread),
            last: None,
        })
    }

    /// Stops the thread once it has written what it was given.
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HandoffWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The writer thread: writes the newest state it has been given, logs failures once per
/// kind.
fn writer(path: &Path, rx: &mpsc::Receiver<Handoff>) {
    let mut failing: Option<std::io::ErrorKind> = None;
    while let Ok(mut h) = rx.recv() {
        // Only the newest matters.
        while let Ok(newer) = rx.try_recv() {
            h = newer;
        }
        match handoff::write(path, &h) {
            Ok(()) => {
                if failing.take().is_some() {
                    tracing::info!(path = %path.display(), "handoff state file written again");
                }
            }
            Err(e) => {
                if failing != Some(e.kind()) {
                    tracing::warn!(path = %path.display(), "could not write the handoff state file (a restart now would renegotiate LACP): {e}");
                }
                failing = Some(e.kind());
            }
        }
    }
}

fn unix_ns_u64(ns: u128) -> u64 {
    u64::try_from(ns).unwrap_or(u64::MAX)
}

impl ControlLoop {
    /// Every 802.3ad member's saved state now (ages relative to `now`).
    fn handoff_now(&self, now: Instant) -> Handoff {
        let mut bonds = Vec::new();
        for b in &self.bonds {
            let Some(id) = b.lacp else { continue };
            let Ok(digest) = self.engine.config_digest(id) else {
                continue;
            };
            let members = b
                .members
                .iter()
                .filter_map(|&mi| {
                    let m = &self.members[mi];
                    let port = self.engine.saved_port(m.lacp?, now).ok()?;
                    Some(SavedMember {
                        name: m.name.clone(),
                        port,
                    })
                })
                .collect();
            bonds.push(SavedBond {
                name: b.name.clone(),
                digest,
                members,
            });
        }
        Handoff {
            version: VERSION.to_string(),
            written_unix_ns: unix_ns_u64(self.unix_ns(now)),
            bonds,
        }
    }

    /// Crash recovery: hands the writer the state when it changed (called every
    /// [`super::STATUS_EVERY`]). What changes every second while nothing happens is the time
    /// of our last LACPDU, which the file must follow (the partner's timer runs from it).
    pub(super) fn keep_handoff(&mut self) {
        if self.handoff.as_ref().is_none_or(|w| w.tx.is_none()) {
            return;
        }
        let now = self.now();
        let h = self.handoff_now(now);
        let t = Duration::from_nanos(now.as_nanos());
        let key: Vec<(u64, String, SavedPort)> = h
            .bonds
            .iter()
            .flat_map(|b| {
                b.members.iter().map(|m| {
                    // Ages to instants: equal while nothing happens.
                    let mut p = m.port;
                    p.since_tx = p.since_tx.map(|a| t.saturating_sub(a));
                    p.since_rx = p.since_rx.map(|a| t.saturating_sub(a));
                    (b.digest, m.name.clone(), p)
                })
            })
            .collect();
        let w = self.handoff.as_mut().expect("writer");
        if w.last.as_ref() == Some(&key) {
            return;
        }
        w.last = Some(key);
        if let Some(tx) = &w.tx {
            let _ = tx.send(h);
        }
    }

    /// Planned restart: every member that may send tells its partner it is still there
    /// (a LACPDU now restarts the partner's timeout at its full length), then the state is
    /// written, synchronously, after anything the writer thread still had.
    pub(super) fn handoff_for_restart(&mut self) {
        let now = self.now();
        self.engine.refresh_partners(now);
        self.transmit(now);
        // A member that used up its 3 LACPDUs per second sends when the limit allows: wait,
        // bounded (the partner's short timeout is 3 s; the handoff must not eat it).
        let give_up = std::time::Instant::now() + Duration::from_millis(400);
        while let Some(t) = self.engine.poll_timeout() {
            let wait = t.saturating_duration_since(self.now());
            if std::time::Instant::now() + wait > give_up {
                break;
            }
            std::thread::sleep(wait);
            self.transmit(self.now());
        }
        let Some(w) = self.handoff.as_mut() else {
            tracing::warn!("planned restart without [management] state_file: the next process starts normally (LACP renegotiates)");
            return;
        };
        w.finish();
        let path = w.path.clone();
        let h = self.handoff_now(self.now());
        let members: usize = h.bonds.iter().map(|b| b.members.len()).sum();
        let in_sync = h
            .bonds
            .iter()
            .flat_map(|b| &b.members)
            .filter(|m| m.port.in_sync())
            .count();
        match handoff::write(&path, &h) {
            Ok(()) => {
                tracing::info!(path = %path.display(), members, in_sync, "planned restart: handoff state written; no out-of-sync LACPDUs sent")
            }
            Err(e) => {
                tracing::error!(path = %path.display(), "planned restart: could not write the handoff state file ({e}); the next process starts normally")
            }
        }
    }

    /// Normal stop: the partners were told we left, so the state must not be used again.
    pub(super) fn forget_handoff(&mut self) {
        let Some(w) = self.handoff.as_mut() else {
            return;
        };
        w.finish();
        match std::fs::remove_file(&w.path) {
            Ok(()) => {
                tracing::info!(path = %w.path.display(), "handoff state file removed (normal stop)")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %w.path.display(), "could not remove the handoff state file: {e}")
            }
        }
    }

    /// At start, before the first link report: offers the saved state of each member of a
    /// matching bond to the engine. What is refused is logged (and shown by `ctl show
    /// events`); those members start normally.
    pub(super) fn restore_on_start(&mut self, path: &Path) {
        let h = match handoff::read(path) {
            Ok(Some(h)) => h,
            Ok(None) => {
                tracing::info!(path = %path.display(), "no handoff state file: normal start");
                return;
            }
            Err(e) => {
                self.refuse_all(&format!("handoff state file {}: {e}", path.display()));
                return;
            }
        };
        // The longest partner timeout of the members of this configuration.
        let mut timeout: Option<Duration> = None;
        for (bi, b) in self.bonds.iter().enumerate() {
            let (Some(cfg), Some(sb)) = (
                self.reloader
                    .running
                    .bonds
                    .get(bi)
                    .and_then(|p| p.lacp.as_ref()),
                h.bond(&b.name),
            ) else {
                continue;
            };
            for m in &sb.members {
                let t = m.port.partner_timeout(cfg);
                timeout = Some(timeout.map_or(t, |x| x.max(t)));
            }
        }
        let Some(timeout) = timeout else {
            self.refuse_all(&format!(
                "handoff state file {}: no bond of this configuration in it",
                path.display()
            ));
            return;
        };
        let now = self.now();
        let age = match h.check(unix_ns_u64(self.unix_ns(now)), timeout) {
            Ok(age) => age,
            Err(e) => {
                self.refuse_all(&format!("handoff state file {}: {e}", path.display()));
                return;
            }
        };
        tracing::info!(path = %path.display(), age = ?age, written_by = %h.version, "handoff state file accepted; offering the saved LACP state");
        for bi in 0..self.bonds.len() {
            let Some(id) = self.bonds[bi].lacp else {
                continue;
            };
            let name = self.bonds[bi].name.clone();
            let Some(sb) = h.bond(&name) else {
                self.refuse_bond(bi, "not in the handoff state file");
                continue;
            };
            if self.engine.config_digest(id).ok() != Some(sb.digest) {
                self.refuse_bond(
                    bi,
                    "its configuration differs from the one that saved the state (config digest)",
                );
                continue;
            }
            for mi in self.bonds[bi].members.clone() {
                let m = &self.members[mi];
                let Some(p) = m.lacp else { continue };
                let member = m.name.clone();
                let Some(sm) = sb.member(&member) else {
                    self.restore_event(now, mi, "refused: not in the handoff state file".into());
                    tracing::info!(bond = %name, member = %member, "LACP state restore refused: the member is not in the handoff state file; normal start");
                    continue;
                };
                match self.engine.offer_restore(p, sm.port.aged(age), now) {
                    Ok(Ok(())) => {
                        tracing::info!(bond = %name, member = %member, "LACP state restore offered; applied when the link is first reported up")
                    }
                    // Reported as an Event::Restore (logged there).
                    Ok(Err(_)) => {}
                    Err(e) => {
                        tracing::warn!(bond = %name, member = %member, "LACP state restore: {e}")
                    }
                }
            }
        }
    }

    fn refuse_all(&mut self, why: &str) {
        tracing::warn!("{why}; refused: every member starts normally (LACP renegotiates)");
        let now = self.now();
        for mi in 0..self.members.len() {
            if self.members[mi].lacp.is_some() {
                self.restore_event(now, mi, format!("refused: {why}"));
            }
        }
    }

    fn refuse_bond(&mut self, bi: usize, why: &str) {
        tracing::warn!(bond = %self.bonds[bi].name, "handoff state refused for this bond: {why}; its members start normally");
        let now = self.now();
        for mi in self.bonds[bi].members.clone() {
            if self.members[mi].lacp.is_some() {
                self.restore_event(now, mi, format!("refused: bond {why}"));
            }
        }
    }
}
