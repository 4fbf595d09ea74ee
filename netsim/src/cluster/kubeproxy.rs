//! kube-proxy on every node: the rule table is recomputed from the cache's Services and
//! EndpointSlices (the `proxy` crate's sans-IO `sync`), and new flows walk exactly that table
//! (`proxy::evaluate`) — the same rules `iptables-save` and `ipvsadm -Ln` print.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use apiserver::sim::SimRng;
use proxy::{Mode, ProxyInput, ProxyState, RuleTable};
use serde_json::Value;

use super::cache::str_at;
use super::Cluster;
use crate::net::packet::{Proto, Tuple};
use crate::net::{Decision, Hook, Netfilter};

/// The pod network all podCIDRs are carved from (kube-proxy's `--cluster-cidr`).
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";

pub fn mode_of(name: &str) -> Mode {
    match name {
        "ipvs" => Mode::Ipvs,
        "nftables" => Mode::Nftables,
        "userspace" => Mode::Userspace,
        _ => Mode::Iptables,
    }
}

impl Cluster {
    /// Each node's current rule table (what its kube-proxy would have synced).
    pub fn rule_tables(&self) -> Result<BTreeMap<String, RuleTable>, proxy::ProxyError> {
        let services: Vec<Value> = self.cache.all("services").cloned().collect();
        let slices: Vec<Value> = self.cache.all("endpointslices").cloned().collect();
        let mut out = BTreeMap::new();
        for node in self.cache.all("nodes") {
            let name = str_at(node, "/metadata/name")
                .unwrap_or_default()
                .to_owned();
            let ips: Vec<Ipv4Addr> = node
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| str_at(a, "/type") == Some("InternalIP"))
                .filter_map(|a| str_at(a, "/address").and_then(|s| s.parse().ok()))
                .collect();
            let input = ProxyInput {
                mode: mode_of(
                    self.proxy_modes
                        .get(&name)
                        .unwrap_or(&self.config.proxy_mode),
                ),
                node_name: name.clone(),
                node_ips: ips,
                cluster_cidr: CLUSTER_CIDR.to_owned(),
                services: services.clone(),
                endpoint_slices: slices.clone(),
                masquerade_all: false,
            };
            out.insert(name, proxy::sync(&input)?);
        }
        Ok(out)
    }
}

/// Netfilter on every node, backed by the rule tables.
pub struct KubeProxy<'a> {
    pub tables: &'a BTreeMap<String, RuleTable>,
    pub states: &'a mut BTreeMap<String, ProxyState>,
    pub rng: &'a SimRng,
}

fn proto(p: Proto) -> Option<proxy::Proto> {
    match p {
        Proto::Tcp => Some(proxy::Proto::Tcp),
        Proto::Udp => Some(proxy::Proto::Udp),
        Proto::Icmp => None,
    }
}

impl Netfilter for KubeProxy<'_> {
    fn userspace_backend(
        &mut self,
        node: &str,
        proxy_port: u16,
        client: Ipv4Addr,
        now_ms: i64,
    ) -> Option<(Ipv4Addr, u16)> {
        let rt = self.tables.get(node)?;
        let state = self.states.entry(node.to_owned()).or_default();
        proxy::userspace_pick(rt, proxy::Proto::Tcp, proxy_port, client, state, now_ms)
            .map(|(b, _)| b)
    }

    fn is_local(&self, node: &str, ip: Ipv4Addr) -> bool {
        self.tables.get(node).is_some_and(|rt| rt.is_local(ip))
    }

    fn new_flow(&mut self, node: &str, hook: Hook, t: &Tuple, now_ms: i64) -> Decision {
        let Some(rt) = self.tables.get(node) else {
            return Decision::default();
        };
        let Some(p) = proto(t.proto) else {
            return Decision::default();
        };
        let state = self.states.entry(node.to_owned()).or_default();
        let rng = self.rng;
        let mut draw = || rng.unit();
        let mut pkt = proxy::PacketMeta::new(t.src, t.dst, p, t.sport, t.dport);
        let mut d = Decision::default();
        let take = |v: proxy::Verdict, pkt: &mut proxy::PacketMeta, d: &mut Decision| {
            for l in &v.trace {
                d.trace
                    .push(format!("{}/{}: {}  [{}]", l.table, l.chain, l.rule, l.why));
            }
            if let Some(n) = v.nat {
                d.dnat = Some((n.ip, n.port));
                pkt.dst = n.ip;
                pkt.dport = n.port;
                pkt.ct_dnat = true;
            }
            d.masquerade |= v.masquerade;
            d.reject |= v.reject;
            d.drop |= v.drop;
            pkt.mark = v.mark;
        };
        let first = match hook {
            Hook::Prerouting => proxy::Hook::Prerouting,
            Hook::Output => proxy::Hook::Output,
        };
        let v = proxy::evaluate(rt, first, &pkt, state, &mut draw, now_ms);
        take(v, &mut pkt, &mut d);
        if d.reject || d.drop {
            return d;
        }
        if hook == Hook::Prerouting {
            // Routing decision: to this host (INPUT; IPVS lives there) or onwards (FORWARD).
            let second = if rt.is_local(pkt.dst) {
                proxy::Hook::Input
            } else {
                proxy::Hook::Forward
            };
            let v = proxy::evaluate(rt, second, &pkt, state, &mut draw, now_ms);
            take(v, &mut pkt, &mut d);
            if d.reject || d.drop {
                return d;
            }
        }
        let v = proxy::evaluate(rt, proxy::Hook::Postrouting, &pkt, state, &mut draw, now_ms);
        take(v, &mut pkt, &mut d);
        d
    }
}
