//! `[[bond]]` and `[bond.lacp]`: members, hash, min_links, LACP parameters and port identities.

use std::collections::HashMap;

use super::{known, Validator};
use crate::model::{Bond, BondMember, Lacp, Port};
use crate::raw::{List, RawBond, RawLacp};
use crate::values::{
    BondMode, Fallback, HashPolicy, LacpActivity, LacpRate, MacAddr, MuxMode, Selection,
};

/// Defaults of the schema.
const DEFAULT_PORT_PRIORITY: u16 = 255;
const DEFAULT_SYSTEM_PRIORITY: u16 = 65_535;

fn bond_names_at(names: &[String], index: usize) -> &str {
    names.get(index).map_or("?", String::as_str)
}

impl Validator<'_> {
    pub(super) fn bonds(&mut self, raw: Vec<RawBond>, ports: &mut [Port]) -> Vec<Bond> {
        let port_names: Vec<String> = ports
            .iter()
            .filter(|p| !p.name.is_empty())
            .map(|p| p.name.clone())
            .collect();
        let bond_names: Vec<String> = raw.iter().filter_map(|b| b.name.clone()).collect();
        // port name -> (bond index, path of the member entry)
        let mut member_of: HashMap<String, (usize, String)> = HashMap::new();
        let mut bonds = Vec::with_capacity(raw.len());

        for (i, rb) in raw.into_iter().enumerate() {
            let path = format!("bond[{i}]");
            let name = self.name(&path, rb.name, "bond");
            let ctx = &mut self.ctx;
            let mode = ctx.keyword(&format!("{path}.mode"), rb.mode, BondMode::Lacp);

            let mut members = Vec::new();
            let mut member_count = 0usize;
            match rb.members {
                None => ctx.error(
                    &format!("{path}.members"),
                    "missing required key `members`: the ports of this bond, e.g. `members = [\"p0\", \"p1\"]`".to_owned(),
                ),
                Some(List(list)) if list.is_empty() => ctx.error(
                    &format!("{path}.members"),
                    "members is empty; list at least one port, e.g. [\"p0\", \"p1\"]".to_owned(),
                ),
                Some(List(list)) => {
                    member_count = list.len();
                    let mut in_this: HashMap<&str, usize> = HashMap::new();
                    for (j, port) in list.iter().enumerate() {
                        let mpath = format!("{path}.members[{j}]");
                        if !port_names.contains(port) {
                            let message = if bond_names.contains(port) {
                                format!("{port:?} is a bond; bonds cannot be members of bonds, list ports only")
                            } else {
                                let names: Vec<&str> = port_names.iter().map(String::as_str).collect();
                                format!("unknown port {port:?}; {}", known(&names, "port"))
                            };
                            ctx.error(&mpath, message);
                        } else if let Some(first) = in_this.get(port.as_str()) {
                            ctx.error(
                                &mpath,
                                format!("port {port} is listed twice in this bond (also members[{first}]); remove one"),
                            );
                        } else if let Some((other, opath)) = member_of.get(port) {
                            let line = ctx.line(opath);
                            let other = bond_names_at(&bond_names, *other);
                            ctx.error(
                                &mpath,
                                format!("port {port} is already a member of bond {other} (line {line}); a port can belong to one bond only"),
                            );
                        } else {
                            in_this.insert(port, j);
                            member_of.insert(port.clone(), (i, mpath.clone()));
                            members.push(port.clone());
                        }
                    }
                }
            }

            let hash_path = format!("{path}.hash");
            if mode == BondMode::ActiveBackup && rb.hash.is_some() {
                ctx.error(
                    &hash_path,
                    "hash has no effect with mode = \"active-backup\" (one member carries all traffic); remove the key".to_owned(),
                );
            }
            let hash = ctx.keyword(&hash_path, rb.hash, HashPolicy::Layer23);

            let min_path = format!("{path}.min_links");
            let mut min_links: u16 = ctx.int_or(&min_path, rb.min_links, 1);
            if member_count > 0 && usize::from(min_links) > member_count {
                ctx.error(
                    &min_path,
                    format!("min_links = {min_links} but the bond has {member_count} member(s); use 1..={member_count} or add members"),
                );
                min_links = 1;
            }

            let mac = self.mac(&format!("{path}.mac"), rb.mac.as_ref(), "bond MAC");

            let lacp = match (mode, rb.lacp) {
                (BondMode::Lacp, raw) => Some(self.lacp(&path, i, raw, min_links, member_count)),
                (other, Some(_)) => {
                    self.ctx.error_at_key(
                        &format!("{path}.lacp"),
                        format!("[bond.lacp] applies only to mode = \"802.3ad\", but this bond's mode is {:?}; remove the [bond.lacp] table or set mode = \"802.3ad\"", other.as_str()),
                    );
                    None
                }
                (_, None) => None,
            };

            bonds.push(Bond {
                name,
                mode,
                members: members
                    .into_iter()
                    .map(|port| BondMember {
                        port,
                        lacp_port_number: 0,
                        lacp_port_priority: DEFAULT_PORT_PRIORITY,
                    })
                    .collect(),
                hash,
                min_links,
                mac,
                lacp,
            });
        }

        self.resolve_members(&mut bonds, ports);
        self.lacp_keys(&bonds);
        bonds
    }

    fn lacp(
        &mut self,
        path: &str,
        bond_index: usize,
        raw: Option<RawLacp>,
        min_links: u16,
        members: usize,
    ) -> Lacp {
        let default_key = u16::try_from(bond_index + 1).unwrap_or(u16::MAX);
        let Some(raw) = raw else {
            return Lacp {
                activity: LacpActivity::Active,
                rate: LacpRate::Fast,
                system_priority: DEFAULT_SYSTEM_PRIORITY,
                system_id: None,
                key: default_key,
                port_priority: DEFAULT_PORT_PRIORITY,
                max_active: None,
                selection: Selection::Stable,
                fallback: Fallback::None,
                mux: MuxMode::Coupled,
            };
        };
        let p = |key: &str| format!("{path}.lacp.{key}");
        let system_id = self.mac(&p("system_id"), raw.system_id.as_ref(), "LACP system_id");
        let ctx = &mut self.ctx;
        let max_active: Option<u16> = raw.max_active.and_then(|r| ctx.int(&p("max_active"), r));
        if let Some(max) = max_active {
            if max < min_links || (members > 0 && usize::from(max) > members) {
                ctx.error(
                    &p("max_active"),
                    format!("max_active = {max} must be between min_links ({min_links}) and the number of members ({members}); ports selected beyond max_active go STANDBY"),
                );
            }
        }
        Lacp {
            activity: ctx.keyword(&p("activity"), raw.activity, LacpActivity::Active),
            rate: ctx.keyword(&p("rate"), raw.rate, LacpRate::Fast),
            system_priority: ctx.int_or(
                &p("system_priority"),
                raw.system_priority,
                DEFAULT_SYSTEM_PRIORITY,
            ),
            system_id,
            key: ctx.int_or(&p("key"), raw.key, default_key),
            port_priority: ctx.int_or(
                &p("port_priority"),
                raw.port_priority,
                DEFAULT_PORT_PRIORITY,
            ),
            max_active,
            selection: ctx.keyword(&p("selection"), raw.selection, Selection::Stable),
            fallback: ctx.keyword(&p("fallback"), raw.fallback, Fallback::None),
            mux: ctx.keyword(&p("mux"), raw.mux, MuxMode::Coupled),
        }
    }

    /// Effective LACP port numbers and priorities; per-port LACP keys outside 802.3ad bonds;
    /// equal MTUs within a bond.
    fn resolve_members(&mut self, bonds: &mut [Bond], ports: &[Port]) {
        let port_at = |name: &str| ports.iter().position(|p| p.name == name);
        for (i, bond) in bonds.iter_mut().enumerate() {
            let default_priority = bond
                .lacp
                .as_ref()
                .map_or(DEFAULT_PORT_PRIORITY, |l| l.port_priority);
            // port number -> member name
            let mut numbers: HashMap<u16, String> = HashMap::new();
            let mut first_mtu: Option<(&str, u16)> = None;
            for (j, member) in bond.members.iter_mut().enumerate() {
                let Some(k) = port_at(&member.port) else {
                    continue;
                };
                let port = &ports[k];
                let position = u16::try_from(j + 1).unwrap_or(u16::MAX);
                member.lacp_port_number = port.lacp_port_number.unwrap_or(position);
                member.lacp_port_priority = port.lacp_port_priority.unwrap_or(default_priority);
                if bond.lacp.is_some() {
                    if let Some(other) = numbers.get(&member.lacp_port_number) {
                        let (where_, hint) = if port.lacp_port_number.is_some() {
                            (
                                format!("port[{k}].lacp_port_number"),
                                "choose a number not used by another member",
                            )
                        } else {
                            (format!("bond[{i}].members[{j}]"), "port numbers default to the 1-based position in members; set lacp_port_number on one of the ports")
                        };
                        self.ctx.error(
                            &where_,
                            format!("LACP port number {} is used by both {other} and {} in bond {}; {hint}", member.lacp_port_number, member.port, bond.name),
                        );
                    } else {
                        numbers.insert(member.lacp_port_number, member.port.clone());
                    }
                }
                match first_mtu {
                    None => first_mtu = Some((&port.name, port.mtu)),
                    Some((first, mtu)) if mtu != port.mtu => self.ctx.error(
                        &format!("bond[{i}].members[{j}]"),
                        format!("member {} has mtu {} but {first} has mtu {mtu}; all members of a bond need the same mtu (set port[{k}].mtu)", port.name, port.mtu),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (k, port) in ports.iter().enumerate() {
            let in_lacp_bond = bonds
                .iter()
                .any(|b| b.lacp.is_some() && b.has_member(&port.name));
            if in_lacp_bond || port.name.is_empty() {
                continue;
            }
            for (key, set) in [
                ("lacp_port_priority", port.lacp_port_priority.is_some()),
                ("lacp_port_number", port.lacp_port_number.is_some()),
            ] {
                if set {
                    self.ctx.error_at_key(
                        &format!("port[{k}].{key}"),
                        format!("{key} applies only to members of an 802.3ad bond, and port {} is not one; remove the key or add the port to an 802.3ad bond's members", port.name),
                    );
                }
            }
        }
    }

    /// Bonds that share a system id need distinct keys, or partners would aggregate them.
    fn lacp_keys(&mut self, bonds: &[Bond]) {
        // (system id, key) -> bond index
        let mut seen: HashMap<(Option<MacAddr>, u16), usize> = HashMap::new();
        for (i, bond) in bonds.iter().enumerate() {
            let Some(lacp) = &bond.lacp else { continue };
            let slot = (lacp.system_id, lacp.key);
            if let Some(&j) = seen.get(&slot) {
                let other = &bonds[j].name;
                let key_path = format!("bond[{i}].lacp.key");
                let (path, how) = if self.ctx.present(&key_path) {
                    (key_path, "set a different lacp.key")
                } else {
                    (format!("bond[{i}].name"), "the default key is the bond's 1-based position in the file; set lacp.key explicitly")
                };
                let line = self.ctx.line(&format!("bond[{j}]"));
                self.ctx.error(
                    &path,
                    format!("LACP key {} is also used by bond {other} (line {line}) with the same system id; bonds sharing a system id need distinct keys: {how}", lacp.key),
                );
            } else {
                seen.insert(slot, i);
            }
        }
    }
}
