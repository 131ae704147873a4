//! Names of ports, bonds and interfaces: their syntax, and the one namespace they share.

use std::collections::HashMap;

use super::{Validator, MAX_IFNAME};
use crate::model::{Bond, Port};
use crate::raw::RawInterface;

/// Whether `name` is a valid port, bond or interface name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= MAX_IFNAME
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// An example name for "missing name" messages.
fn example_name(kind: &str) -> &'static str {
    match kind {
        "port" => "p0",
        "bond" => "bond0",
        _ => "wan0",
    }
}

/// `bond[3].name` -> `3`.
fn index_of(path: &str) -> &str {
    path.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("?", |(n, _)| n)
}

/// A name defined somewhere in the shared namespace.
struct NameDef {
    name: String,
    path: String,
    kind: &'static str,
}

impl Validator<'_> {
    /// Checks a required name; returns it, or an empty string when missing.
    pub(super) fn name(&mut self, path: &str, raw: Option<String>, kind: &str) -> String {
        let key = format!("{path}.name");
        match raw {
            None => {
                self.ctx.error(
                    &key,
                    format!("missing required key `name`: every {kind} needs a unique name, e.g. `name = \"{}\"`", example_name(kind)),
                );
                String::new()
            }
            Some(name) => {
                if !valid_name(&name) {
                    self.ctx.error(
                        &key,
                        format!("{name:?} is not a valid {kind} name; start with a letter, then up to 14 letters, digits, '_', '.' or '-'"),
                    );
                }
                name
            }
        }
    }

    /// Ports, bonds and interfaces share one namespace.
    pub(super) fn names(&mut self, ports: &[Port], bonds: &[Bond], interfaces: &[RawInterface]) {
        let mut defs: Vec<NameDef> = Vec::new();
        let mut add = |name: &str, path: String, kind| {
            if !name.is_empty() {
                defs.push(NameDef {
                    name: name.to_owned(),
                    path,
                    kind,
                });
            }
        };
        for (i, p) in ports.iter().enumerate() {
            add(&p.name, format!("port[{i}].name"), "port");
        }
        for (i, b) in bonds.iter().enumerate() {
            add(&b.name, format!("bond[{i}].name"), "bond");
        }
        for (i, iface) in interfaces.iter().enumerate() {
            if let Some(name) = &iface.name {
                add(name, format!("interface[{i}].name"), "interface");
            }
        }
        defs.sort_by_key(|d| self.ctx.index.locate(&d.path));
        let mut first: HashMap<&str, &NameDef> = HashMap::new();
        for def in &defs {
            if let Some(prev) = first.get(def.name.as_str()) {
                let line = self.ctx.line(&prev.path);
                let message = if prev.kind == def.kind {
                    format!("duplicate {} name {:?}: already used by {}[{}] (line {line}); rename one of them", def.kind, def.name, prev.kind, index_of(&prev.path))
                } else {
                    format!("name {:?} is already used by a {} (line {line}); ports, bonds and interfaces share one namespace: rename this {}", def.name, prev.kind, def.kind)
                };
                self.ctx.error(&def.path, message);
            } else {
                first.insert(&def.name, def);
            }
        }
    }
}
