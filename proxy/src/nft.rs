//! The nftables proxier: the `table ip kube-proxy` ruleset, its `nft list ruleset` view and
//! its evaluation.
//!
//! Layer: proxier + view + evaluation (pure). Guarantee: the structure follows upstream's
//! nftables proxier (v1.31+): verdict maps `service-ips` / `service-nodeports` looked up from
//! the `services` chain, `service-`/`local-`/`external-`/`endpoint-` chains named
//! `<prefix><base32(sha256(base))[:8]>-<ns>/<name>/<proto>/<port>`, `numgen random mod N`
//! for load balancing, `no-endpoint-*` maps to `reject-chain`, `mark-for-masquerade` and
//! `masquerading`. The evaluator walks these same chains and maps. Not modelled:
//! loadBalancerSourceRanges (`firewall-ips`), `cluster-ips-check`, counters; objects are
//! listed sorted by name rather than in creation order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::eval::{Dnat, Hook, PacketMeta, ProxyState, TraceLine, Verdict};
use crate::input::{Endpoint, SvcPort};
use crate::model::*;

/// A set or map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NftKey {
    Addr(Ipv4Addr),
    ProtoPort(Proto, u16),
    AddrProtoPort(Ipv4Addr, Proto, u16),
}

impl NftKey {
    fn render(&self) -> String {
        match self {
            NftKey::Addr(a) => a.to_string(),
            NftKey::ProtoPort(p, n) => format!("{} . {n}", p.lower()),
            NftKey::AddrProtoPort(a, p, n) => format!("{a} . {} . {n}", p.lower()),
        }
    }
}

/// A verdict (map values and rule verdicts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NftVerdict {
    Jump(String),
    Goto(String),
    Return,
    Drop,
    Accept,
}

impl NftVerdict {
    fn render(&self) -> String {
        match self {
            NftVerdict::Jump(c) => format!("jump {c}"),
            NftVerdict::Goto(c) => format!("goto {c}"),
            NftVerdict::Return => "return".into(),
            NftVerdict::Drop => "drop".into(),
            NftVerdict::Accept => "accept".into(),
        }
    }
}

/// A named set. Affinity sets (`dynamic`) keep their elements in [`ProxyState`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftSet {
    pub type_: String,
    pub comment: Option<String>,
    /// `flags dynamic,timeout; timeout Ns` for affinity sets.
    pub timeout_s: Option<u32>,
    pub elements: BTreeSet<NftKey>,
}

/// A named verdict map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftMap {
    pub type_: String,
    pub comment: Option<String>,
    /// key → (verdict, element comment).
    pub elements: BTreeMap<NftKey, (NftVerdict, Option<String>)>,
}

/// A rule's conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NftExpr {
    /// `ip daddr [!=] CIDR`
    Daddr(Cidr, bool),
    /// `ip saddr [!=] CIDR`
    Saddr(Cidr, bool),
    /// `ip daddr @set`
    DaddrInSet(String),
    /// `ip saddr @set` (affinity sets)
    SaddrInSet(String),
    /// `tcp dport N`
    Dport(Proto, u16),
    /// `fib saddr type local`
    FibSaddrLocal,
    /// `meta mark & 0x00004000 == 0x00000000`
    MarkClear(u32),
    /// `ct state new`
    CtNew,
}

/// A rule's action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NftStmt {
    Verdict(NftVerdict),
    Reject,
    /// `meta l4proto P dnat to IP:PORT`
    Dnat(Proto, Ipv4Addr, u16),
    /// `meta mark set meta mark | M`
    MarkOr(u32),
    /// `meta mark set meta mark ^ M`
    MarkXor(u32),
    /// `masquerade fully-random`
    Masquerade,
    /// `ip daddr . meta l4proto . th dport vmap @MAP`
    VmapAddrProtoPort(String),
    /// `meta l4proto . th dport vmap @MAP`
    VmapProtoPort(String),
    /// `numgen random mod N vmap { 0 : goto C0, ... }`
    Numgen(Vec<String>),
    /// `update @SET { ip saddr }`, then continue
    UpdateSaddr(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftRule {
    pub exprs: Vec<NftExpr>,
    pub stmt: NftStmt,
    pub comment: Option<String>,
}

/// A base chain's hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftBase {
    pub type_: &'static str,
    pub hook: &'static str,
    pub priority: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NftChain {
    pub base: Option<NftBase>,
    pub comment: Option<String>,
    pub rules: Vec<NftRule>,
}

/// The `ip kube-proxy` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NftRuleset {
    pub sets: BTreeMap<String, NftSet>,
    pub maps: BTreeMap<String, NftMap>,
    pub chains: BTreeMap<String, NftChain>,
}

fn rule(exprs: Vec<NftExpr>, stmt: NftStmt) -> NftRule {
    NftRule {
        exprs,
        stmt,
        comment: None,
    }
}

/// `hashAndTruncate`: `base32(sha256(name))[:8] + "-" + name`, cut at 128 characters.
fn hash_and_truncate(name: &str) -> String {
    let d = Sha256::digest(name.as_bytes());
    // base32 of the first 5 bytes gives exactly the first 8 characters.
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let v = d[..5]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut s: String = (0..8)
        .map(|i| char::from(A[((v >> (35 - 5 * i)) & 0x1f) as usize]))
        .collect();
    s.push('-');
    s.push_str(name);
    if s.len() > 128 {
        let mut cut = 125;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// `ns/name/proto/port` from `ns/name[:port]`.
fn chain_base(sp_spn: &str, proto: Proto) -> String {
    let (nn, port) = sp_spn.split_once(':').unwrap_or((sp_spn, ""));
    format!("{nn}/{}/{port}", proto.lower())
}

/// nftables chain names for a service port (`service-`, `local-`, `external-`) and endpoint.
pub fn nft_chain_name(prefix: &str, spn: &str, proto: Proto) -> String {
    format!("{prefix}-{}", hash_and_truncate(&chain_base(spn, proto)))
}

/// `endpoint-HASH-ns/name/proto/port__ip/port`.
pub fn nft_endpoint_chain_name(spn: &str, proto: Proto, ep: &str) -> String {
    let base = format!("{}__{}", chain_base(spn, proto), ep.replace(':', "/"));
    format!("endpoint-{}", hash_and_truncate(&base))
}

fn base_chain(type_: &'static str, hook: &'static str, priority: &'static str) -> NftChain {
    NftChain {
        base: Some(NftBase {
            type_,
            hook,
            priority,
        }),
        comment: None,
        rules: Vec::new(),
    }
}

pub(crate) fn build(
    ports: &[SvcPort],
    cluster_cidr: Cidr,
    masquerade_all: bool,
    node_ips: &[Ipv4Addr],
) -> NftRuleset {
    let mut rs = NftRuleset::default();
    let set = |type_: &str, comment: &str| NftSet {
        type_: type_.into(),
        comment: Some(comment.into()),
        timeout_s: None,
        elements: BTreeSet::new(),
    };
    let map = |type_: &str, comment: &str| NftMap {
        type_: type_.into(),
        comment: Some(comment.into()),
        elements: BTreeMap::new(),
    };
    rs.sets
        .insert("cluster-ips".into(), set("ipv4_addr", "Active ClusterIPs"));
    let mut np_ips = set("ipv4_addr", "IPs that accept NodePort traffic");
    np_ips.elements = node_ips.iter().map(|ip| NftKey::Addr(*ip)).collect();
    rs.sets.insert("nodeport-ips".into(), np_ips);
    let apv = "ipv4_addr . inet_proto . inet_service : verdict";
    let pv = "inet_proto . inet_service : verdict";
    rs.maps.insert(
        "service-ips".into(),
        map(apv, "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
    );
    rs.maps
        .insert("service-nodeports".into(), map(pv, "NodePort traffic"));
    rs.maps.insert(
        "no-endpoint-services".into(),
        map(
            apv,
            "vmap to drop or reject packets to services with no endpoints",
        ),
    );
    rs.maps.insert(
        "no-endpoint-nodeports".into(),
        map(
            pv,
            "vmap to drop or reject packets to service nodeports with no endpoints",
        ),
    );

    let mut c = |name: &str, ch: NftChain| {
        rs.chains.insert(name.to_string(), ch);
    };
    let mut pre = base_chain("nat", "prerouting", "dstnat");
    pre.rules.push(rule(
        vec![],
        NftStmt::Verdict(NftVerdict::Jump("services".into())),
    ));
    c("nat-prerouting", pre);
    let mut out = base_chain("nat", "output", "-100");
    out.rules.push(rule(
        vec![],
        NftStmt::Verdict(NftVerdict::Jump("services".into())),
    ));
    c("nat-output", out);
    let mut post = base_chain("nat", "postrouting", "srcnat");
    post.rules.push(rule(
        vec![],
        NftStmt::Verdict(NftVerdict::Jump("masquerading".into())),
    ));
    c("nat-postrouting", post);
    for (name, hook, checks) in [
        (
            "filter-input",
            "input",
            &["nodeport-endpoints-check", "service-endpoints-check"][..],
        ),
        (
            "filter-forward",
            "forward",
            &["service-endpoints-check"][..],
        ),
        ("filter-output", "output", &["service-endpoints-check"][..]),
    ] {
        let mut ch = base_chain("filter", hook, "-110");
        for chk in checks {
            ch.rules.push(rule(
                vec![NftExpr::CtNew],
                NftStmt::Verdict(NftVerdict::Jump((*chk).into())),
            ));
        }
        c(name, ch);
    }
    c(
        "services",
        NftChain {
            base: None,
            comment: None,
            rules: vec![
                rule(vec![], NftStmt::VmapAddrProtoPort("service-ips".into())),
                rule(
                    vec![NftExpr::DaddrInSet("nodeport-ips".into())],
                    NftStmt::VmapProtoPort("service-nodeports".into()),
                ),
            ],
        },
    );
    c(
        "service-endpoints-check",
        NftChain {
            rules: vec![rule(
                vec![],
                NftStmt::VmapAddrProtoPort("no-endpoint-services".into()),
            )],
            ..Default::default()
        },
    );
    c(
        "nodeport-endpoints-check",
        NftChain {
            rules: vec![rule(
                vec![NftExpr::DaddrInSet("nodeport-ips".into())],
                NftStmt::VmapProtoPort("no-endpoint-nodeports".into()),
            )],
            ..Default::default()
        },
    );
    c(
        "reject-chain",
        NftChain {
            comment: Some("helper for @no-endpoint-services / @no-endpoint-nodeports".into()),
            rules: vec![rule(vec![], NftStmt::Reject)],
            ..Default::default()
        },
    );
    c(
        "mark-for-masquerade",
        NftChain {
            rules: vec![rule(vec![], NftStmt::MarkOr(MASQ_MARK))],
            ..Default::default()
        },
    );
    c(
        "masquerading",
        NftChain {
            rules: vec![
                rule(
                    vec![NftExpr::MarkClear(MASQ_MARK)],
                    NftStmt::Verdict(NftVerdict::Return),
                ),
                rule(vec![], NftStmt::MarkXor(MASQ_MARK)),
                rule(vec![], NftStmt::Masquerade),
            ],
            ..Default::default()
        },
    );

    for sp in ports {
        service_port(&mut rs, sp, cluster_cidr, masquerade_all);
    }
    rs
}

fn service_port(rs: &mut NftRuleset, sp: &SvcPort, cluster_cidr: Cidr, masquerade_all: bool) {
    let spn = sp.spn.as_str();
    let p = sp.proto;
    let svc = nft_chain_name("service", spn, p);
    let local_c = nft_chain_name("local", spn, p);
    let ext = nft_chain_name("external", spn, p);
    let cat = sp.categorize();
    let has = cat.has_any;
    let (internal, has_internal) = if sp.int_local {
        (&local_c, has && !cat.local.is_empty())
    } else {
        (&svc, has)
    };
    let (ext_policy, has_external) = if sp.ext_local {
        (&local_c, has && !cat.local.is_empty())
    } else {
        (&svc, has)
    };
    let filter_verdict = if has {
        NftVerdict::Drop
    } else {
        NftVerdict::Goto("reject-chain".into())
    };
    let ins = |rs: &mut NftRuleset, m: &str, k: NftKey, v: NftVerdict| {
        if let Some(map) = rs.maps.get_mut(m) {
            map.elements.insert(k, (v, Some(spn.to_string())));
        }
    };
    if let Some(s) = rs.sets.get_mut("cluster-ips") {
        s.elements.insert(NftKey::Addr(sp.cluster_ip));
    }
    let cip = NftKey::AddrProtoPort(sp.cluster_ip, p, sp.port);
    if has_internal {
        ins(rs, "service-ips", cip, NftVerdict::Goto(internal.clone()));
    } else {
        ins(rs, "no-endpoint-services", cip, filter_verdict.clone());
    }
    for ip in sp.external_ips.iter().chain(sp.lb_ips.iter()) {
        let k = NftKey::AddrProtoPort(*ip, p, sp.port);
        if has {
            ins(rs, "service-ips", k, NftVerdict::Goto(ext.clone()));
        }
        if !has_external {
            ins(rs, "no-endpoint-services", k, filter_verdict.clone());
        }
    }
    if let Some(np) = sp.node_port {
        let k = NftKey::ProtoPort(p, np);
        if has {
            ins(rs, "service-nodeports", k, NftVerdict::Goto(ext.clone()));
        }
        if !has_external {
            ins(rs, "no-endpoint-nodeports", k, filter_verdict.clone());
        }
    }
    if !has {
        return;
    }
    if sp.externally_accessible() {
        let mut ch = NftChain::default();
        if !sp.ext_local {
            ch.rules.push(rule(
                vec![],
                NftStmt::Verdict(NftVerdict::Jump("mark-for-masquerade".into())),
            ));
        } else {
            let mut r = rule(
                vec![NftExpr::Saddr(cluster_cidr, false)],
                NftStmt::Verdict(NftVerdict::Goto(svc.clone())),
            );
            r.comment = Some("short-circuit pod traffic".into());
            ch.rules.push(r);
            let mut r = rule(
                vec![NftExpr::FibSaddrLocal],
                NftStmt::Verdict(NftVerdict::Jump("mark-for-masquerade".into())),
            );
            r.comment = Some("masquerade local traffic".into());
            ch.rules.push(r);
            let mut r = rule(
                vec![NftExpr::FibSaddrLocal],
                NftStmt::Verdict(NftVerdict::Goto(svc.clone())),
            );
            r.comment = Some("short-circuit local traffic".into());
            ch.rules.push(r);
        }
        if has_external {
            ch.rules.push(rule(
                vec![],
                NftStmt::Verdict(NftVerdict::Goto(ext_policy.clone())),
            ));
        }
        rs.chains.insert(ext, ch);
    }
    let uses_cluster =
        !cat.cluster.is_empty() && (!sp.int_local || (sp.externally_accessible() && !sp.ext_local));
    let uses_local = !cat.local.is_empty() && (sp.int_local || sp.ext_local);
    if uses_cluster {
        let mut ch = NftChain::default();
        let mut exprs = vec![
            NftExpr::Daddr(Cidr::host(sp.cluster_ip), false),
            NftExpr::Dport(p, sp.port),
        ];
        if !masquerade_all {
            exprs.push(NftExpr::Saddr(cluster_cidr, true));
        }
        ch.rules.push(rule(
            exprs,
            NftStmt::Verdict(NftVerdict::Jump("mark-for-masquerade".into())),
        ));
        lb_rules(rs, &mut ch, sp, &cat.cluster);
        rs.chains.insert(svc.clone(), ch);
    }
    if uses_local {
        let mut ch = NftChain::default();
        lb_rules(rs, &mut ch, sp, &cat.local);
        rs.chains.insert(local_c, ch);
    }
    for ep in &cat.all_reachable {
        let name = nft_endpoint_chain_name(spn, p, &ep.addr());
        let mut ch = NftChain::default();
        ch.rules.push(rule(
            vec![NftExpr::Saddr(Cidr::host(ep.ip), false)],
            NftStmt::Verdict(NftVerdict::Jump("mark-for-masquerade".into())),
        ));
        if sp.affinity_s.is_some() {
            ch.rules
                .push(rule(vec![], NftStmt::UpdateSaddr(affinity_set(&name))));
        }
        ch.rules
            .push(rule(vec![], NftStmt::Dnat(p, ep.ip, ep.port)));
        rs.chains.insert(name, ch);
    }
}

fn affinity_set(endpoint_chain: &str) -> String {
    endpoint_chain.replacen("endpoint-", "affinity-", 1)
}

fn lb_rules(rs: &mut NftRuleset, ch: &mut NftChain, sp: &SvcPort, eps: &[Endpoint]) {
    let names: Vec<String> = eps
        .iter()
        .map(|e| nft_endpoint_chain_name(&sp.spn, sp.proto, &e.addr()))
        .collect();
    if let Some(t) = sp.affinity_s {
        for n in &names {
            let set = affinity_set(n);
            rs.sets.insert(
                set.clone(),
                NftSet {
                    type_: "ipv4_addr".into(),
                    comment: None,
                    timeout_s: Some(t),
                    elements: BTreeSet::new(),
                },
            );
            ch.rules.push(rule(
                vec![NftExpr::SaddrInSet(set)],
                NftStmt::Verdict(NftVerdict::Goto(n.clone())),
            ));
        }
    }
    ch.rules.push(rule(vec![], NftStmt::Numgen(names)));
}

fn render_expr(e: &NftExpr) -> String {
    match e {
        NftExpr::Daddr(c, neg) | NftExpr::Saddr(c, neg) => {
            let field = if matches!(e, NftExpr::Daddr(..)) {
                "daddr"
            } else {
                "saddr"
            };
            let v = if c.prefix == 32 {
                c.addr.to_string()
            } else {
                c.to_string()
            };
            format!("ip {field} {}{v}", if *neg { "!= " } else { "" })
        }
        NftExpr::DaddrInSet(s) => format!("ip daddr @{s}"),
        NftExpr::SaddrInSet(s) => format!("ip saddr @{s}"),
        NftExpr::Dport(p, n) => format!("{} dport {n}", p.lower()),
        NftExpr::FibSaddrLocal => "fib saddr type local".into(),
        NftExpr::MarkClear(m) => format!("meta mark & 0x{m:08x} == 0x00000000"),
        NftExpr::CtNew => "ct state new".into(),
    }
}

fn render_stmt(s: &NftStmt) -> String {
    match s {
        NftStmt::Verdict(v) => v.render(),
        NftStmt::Reject => "reject".into(),
        NftStmt::Dnat(p, ip, port) => format!("meta l4proto {} dnat to {ip}:{port}", p.lower()),
        NftStmt::MarkOr(m) => format!("meta mark set meta mark | 0x{m:08x}"),
        NftStmt::MarkXor(m) => format!("meta mark set meta mark ^ 0x{m:08x}"),
        NftStmt::Masquerade => "masquerade fully-random".into(),
        NftStmt::VmapAddrProtoPort(m) => format!("ip daddr . meta l4proto . th dport vmap @{m}"),
        NftStmt::VmapProtoPort(m) => format!("meta l4proto . th dport vmap @{m}"),
        NftStmt::Numgen(cs) => {
            let items: Vec<String> = cs
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{i} : goto {c}"))
                .collect();
            format!(
                "numgen random mod {} vmap {{ {} }}",
                cs.len(),
                items.join(", ")
            )
        }
        NftStmt::UpdateSaddr(set) => format!("update @{set} {{ ip saddr }}"),
    }
}

/// A rule as `nft list` prints it.
pub fn render_rule(r: &NftRule) -> String {
    let mut parts: Vec<String> = r.exprs.iter().map(render_expr).collect();
    parts.push(render_stmt(&r.stmt));
    let mut s = parts.join(" ");
    if let Some(c) = &r.comment {
        let _ = write!(s, " comment \"{c}\"");
    }
    s
}

fn elements(items: Vec<String>, out: &mut String) {
    if items.is_empty() {
        return;
    }
    out.push_str("\t\telements = { ");
    out.push_str(&items.join(",\n\t\t\t     "));
    out.push_str(" }\n");
}

/// `nft list ruleset` (only kube-proxy's table exists on a simulated node).
pub fn nft_list_ruleset(rt: &RuleTable) -> String {
    let Some(rs) = &rt.nft else {
        return String::new();
    };
    let mut out = String::from("table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n");
    for (name, s) in &rs.sets {
        let _ = writeln!(out, "\n\tset {name} {{\n\t\ttype {}", s.type_);
        if let Some(t) = s.timeout_s {
            let _ = writeln!(out, "\t\tflags dynamic,timeout\n\t\ttimeout {t}s");
        }
        if let Some(c) = &s.comment {
            let _ = writeln!(out, "\t\tcomment \"{c}\"");
        }
        elements(s.elements.iter().map(|k| k.render()).collect(), &mut out);
        out.push_str("\t}\n");
    }
    for (name, m) in &rs.maps {
        let _ = writeln!(out, "\n\tmap {name} {{\n\t\ttype {}", m.type_);
        if let Some(c) = &m.comment {
            let _ = writeln!(out, "\t\tcomment \"{c}\"");
        }
        let items = m
            .elements
            .iter()
            .map(|(k, (v, c))| match c {
                Some(c) => format!("{} comment \"{c}\" : {}", k.render(), v.render()),
                None => format!("{} : {}", k.render(), v.render()),
            })
            .collect();
        elements(items, &mut out);
        out.push_str("\t}\n");
    }
    for (name, ch) in &rs.chains {
        let _ = writeln!(out, "\n\tchain {name} {{");
        if let Some(b) = &ch.base {
            let _ = writeln!(
                out,
                "\t\ttype {} hook {} priority {}; policy accept;",
                b.type_, b.hook, b.priority
            );
        }
        if let Some(c) = &ch.comment {
            let _ = writeln!(out, "\t\tcomment \"{c}\"");
        }
        for r in &ch.rules {
            let _ = writeln!(out, "\t\t{}", render_rule(r));
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Accept,
    Drop,
    Reject,
    Dnat(Dnat),
    Masquerade,
}

struct NWalk<'a> {
    rt: &'a RuleTable,
    rs: &'a NftRuleset,
    pkt: &'a mut PacketMeta,
    state: &'a mut ProxyState,
    draw: &'a mut dyn FnMut() -> f64,
    now_ms: i64,
    trace: &'a mut Vec<TraceLine>,
}

impl NWalk<'_> {
    fn line(&mut self, chain: &str, r: &NftRule, why: String) {
        self.trace.push(TraceLine {
            table: "nft".into(),
            chain: chain.to_string(),
            rule: render_rule(r),
            why,
        });
    }

    fn affinity_fresh(&self, set: &str) -> Option<i64> {
        let t = self.rs.sets.get(set)?.timeout_s?;
        let seen = *self.state.recent.get(&(set.to_string(), self.pkt.src))?;
        (self.now_ms - seen <= i64::from(t) * 1000).then_some(self.now_ms - seen)
    }

    fn cond(&mut self, e: &NftExpr) -> bool {
        match e {
            NftExpr::Daddr(c, neg) => c.contains(self.pkt.dst) != *neg,
            NftExpr::Saddr(c, neg) => c.contains(self.pkt.src) != *neg,
            NftExpr::DaddrInSet(s) => self
                .rs
                .sets
                .get(s)
                .is_some_and(|s| s.elements.contains(&NftKey::Addr(self.pkt.dst))),
            NftExpr::SaddrInSet(s) => self.affinity_fresh(s).is_some(),
            NftExpr::Dport(p, n) => self.pkt.proto == *p && self.pkt.dport == *n,
            NftExpr::FibSaddrLocal => self.rt.is_local(self.pkt.src),
            NftExpr::MarkClear(m) => self.pkt.mark & m == 0,
            NftExpr::CtNew => self.pkt.ctstate == CtState::New,
        }
    }

    /// Applies a verdict; `Some` ends the whole walk, `None` continues (after a jump) or
    /// ends this chain (`Err(())` = return to the caller's caller for goto/return).
    fn verdict(&mut self, v: &NftVerdict, depth: usize) -> Result<Option<End>, ()> {
        match v {
            NftVerdict::Jump(c) => Ok(self.chain(c, depth + 1)),
            NftVerdict::Goto(c) => match self.chain(c, depth + 1) {
                Some(e) => Ok(Some(e)),
                None => Err(()),
            },
            NftVerdict::Return => Err(()),
            NftVerdict::Drop => Ok(Some(End::Drop)),
            NftVerdict::Accept => Ok(Some(End::Accept)),
        }
    }

    fn chain(&mut self, name: &str, depth: usize) -> Option<End> {
        if depth > 64 {
            return Some(End::Drop);
        }
        let rs = self.rs;
        let ch = rs.chains.get(name)?;
        for r in &ch.rules {
            if !r.exprs.iter().all(|e| self.cond(e)) {
                continue;
            }
            let v = match &r.stmt {
                NftStmt::Verdict(v) => {
                    if let NftVerdict::Goto(c) = v {
                        if let Some([NftExpr::SaddrInSet(s)]) = Some(r.exprs.as_slice()) {
                            let ago = self.affinity_fresh(s).unwrap_or(0);
                            self.line(
                                name,
                                r,
                                format!(
                                    "affinity hit: {} seen {ago} ms ago; goto {c}",
                                    self.pkt.src
                                ),
                            );
                        } else {
                            self.line(name, r, v.render());
                        }
                    } else {
                        self.line(name, r, v.render());
                    }
                    v.clone()
                }
                NftStmt::Reject => {
                    self.line(name, r, "reject (icmp port unreachable)".into());
                    return Some(End::Reject);
                }
                NftStmt::Dnat(_, ip, port) => {
                    self.line(name, r, format!("DNAT to {ip}:{port}"));
                    return Some(End::Dnat(Dnat {
                        ip: *ip,
                        port: *port,
                    }));
                }
                NftStmt::MarkOr(m) => {
                    self.pkt.mark |= m;
                    self.line(name, r, format!("mark now 0x{:x}", self.pkt.mark));
                    continue;
                }
                NftStmt::MarkXor(m) => {
                    self.pkt.mark ^= m;
                    self.line(name, r, format!("mark now 0x{:x}", self.pkt.mark));
                    continue;
                }
                NftStmt::Masquerade => {
                    self.line(name, r, "masquerade".into());
                    return Some(End::Masquerade);
                }
                NftStmt::UpdateSaddr(set) => {
                    self.state
                        .recent
                        .insert((set.clone(), self.pkt.src), self.now_ms);
                    self.line(name, r, format!("affinity: remember {}", self.pkt.src));
                    continue;
                }
                NftStmt::VmapAddrProtoPort(m) | NftStmt::VmapProtoPort(m) => {
                    let key = if matches!(r.stmt, NftStmt::VmapAddrProtoPort(_)) {
                        NftKey::AddrProtoPort(self.pkt.dst, self.pkt.proto, self.pkt.dport)
                    } else {
                        NftKey::ProtoPort(self.pkt.proto, self.pkt.dport)
                    };
                    let Some((v, _)) = rs.maps.get(m).and_then(|m| m.elements.get(&key)) else {
                        continue;
                    };
                    self.line(name, r, format!("{} : {}", key.render(), v.render()));
                    v.clone()
                }
                NftStmt::Numgen(cs) => {
                    if cs.is_empty() {
                        continue;
                    }
                    let d = (self.draw)();
                    let i = ((d.clamp(0.0, 1.0) * cs.len() as f64) as usize).min(cs.len() - 1);
                    self.line(
                        name,
                        r,
                        format!("numgen draw {d:.6} → {i} of {}; goto {}", cs.len(), cs[i]),
                    );
                    NftVerdict::Goto(cs[i].clone())
                }
            };
            match self.verdict(&v, depth) {
                Ok(Some(e)) => return Some(e),
                Ok(None) => {}
                Err(()) => return None,
            }
        }
        ch.base.as_ref().map(|_| End::Accept)
    }
}

/// Runs the base chains of `hook` (nat before filter where both exist at a hook, by priority:
/// filter -110 < nat dstnat -100 at output; the filter chains see the post-DNAT packet in
/// forward/input).
pub(crate) fn evaluate(
    rt: &RuleTable,
    hook: Hook,
    pkt: &mut PacketMeta,
    state: &mut ProxyState,
    draw: &mut dyn FnMut() -> f64,
    now_ms: i64,
    v: &mut Verdict,
) {
    let Some(rs) = rt.nft.as_ref() else {
        return;
    };
    let chains: &[&str] = match hook {
        Hook::Prerouting => &["nat-prerouting"],
        Hook::Input => &["filter-input"],
        Hook::Forward => &["filter-forward"],
        Hook::Output => &["filter-output", "nat-output"],
        Hook::Postrouting => &["nat-postrouting"],
    };
    for c in chains {
        let mut w = NWalk {
            rt,
            rs,
            pkt: &mut *pkt,
            state: &mut *state,
            draw: &mut *draw,
            now_ms,
            trace: &mut v.trace,
        };
        match w.chain(c, 0) {
            Some(End::Drop) => v.drop = true,
            Some(End::Reject) => v.reject = true,
            Some(End::Masquerade) => v.masquerade = true,
            Some(End::Dnat(d)) => {
                v.nat = Some(d);
                pkt.dst = d.ip;
                pkt.dport = d.port;
                pkt.ct_dnat = true;
            }
            Some(End::Accept) | None => {}
        }
        if v.drop || v.reject {
            return;
        }
    }
}
