//! tc rules: dropping a link's frames one way, the way a failing switch port would.

use super::*;

/// Drops frames leaving `dev` (in a namespace) at tc egress, before any packet socket
/// on the far end can see them. This kernel has no gact (`action drop`) and no matchall:
/// a u32 match-all filter under clsact redirects them to an ifb device that stays down,
/// where the kernel discards them. Removed on drop.
pub struct TcEgressDrop {
    ns: String,
    dev: String,
    sink: String,
}

impl TcEgressDrop {
    /// Drops frames of EtherType `protocol` ("0x8809" for Slow Protocols, "all") leaving
    /// `dev`.
    pub fn new(ns: &Netns, dev: &str, protocol: &str) -> TcEgressDrop {
        let sink = format!("sink{dev}");
        ns.ip(&["link", "add", &sink, "type", "ifb"]);
        let g = TcEgressDrop {
            ns: ns.name.clone(),
            dev: dev.to_string(),
            sink,
        };
        ns.run(&["tc", "qdisc", "add", "dev", dev, "clsact"]);
        ns.run(&[
            "tc", "filter", "add", "dev", dev, "egress", "protocol", protocol, "u32", "match",
            "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", &g.sink,
        ]);
        g
    }

    /// Frames the filter took so far ("Sent N bytes M pkt" of its action).
    pub fn dropped(&self) -> u64 {
        let out = try_run(&mut cmd(&[
            "ip", "netns", "exec", &self.ns, "tc", "-s", "filter", "show", "dev", &self.dev,
            "egress",
        ]))
        .unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let l = l.trim();
                let rest = l.strip_prefix("Sent ")?;
                let mut it = rest.split_whitespace();
                let _bytes = it.next()?;
                let _ = it.next()?; // "bytes"
                it.next()?.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for TcEgressDrop {
    fn drop(&mut self) {
        if !Path::new("/run/netns").join(&self.ns).exists() {
            return;
        }
        for args in [
            vec!["tc", "qdisc", "del", "dev", &self.dev, "clsact"],
            vec!["ip", "link", "del", &self.sink],
        ] {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.ns])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
    }
}
