//! The test process as a second DPDK process: memif clients towards a fastlag that owns the
//! memif servers, with the generator's ports over them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dataplane::gen::GenPort;
use dpdk::{Configured, Eal, Mempool, Port, Started};

/// memif client ports in this process.
pub struct MemifPeer {
    /// One generator port per link.
    pub ports: Vec<GenPort>,
    /// The ports themselves, by link.
    pub started: Vec<PeerPort>,
    /// The peer's packet pool.
    pub pool: Arc<Mempool>,
    // Dropped last.
    /// The test process's EAL.
    pub eal: &'static Eal,
}

/// A peer port, started or stopped (a stopped memif client is a disconnected link).
pub enum PeerPort {
    /// Running.
    Started(Port<Started>),
    /// Stopped (link down on purpose).
    Stopped(Port<Configured>),
    /// Closed.
    Gone,
}

impl PeerPort {
    fn up(&self) -> bool {
        match self {
            PeerPort::Started(p) => p.info().link().map(|l| l.up).unwrap_or(false),
            _ => false,
        }
    }
}

/// The vdev spec of memif `i` on `socket` in `role`.
pub fn memif_spec(i: usize, role: &str, socket: &Path) -> String {
    format!(
        "net_memif{i},role={role},id=0,socket={},socket-abstract=no",
        socket.display()
    )
}

impl MemifPeer {
    /// Starts EAL with one memif client per socket (main lcore on `cpu`) and waits up to
    /// 20 s for every link to come up.
    pub fn connect(sockets: &[PathBuf], cpu: usize) -> MemifPeer {
        let mut args = crate::rings::eal_args("peer", 256, cpu);
        for (i, s) in sockets.iter().enumerate() {
            args.push(format!("--vdev={}", memif_spec(i, "client", s)));
        }
        let eal = Eal::init(&args).expect("EAL init in the test process");
        let pool = Arc::new(Mempool::new(eal, "peer_pool", 8191, 256, 2176).unwrap());
        let mut ports = Vec::new();
        let mut started = Vec::new();
        for i in 0..sockets.len() {
            let name = format!("net_memif{i}");
            let id = dpdk::port_by_name(eal, &name).unwrap();
            let setup = crate::rings::one_queue(&pool);
            let (p, mut rx, mut tx) = Port::configure(eal, id, &name, &setup).unwrap();
            let p = p.start().map_err(|(_, e)| e).unwrap();
            ports.push(GenPort {
                name: format!("peer{i}"),
                rx: rx.pop().unwrap(),
                tx: tx.pop().unwrap(),
                mac: [0x02, 0, 0, 0, 0x10, i as u8 + 1],
            });
            started.push(PeerPort::Started(p));
        }
        let peer = MemifPeer {
            ports,
            started,
            pool,
            eal,
        };
        assert!(
            super::wait_until(Duration::from_secs(20), || peer.links_up()),
            "memif links did not come up"
        );
        peer
    }

    /// Every link up.
    pub fn links_up(&self) -> bool {
        self.started.iter().all(PeerPort::up)
    }

    /// Link `i` up (connected and reported up by memif).
    pub fn link_up(&self, i: usize) -> bool {
        self.started[i].up()
    }

    /// Takes link `i` down (the memif client stops and disconnects) or brings it back.
    pub fn set_link(&mut self, i: usize, up: bool) {
        let p = std::mem::replace(&mut self.started[i], PeerPort::Gone);
        self.started[i] = match (p, up) {
            (PeerPort::Started(p), false) => {
                PeerPort::Stopped(p.stop().map_err(|(_, e)| e).unwrap())
            }
            (PeerPort::Stopped(p), true) => {
                PeerPort::Started(p.start().map_err(|(_, e)| e).unwrap())
            }
            (p, _) => p,
        };
    }

    /// Stops and closes everything; asserts every mbuf came back.
    pub fn close(mut self) {
        self.shutdown();
        assert_eq!(
            self.pool.available(),
            self.pool.size(),
            "test peer pool leaked"
        );
    }

    fn shutdown(&mut self) {
        self.ports.clear();
        for p in std::mem::take(&mut self.started) {
            let stopped = match p {
                PeerPort::Started(p) => match p.stop() {
                    Ok(p) => p,
                    Err(_) => continue,
                },
                PeerPort::Stopped(p) => p,
                PeerPort::Gone => continue,
            };
            let _ = stopped.close();
        }
    }
}

impl Drop for MemifPeer {
    fn drop(&mut self) {
        // Also on panic: ports must be closed before EAL cleanup (which the Eal field's
        // drop runs after this).
        self.shutdown();
    }
}
