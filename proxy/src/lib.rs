//! kube-proxy as a sans-IO core: Services + EndpointSlices + a node → a [`RuleTable`].
//!
//! Layer: proxy core. Guarantee: [`sync`] is a pure function of its [`ProxyInput`]; the views
//! ([`iptables_save`], [`iptables_list`], [`ipvsadm_ln`], [`ipvsadm_lnc`],
//! [`nft_list_ruleset`]) render that table (and the IPVS connections the caller passes), and
//! [`evaluate`] walks the very same table for a packet, drawing randomness only from the
//! caller and time only from `now_ms`. No I/O, no clock, no hash-map iteration.
//!
//! Modules: `input` (API objects → service ports), `hash` (chain names), `iptables`, `ipvs`,
//! `nft`, `userspace` (one proxier each), `model` (the table), `save` (iptables views),
//! `eval` (the packet walk).

mod eval;
mod hash;
mod input;
mod iptables;
mod ipvs;
mod model;
mod nft;
mod save;
mod userspace;

pub use eval::{evaluate, Dnat, Hook, PacketMeta, ProxyState, TraceLine, Verdict};
pub use hash::{endpoint_chain_name, port_proto_hash};
pub use input::ProxyInput;
pub use ipvs::{
    ipvsadm_ln, ipvsadm_lnc, service_line as ipvs_service_line, IpvsConn, IpvsConnState,
};
pub use model::*;
pub use nft::{
    nft_chain_name, nft_endpoint_chain_name, nft_list_ruleset, render_rule as nft_render_rule,
    NftBase, NftChain, NftExpr, NftKey, NftMap, NftRule, NftRuleset, NftSet, NftStmt, NftVerdict,
};
pub use save::{iptables_list, iptables_save, rule_save};
pub use userspace::userspace_pick;

/// Errors from [`sync`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// An input object does not decode as its Kubernetes type.
    #[error("{kind} #{index} does not decode")]
    Decode {
        kind: &'static str,
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    /// An address field is not an IPv4 address.
    #[error("{field}: invalid address {value:?}")]
    InvalidAddress { field: String, value: String },
    /// `cluster_cidr` is not an IPv4 CIDR.
    #[error("invalid cluster CIDR {0:?}")]
    InvalidClusterCidr(String),
}

/// Computes the node's rule table for the input's proxy mode.
pub fn sync(input: &ProxyInput) -> Result<RuleTable, ProxyError> {
    let cluster_cidr = Cidr::parse(&input.cluster_cidr)
        .filter(|_| input.cluster_cidr.contains('/'))
        .ok_or_else(|| ProxyError::InvalidClusterCidr(input.cluster_cidr.clone()))?;
    let ports = input::service_ports(input)?;
    let mut rt = RuleTable {
        mode: input.mode,
        node_name: input.node_name.clone(),
        node_ips: input.node_ips.clone(),
        cluster_cidr,
        filter: Table::new("filter"),
        nat: Table::new("nat"),
        ipsets: Default::default(),
        virtual_servers: Vec::new(),
        ipvs_addrs: Vec::new(),
        nft: None,
        portals: Vec::new(),
    };
    match input.mode {
        Mode::Iptables => {
            let (f, n) =
                iptables::build(&ports, cluster_cidr, input.masquerade_all, &input.node_ips);
            rt.filter = f;
            rt.nat = n;
        }
        Mode::Ipvs => {
            let out = ipvs::build(&ports, cluster_cidr, input.masquerade_all, &input.node_ips);
            rt.filter = out.filter;
            rt.nat = out.nat;
            rt.ipsets = out.ipsets;
            rt.virtual_servers = out.virtual_servers;
            rt.ipvs_addrs = out.ipvs_addrs;
        }
        Mode::Nftables => {
            rt.nft = Some(nft::build(
                &ports,
                cluster_cidr,
                input.masquerade_all,
                &input.node_ips,
            ));
        }
        Mode::Userspace => {
            let (f, n, portals) = userspace::build(&ports, &input.node_ips);
            rt.filter = f;
            rt.nat = n;
            rt.portals = portals;
        }
    }
    Ok(rt)
}
