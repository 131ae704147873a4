//! Topologies most tests use: two bonds joined member by member ([`Sim::pair`],
//! [`BondPair`]), many such pairs for the benchmark ([`many_pairs`]), and locally administered
//! addresses for members and systems.

use crate::config::{BondConfig, PortConfig};
use crate::engine::{BondId, PortId};
use crate::wire::MacAddr;

use super::{Endpoint, LinkId, LinkParams, NodeId, Sim, SimError};

impl Sim {
    /// Connects two bonds (already created) with `n` new members each, numbered from
    /// `first_port_number`, one link per member pair.
    #[allow(clippy::too_many_arguments)]
    pub fn add_bond_pair(
        &mut self,
        a: NodeId,
        a_bond: BondId,
        b: NodeId,
        b_bond: BondId,
        n: usize,
        first_port_number: u16,
        params: LinkParams,
    ) -> Result<BondPair, SimError> {
        let mut pair = BondPair {
            a,
            b,
            a_bond,
            b_bond,
            a_ports: Vec::new(),
            b_ports: Vec::new(),
            links: Vec::new(),
        };
        for i in 0..n {
            let number = first_port_number + i as u16;
            let pa = self.add_port(
                a,
                a_bond,
                PortConfig::new(
                    format!("n{}p{number}", a.0),
                    port_mac(a.0 as u8, number),
                    number,
                ),
            )?;
            let pb = self.add_port(
                b,
                b_bond,
                PortConfig::new(
                    format!("n{}p{number}", b.0),
                    port_mac(b.0 as u8, number),
                    number,
                ),
            )?;
            let l = self.connect(
                Endpoint { node: a, port: pa },
                Endpoint { node: b, port: pb },
                params,
            );
            pair.a_ports.push(pa);
            pair.b_ports.push(pb);
            pair.links.push(l);
        }
        Ok(pair)
    }

    /// Two nodes, one bond each, `n` links between them: the usual conformance setup.
    pub fn pair(
        seed: u64,
        n: usize,
        cfg_a: BondConfig,
        cfg_b: BondConfig,
        params: LinkParams,
    ) -> Result<(Sim, BondPair), SimError> {
        let mut sim = Sim::new(seed);
        let a = sim.add_node();
        let b = sim.add_node();
        let ab = sim.add_bond(a, cfg_a)?;
        let bb = sim.add_bond(b, cfg_b)?;
        let pair = sim.add_bond_pair(a, ab, b, bb, n, 1, params)?;
        Ok((sim, pair))
    }
}

/// `bonds` bonds of `ports_per_bond` members on each of two nodes, bond `i` of A joined member
/// by member to bond `i` of B (one System ID per node, keys 1..=bonds, port numbers unique per
/// node). The scale setup of the benchmark.
pub fn many_pairs(
    seed: u64,
    bonds: usize,
    ports_per_bond: usize,
    params: LinkParams,
) -> Result<(Sim, Vec<BondPair>), SimError> {
    let mut sim = Sim::new(seed);
    let a = sim.add_node();
    let b = sim.add_node();
    let mut pairs = Vec::with_capacity(bonds);
    for i in 0..bonds {
        let key = (i + 1) as u16;
        let ab = sim.add_bond(a, BondConfig::new(format!("a{i}"), system_mac(0, 1), key))?;
        let bb = sim.add_bond(b, BondConfig::new(format!("b{i}"), system_mac(1, 1), key))?;
        let first = (i * ports_per_bond + 1) as u16;
        pairs.push(sim.add_bond_pair(a, ab, b, bb, ports_per_bond, first, params)?);
    }
    Ok((sim, pairs))
}

/// Two bonds joined member by member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondPair {
    /// Node of side A.
    pub a: NodeId,
    /// Node of side B.
    pub b: NodeId,
    /// Bond on A.
    pub a_bond: BondId,
    /// Bond on B.
    pub b_bond: BondId,
    /// Members on A.
    pub a_ports: Vec<PortId>,
    /// Members on B (same order: `a_ports[i]` is linked to `b_ports[i]`).
    pub b_ports: Vec<PortId>,
    /// The links.
    pub links: Vec<LinkId>,
}

impl BondPair {
    /// Both sides distribute on every member.
    pub fn all_distributing(&self, sim: &Sim) -> bool {
        let da = sim
            .engine(self.a)
            .distribution(self.a_bond)
            .map(|d| d.len())
            .unwrap_or(0);
        let db = sim
            .engine(self.b)
            .distribution(self.b_bond)
            .map(|d| d.len())
            .unwrap_or(0);
        da == self.a_ports.len() && db == self.b_ports.len()
    }

    /// Both sides distribute on member `i`.
    pub fn distributing(&self, sim: &Sim, i: usize) -> bool {
        sim.engine(self.a).is_distributing(self.a_ports[i])
            && sim.engine(self.b).is_distributing(self.b_ports[i])
    }
}

/// A locally administered MAC for member `number` of node `node`.
pub fn port_mac(node: u8, number: u16) -> MacAddr {
    let n = number.to_be_bytes();
    MacAddr([0x02, 0x00, node, 0x01, n[0], n[1]])
}

/// A locally administered System ID MAC for node `node`, bond `bond`.
pub fn system_mac(node: u8, bond: u16) -> MacAddr {
    let n = bond.to_be_bytes();
    MacAddr([0x02, 0x5a, node, 0x00, n[0], n[1]])
}
