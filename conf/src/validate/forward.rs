//! `[forward]`: the forwarding mode and the xconnect pairs.

use std::collections::HashMap;

use super::{unknown_endpoint, Validator};
use crate::model::{Bond, Forward, Interface, Port};
use crate::raw::{List, RawForward};
use crate::values::ForwardMode;

impl Validator<'_> {
    /// The forwarding mode, checked first because it decides which sections are allowed.
    pub(super) fn forward_mode(&mut self, raw: Option<&RawForward>) -> Option<ForwardMode> {
        let Some(raw) = raw else {
            self.ctx.error(
                "forward",
                "missing required section [forward]; add [forward] with mode = \"xconnect\" and pairs = [[\"p0\", \"p1\"]], or with mode = \"router\"".to_owned(),
            );
            return None;
        };
        match &raw.mode {
            None => {
                self.ctx.error(
                    "forward.mode",
                    "missing required key `mode`: \"xconnect\" (pairs of endpoints) or \"router\" (IP routing)".to_owned(),
                );
                None
            }
            Some(text) => self.ctx.parse_with("forward.mode", text, str::parse),
        }
    }

    /// `[[interface]]` / `[[route]]` tables in xconnect mode.
    pub(super) fn router_only(&mut self, section: &str, present: bool) {
        if present {
            self.ctx.error(
                &format!("{section}[0]"),
                format!("[[{section}]] is used only with forward.mode = \"router\"; remove the [[{section}]] tables or set mode = \"router\""),
            );
        }
    }

    pub(super) fn forward(
        &mut self,
        raw: Option<RawForward>,
        mode: Option<ForwardMode>,
        ports: &[Port],
        bonds: &[Bond],
        interfaces: &[Interface],
    ) -> Forward {
        let (Some(raw), Some(mode)) = (raw, mode) else {
            return Forward::Router;
        };
        match mode {
            ForwardMode::Router => {
                if raw.pairs.is_some() {
                    self.ctx.error_at_key(
                        "forward.pairs",
                        "pairs is used only with mode = \"xconnect\"; in router mode traffic follows [[route]]s between [[interface]]s: remove pairs".to_owned(),
                    );
                }
                if interfaces.is_empty() {
                    self.ctx.error(
                        "forward.mode",
                        "mode = \"router\" needs at least one [[interface]] to route between; add [[interface]] tables (name, on, addresses) or use mode = \"xconnect\"".to_owned(),
                    );
                }
                Forward::Router
            }
            ForwardMode::Xconnect => Forward::Xconnect {
                pairs: self.pairs(raw.pairs, ports, bonds),
            },
        }
    }

    fn pairs(
        &mut self,
        raw: Option<List<List<String>>>,
        ports: &[Port],
        bonds: &[Bond],
    ) -> Vec<(String, String)> {
        let list = match raw {
            None => {
                self.ctx.error(
                    "forward.pairs",
                    "mode = \"xconnect\" needs `pairs`: which endpoints are joined, e.g. pairs = [[\"p0\", \"p1\"]]".to_owned(),
                );
                return Vec::new();
            }
            Some(List(list)) if list.is_empty() => {
                self.ctx.error(
                    "forward.pairs",
                    "pairs is empty; list at least one pair of ports or bonds, e.g. [[\"p0\", \"p1\"]]".to_owned(),
                );
                return Vec::new();
            }
            Some(List(list)) => list,
        };
        let mut used: HashMap<String, String> = HashMap::new();
        let mut pairs = Vec::new();
        for (i, List(pair)) in list.into_iter().enumerate() {
            let ppath = format!("forward.pairs[{i}]");
            let [a, b] = match <[String; 2]>::try_from(pair) {
                Ok(two) => two,
                Err(other) => {
                    self.ctx.error(
                        &ppath,
                        format!("a pair has exactly two endpoints, like [\"p0\", \"p1\"], but this one has {}", other.len()),
                    );
                    continue;
                }
            };
            if a == b {
                self.ctx.error(
                    &format!("{ppath}[1]"),
                    format!(
                        "{a:?} is paired with itself; a pair joins two different ports or bonds"
                    ),
                );
                continue;
            }
            for (j, endpoint) in [&a, &b].into_iter().enumerate() {
                let epath = format!("{ppath}[{j}]");
                let is_bond = bonds.iter().any(|x| &x.name == endpoint);
                let is_port = ports.iter().any(|x| &x.name == endpoint);
                if !is_bond && !is_port {
                    self.ctx
                        .error(&epath, unknown_endpoint(endpoint, ports, bonds));
                } else if let Some(bond) = bonds.iter().find(|x| x.has_member(endpoint)) {
                    self.ctx.error(
                        &epath,
                        format!("port {endpoint} is a member of bond {0}; member ports carry no traffic of their own: use \"{0}\"", bond.name),
                    );
                } else if let Some(first) = used.get(endpoint) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &epath,
                        format!("{endpoint} is already in {first} (line {line}); each port or bond can be in one pair only"),
                    );
                } else {
                    used.insert(endpoint.clone(), epath);
                }
            }
            pairs.push((a, b));
        }
        pairs
    }
}
