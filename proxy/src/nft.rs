//! The nftables proxier: the `table ip kube-proxy` ruleset, its `nft list ruleset` view and
//! its evaluation.
//!
//! Layer: proxier + view + evaluation (pure). Guarantee: placeholder until filled.

use std::net::Ipv4Addr;

use crate::eval::{Hook, PacketMeta, Verdict};
use crate::input::SvcPort;
use crate::model::*;

/// The `ip kube-proxy` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NftRuleset {}

pub(crate) fn build(
    _ports: &[SvcPort],
    _cluster_cidr: Cidr,
    _masquerade_all: bool,
    _node_ips: &[Ipv4Addr],
) -> NftRuleset {
    NftRuleset {}
}

pub(crate) fn evaluate(
    _rt: &RuleTable,
    _nft: &NftRuleset,
    _hook: Hook,
    _pkt: &mut PacketMeta,
    _draw: &mut dyn FnMut() -> f64,
    _v: &mut Verdict,
) {
}

/// `nft list ruleset`.
pub fn nft_list_ruleset(_rt: &RuleTable) -> String {
    String::new()
}
