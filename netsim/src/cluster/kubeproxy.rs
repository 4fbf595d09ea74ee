//! kube-proxy on every node: the rule table is recomputed from the cache's Services and
//! EndpointSlices (the `proxy` crate's sans-IO `sync`), and new flows walk exactly that table
//! (`proxy::evaluate`) — the same rules `iptables-save` and `ipvsadm -Ln` print.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use apiserver::json::At;
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

/// Each node's rule table, by node name.
pub type RuleTables = BTreeMap<String, RuleTable>;

/// Data-path state derived from the cache, kept until the cache moves: network commands
/// reuse it instead of re-syncing every node's rules and rebuilding CoreDNS's index.
#[derive(Default)]
pub struct Derived {
    /// (cache revision, kube-proxy modes) → tables.
    tables: Option<(i64, BTreeMap<String, String>, Arc<RuleTables>)>,
    dns: Option<(i64, Arc<dns::Snapshot>)>,
}

impl Cluster {
    fn derived(&self) -> std::sync::MutexGuard<'_, Derived> {
        match self.derived.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Each node's current rule table (what its kube-proxy would have synced), recomputed
    /// only when the cache or a kube-proxy's mode changed.
    pub fn rule_tables(&self) -> Result<Arc<RuleTables>, proxy::ProxyError> {
        let rev = self.cache.revision;
        if let Some((r, modes, t)) = &self.derived().tables {
            if *r == rev && *modes == self.proxy_modes {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(self.sync_rule_tables()?);
        self.derived().tables = Some((rev, self.proxy_modes.clone(), t.clone()));
        Ok(t)
    }

    /// CoreDNS's view of the cluster. Its SOA serial is the time of the last change: the
    /// virtual time at which this revision of the cache was first looked at.
    pub fn dns_snapshot(&self) -> Arc<dns::Snapshot> {
        let rev = self.cache.revision;
        if let Some((r, snap)) = &self.derived().dns {
            if *r == rev {
                return snap.clone();
            }
        }
        let objects = |plural: &str| -> Vec<Value> { self.cache.all(plural).cloned().collect() };
        let cfg = dns::DnsConfig {
            serial: (self.now_ms() / 1000) as u32,
            ..Default::default()
        };
        let snap = Arc::new(dns::Snapshot::from_objects(
            &objects("services"),
            &objects("endpointslices"),
            &objects("pods"),
            &objects("namespaces"),
            &cfg,
        ));
        self.derived().dns = Some((rev, snap.clone()));
        snap
    }

    fn sync_rule_tables(&self) -> Result<BTreeMap<String, RuleTable>, proxy::ProxyError> {
        let services: Vec<Value> = self.cache.all("services").cloned().collect();
        let slices: Vec<Value> = self.cache.all("endpointslices").cloned().collect();
        let mut out = BTreeMap::new();
        for node in self.cache.all("nodes") {
            let name = str_at(node, &["metadata", "name"])
                .unwrap_or_default()
                .to_owned();
            let ips: Vec<Ipv4Addr> = node
                .at(&["status", "addresses"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| str_at(a, &["type"]) == Some("InternalIP"))
                .filter_map(|a| str_at(a, &["address"]).and_then(|s| s.parse().ok()))
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

/// The packet's protocol as kube-proxy's rules name it (ICMP has no Service ports).
pub(crate) fn proxy_proto(p: Proto) -> Option<proxy::Proto> {
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
        let Some(p) = proxy_proto(t.proto) else {
            if rt.rejects_portless(t.dst) {
                // The rule that refuses it, as iptables-save prints it: KUBE-IPVS-FILTER's last.
                let rule = rt
                    .filter
                    .chains
                    .get("KUBE-IPVS-FILTER")
                    .and_then(|c| c.rules.last())
                    .map(|r| proxy::rule_save("KUBE-IPVS-FILTER", r))
                    .unwrap_or_default();
                return Decision {
                    reject: true,
                    trace: vec![format!(
                        "filter/KUBE-IPVS-FILTER: {rule}  [{} to a kube-ipvs0 address matches no service port]",
                        t.proto.name()
                    )],
                    ..Decision::default()
                };
            }
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
                d.ipvs = v.ipvs;
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
