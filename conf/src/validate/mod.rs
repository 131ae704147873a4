//! Semantic validation: from the TOML shape ([`crate::raw`]) to a [`Config`].
//!
//! Validation never stops at the first problem. Each check records a diagnostic at the key
//! path it is about and substitutes a harmless value so later checks can still run; the
//! configuration is returned only when no diagnostic was recorded. Checks that depend on a
//! value that was itself invalid are skipped rather than reporting consequences.
//!
//! This module is the driver ([`validate`], the order of the checks) with what the sections
//! share: the diagnostics collector ([`Ctx`]) and helpers for values and messages. Each
//! section of the file has its own module: [`dataplane`], [`ports`], [`bonds`] (with
//! `[bond.lacp]`), [`names`] (the namespace ports, bonds and interfaces share), [`router`]
//! (`[[interface]]`, `[[route]]`), [`forward`] and [`management`].

mod bonds;
mod dataplane;
mod forward;
mod limits;
mod management;
mod names;
mod ports;
mod router;

use std::str::FromStr;

use crate::error::{ConfigError, Diagnostic};
use crate::limits::Limits;
use crate::model::{Bond, Config, Port};
use crate::raw::{Int, RawConfig, Text};
use crate::span::SpanIndex;
use crate::values::{ForwardMode, InvalidValue, MacAddr};

/// Linux IFNAMSIZ - 1.
const MAX_IFNAME: usize = 15;

/// Validates `raw` and builds the configuration, or reports every problem found.
pub(crate) fn validate(
    raw: RawConfig,
    origin: &str,
    index: &SpanIndex<'_>,
    limits: &Limits,
) -> Result<Config, ConfigError> {
    let mut v = Validator {
        limits,
        ctx: Ctx {
            origin,
            index,
            diagnostics: Vec::new(),
        },
        workers: None,
        control_core: None,
    };
    let config = v.run(raw);
    let mut diagnostics = v.ctx.diagnostics;
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        Err(ConfigError { diagnostics })
    }
}

/// The state of one validation run: the diagnostics, and facts later sections depend on.
struct Validator<'a> {
    ctx: Ctx<'a>,
    /// What the DPDK build allows.
    limits: &'a Limits,
    /// Number of workers, when `worker_cores` is valid.
    workers: Option<usize>,
    /// `control_core`, when valid.
    control_core: Option<u32>,
}

impl Validator<'_> {
    /// All checks, section by section; the order decides which facts are known to which check.
    fn run(&mut self, raw: RawConfig) -> Config {
        let dataplane = self.dataplane(raw.dataplane);
        let mode = self.forward_mode(raw.forward.as_ref());
        let (mut ports, devices) = self.ports(raw.port.0);
        let bonds = self.bonds(raw.bond.0, &mut ports);
        let (raw_interfaces, raw_routes, raw_neighbors) = if mode == Some(ForwardMode::Xconnect) {
            // Router-only sections: one clear error each instead of checking their contents.
            self.router_only("interface", !raw.interface.0.is_empty());
            self.router_only("route", !raw.route.0.is_empty());
            self.router_only("neighbor", !raw.neighbor.0.is_empty());
            (Vec::new(), Vec::new(), Vec::new())
        } else {
            (raw.interface.0, raw.route.0, raw.neighbor.0)
        };
        self.names(&ports, &bonds, &raw_interfaces);
        self.devices(&ports, &devices);
        self.macs(&ports, &bonds);
        let interfaces = self.interfaces(raw_interfaces, &ports, &bonds);
        let routes = self.routes(raw_routes, &interfaces, &ports, &bonds);
        let neighbors = self.neighbors(raw_neighbors, &interfaces);
        let forward = self.forward(raw.forward, mode, &ports, &bonds, &interfaces);
        let management = self.management(raw.management);
        if ports.is_empty() {
            self.ctx.error(
                "port",
                "no [[port]] is defined; add at least one [[port]] with a name and a device"
                    .to_owned(),
            );
        }
        self.mbuf_sizing(&dataplane, &ports);
        let config = Config {
            dataplane,
            ports,
            bonds,
            interfaces,
            routes,
            neighbors,
            forward,
            management,
        };
        self.dpdk_limits(&config);
        config
    }

    /// Parses a unicast, non-zero MAC.
    fn mac<M>(&mut self, path: &str, raw: Option<&Text<M>>, what: &str) -> Option<MacAddr> {
        let mac: MacAddr = self.ctx.parse_opt(path, raw)?;
        if mac.is_zero() {
            self.ctx.error(
                path,
                format!("{what} {mac} is all zeros; use a unicast address such as a locally administered 02:xx:xx:xx:xx:xx, or remove the key for the default"),
            );
            None
        } else if !mac.is_unicast() {
            self.ctx.error(
                path,
                format!("{what} {mac} is a multicast address (lowest bit of the first octet set); use a unicast address such as 02:{}", &mac.to_string()[3..]),
            );
            None
        } else {
            Some(mac)
        }
    }
}

/// Where diagnostics go.
struct Ctx<'a> {
    origin: &'a str,
    index: &'a SpanIndex<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl Ctx<'_> {
    /// Records a problem with the value at `path` (or the table that should contain it).
    fn error(&mut self, path: &str, message: String) {
        let (line, column) = self.index.locate(path);
        self.push(path, line, column, message);
    }

    /// Records a problem with the key at `path` itself (a key that should not be there).
    fn error_at_key(&mut self, path: &str, message: String) {
        let (line, column) = self.index.locate_key(path);
        self.push(path, line, column, message);
    }

    fn push(&mut self, path: &str, line: usize, column: usize, message: String) {
        // Names and values from the file are quoted into messages: never raw control
        // characters (an ANSI escape in a port name would recolour the operator's terminal).
        let message = match crate::error::printable(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        self.diagnostics.push(Diagnostic {
            file: self.origin.to_owned(),
            line,
            column,
            key_path: path.to_owned(),
            message,
        });
    }

    fn line(&self, path: &str) -> usize {
        self.index.line(path)
    }

    fn present(&self, path: &str) -> bool {
        self.index.contains(path)
    }

    /// Range-checks an integer and converts it; `None` (after a diagnostic) when out of range.
    fn int<T: TryFrom<i128>, const MIN: i64, const MAX: i64>(
        &mut self,
        path: &str,
        raw: Int<MIN, MAX>,
    ) -> Option<T> {
        let value = raw.0;
        if value < i128::from(MIN) || value > i128::from(MAX) {
            self.error(
                path,
                format!(
                    "{value} is out of range; expected {}",
                    Int::<MIN, MAX>::expected()
                ),
            );
            return None;
        }
        match T::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    path,
                    format!(
                        "{value} is out of range; expected {}",
                        Int::<MIN, MAX>::expected()
                    ),
                );
                None
            }
        }
    }

    /// An optional integer with a default.
    fn int_or<T: TryFrom<i128>, const MIN: i64, const MAX: i64>(
        &mut self,
        path: &str,
        raw: Option<Int<MIN, MAX>>,
        default: T,
    ) -> T {
        raw.and_then(|r| self.int(path, r)).unwrap_or(default)
    }

    /// Parses a string value; `None` (after a diagnostic) when it does not parse.
    fn parse_with<T, M>(
        &mut self,
        path: &str,
        raw: &Text<M>,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        match parse(&raw.text) {
            Ok(v) => Some(v),
            Err(InvalidValue(message)) => {
                self.error(path, message);
                None
            }
        }
    }

    /// Parses an optional string value with `FromStr`.
    fn parse_opt<T: FromStr<Err = InvalidValue>, M>(
        &mut self,
        path: &str,
        raw: Option<&Text<M>>,
    ) -> Option<T> {
        raw.and_then(|r| self.parse_with(path, r, str::parse))
    }

    /// A keyword with a default.
    fn keyword<T: FromStr<Err = InvalidValue>>(
        &mut self,
        path: &str,
        raw: Option<Text<T>>,
        default: T,
    ) -> T {
        self.parse_opt(path, raw.as_ref()).unwrap_or(default)
    }
}

/// `p0, p1, p2` or a note that there are none.
fn known(names: &[&str], what: &str) -> String {
    let mut unique: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        if !name.is_empty() && !unique.contains(name) {
            unique.push(name);
        }
    }
    if unique.is_empty() {
        format!("no {what} is defined")
    } else {
        format!("known {what}s: {}", unique.join(", "))
    }
}

/// "unknown port or bond" with the names that do exist.
fn unknown_endpoint(name: &str, ports: &[Port], bonds: &[Bond]) -> String {
    let ports: Vec<&str> = ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| p.name.as_str())
        .collect();
    let bonds: Vec<&str> = bonds
        .iter()
        .filter(|b| !b.name.is_empty())
        .map(|b| b.name.as_str())
        .collect();
    format!(
        "unknown port or bond {name:?}; {}; {}",
        known(&ports, "port"),
        known(&bonds, "bond")
    )
}
