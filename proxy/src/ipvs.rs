//! The ipvs proxier: virtual servers, kube-ipvs0 addresses, ipsets and the iptables rules
//! ipvs mode still needs; plus the `ipvsadm -Ln` and `ipvsadm -Lnc` views.
//!
//! Layer: proxier + view (pure). Guarantee: one virtual server per (IP, port, protocol) with
//! `rr` and weight-1 Masq real servers (§4.1–4.2), `persistent <timeout>` for ClientIP
//! affinity, and `ipvsadm -Ln` byte-exact (§4.5–4.6, trailing spaces included). The
//! iptables/ipset part follows upstream's structure (§4.3) but is simplified: no
//! `physdev` match, no source-range firewall sets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::eval::VsKey;
use crate::input::SvcPort;
use crate::iptables::{
    forward_rules, masquerade_rules, KUBE_FORWARD, KUBE_MARK_MASQ, KUBE_POSTROUTING,
    KUBE_PROXY_FIREWALL, KUBE_SERVICES,
};
use crate::model::*;

const KUBE_NODE_PORT: &str = "KUBE-NODE-PORT";
const KUBE_LOAD_BALANCER: &str = "KUBE-LOAD-BALANCER";
const KUBE_IPVS_FILTER: &str = "KUBE-IPVS-FILTER";
const KUBE_IPVS_OUT_FILTER: &str = "KUBE-IPVS-OUT-FILTER";
const KUBE_SOURCE_RANGES_FIREWALL: &str = "KUBE-SOURCE-RANGES-FIREWALL";

/// What [`build`] produces.
pub(crate) struct IpvsOut {
    pub filter: Table,
    pub nat: Table,
    pub ipsets: BTreeMap<String, IpSet>,
    pub virtual_servers: Vec<VirtualServer>,
    pub ipvs_addrs: Vec<Ipv4Addr>,
}

fn set(kind: &str, comment: &str) -> IpSet {
    IpSet {
        kind: kind.to_string(),
        comment: comment.to_string(),
        entries: BTreeSet::new(),
    }
}

fn ipport(ip: Ipv4Addr, p: Proto, port: u16) -> String {
    format!("{ip},{}:{port}", p.lower())
}

pub(crate) fn build(
    ports: &[SvcPort],
    cluster_cidr: Cidr,
    masquerade_all: bool,
    node_ips: &[Ipv4Addr],
) -> IpvsOut {
    let mut sets: BTreeMap<String, IpSet> = BTreeMap::new();
    for (name, kind, comment) in [
        (
            "KUBE-CLUSTER-IP",
            "hash:ip,port",
            "Kubernetes service cluster ip + port for masquerade purpose",
        ),
        (
            "KUBE-LOOP-BACK",
            "hash:ip,port,ip",
            "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose",
        ),
        (
            "KUBE-EXTERNAL-IP",
            "hash:ip,port",
            "Kubernetes service external ip + port for masquerade and filter purpose",
        ),
        (
            "KUBE-EXTERNAL-IP-LOCAL",
            "hash:ip,port",
            "Kubernetes service external ip + port with externalTrafficPolicy=local",
        ),
        (
            "KUBE-LOAD-BALANCER",
            "hash:ip,port",
            "Kubernetes service lb portal",
        ),
        (
            "KUBE-LOAD-BALANCER-LOCAL",
            "hash:ip,port",
            "Kubernetes service load balancer ip + port with externalTrafficPolicy=local",
        ),
        (
            "KUBE-NODE-PORT-TCP",
            "bitmap:port",
            "Kubernetes nodeport TCP port for masquerade purpose",
        ),
        (
            "KUBE-NODE-PORT-LOCAL-TCP",
            "bitmap:port",
            "Kubernetes nodeport TCP port with externalTrafficPolicy=local",
        ),
        (
            "KUBE-NODE-PORT-UDP",
            "bitmap:port",
            "Kubernetes nodeport UDP port for masquerade purpose",
        ),
        (
            "KUBE-NODE-PORT-LOCAL-UDP",
            "bitmap:port",
            "Kubernetes nodeport UDP port with externalTrafficPolicy=local",
        ),
        (
            "KUBE-HEALTH-CHECK-NODE-PORT",
            "bitmap:port",
            "Kubernetes health check node port",
        ),
        ("KUBE-IPVS-IPS", "hash:ip", "Kubernetes service IPs"),
    ] {
        sets.insert(name.to_string(), set(kind, comment));
    }
    let mut add = |name: &str, entry: String| {
        if let Some(s) = sets.get_mut(name) {
            s.entries.insert(entry);
        }
    };

    let mut vss = Vec::new();
    let mut addrs = BTreeSet::new();
    for sp in ports {
        let cat = sp.categorize();
        let internal = if sp.int_local {
            &cat.local
        } else {
            &cat.cluster
        };
        let external = if sp.ext_local {
            &cat.local
        } else {
            &cat.cluster
        };
        let rs = |eps: &[crate::input::Endpoint]| {
            let mut v: Vec<RealServer> = eps
                .iter()
                .map(|e| RealServer {
                    ip: e.ip,
                    port: e.port,
                    weight: 1,
                })
                .collect();
            v.sort();
            v
        };
        let vs = |vip: Ipv4Addr, port: u16, eps: &[crate::input::Endpoint]| VirtualServer {
            proto: sp.proto,
            vip,
            port,
            scheduler: "rr".to_string(),
            persistent_s: sp.affinity_s,
            real_servers: rs(eps),
            service: sp.spn.clone(),
        };
        vss.push(vs(sp.cluster_ip, sp.port, internal));
        addrs.insert(sp.cluster_ip);
        add("KUBE-CLUSTER-IP", ipport(sp.cluster_ip, sp.proto, sp.port));
        for e in cat.all_reachable.iter().filter(|e| e.local) {
            add(
                "KUBE-LOOP-BACK",
                format!("{},{}:{},{}", e.ip, sp.proto.lower(), e.port, e.ip),
            );
        }
        for ip in &sp.external_ips {
            vss.push(vs(*ip, sp.port, external));
            addrs.insert(*ip);
            let set = if sp.ext_local {
                "KUBE-EXTERNAL-IP-LOCAL"
            } else {
                "KUBE-EXTERNAL-IP"
            };
            add(set, ipport(*ip, sp.proto, sp.port));
        }
        for ip in &sp.lb_ips {
            vss.push(vs(*ip, sp.port, external));
            addrs.insert(*ip);
            add("KUBE-LOAD-BALANCER", ipport(*ip, sp.proto, sp.port));
            if sp.ext_local {
                add("KUBE-LOAD-BALANCER-LOCAL", ipport(*ip, sp.proto, sp.port));
            }
        }
        if let Some(np) = sp.node_port {
            for ip in node_ips {
                vss.push(vs(*ip, np, external));
            }
            let base = match sp.proto {
                Proto::Tcp => "TCP",
                Proto::Udp => "UDP",
                Proto::Sctp => "SCTP",
            };
            add(&format!("KUBE-NODE-PORT-{base}"), np.to_string());
            if sp.ext_local {
                add(&format!("KUBE-NODE-PORT-LOCAL-{base}"), np.to_string());
            }
        }
        if let Some(hc) = sp.health_check_node_port {
            add("KUBE-HEALTH-CHECK-NODE-PORT", hc.to_string());
        }
    }
    for a in &addrs {
        add("KUBE-IPVS-IPS", a.to_string());
    }
    vss.sort_by(|a, b| {
        (a.proto.number(), u32::from(a.vip), a.port).cmp(&(
            b.proto.number(),
            u32::from(b.vip),
            b.port,
        ))
    });
    vss.dedup_by(|a, b| a.proto == b.proto && a.vip == b.vip && a.port == b.port);

    let (filter, nat) = tables(&sets, cluster_cidr, masquerade_all);
    IpvsOut {
        filter,
        nat,
        ipsets: sets,
        virtual_servers: vss,
        ipvs_addrs: addrs.into_iter().collect(),
    }
}

fn set_match(name: &str, dirs: &[SetDir]) -> Match {
    Match::Set {
        name: name.to_string(),
        dirs: dirs.to_vec(),
        negate: false,
    }
}

fn tables(
    sets: &BTreeMap<String, IpSet>,
    cluster_cidr: Cidr,
    masquerade_all: bool,
) -> (Table, Table) {
    use SetDir::{Dst, Src};
    let nonempty = |n: &str| sets.get(n).is_some_and(|s| !s.entries.is_empty());
    let mut nat = Table::new("nat");
    let mut filter = Table::new("filter");
    // Jump chains (inserted with -I, listed in reverse of upstream's list).
    nat.append(
        "PREROUTING",
        Rule::builder()
            .comment("kubernetes service portals")
            .jump(KUBE_SERVICES),
    );
    nat.append(
        "OUTPUT",
        Rule::builder()
            .comment("kubernetes service portals")
            .jump(KUBE_SERVICES),
    );
    nat.append(
        "POSTROUTING",
        Rule::builder()
            .comment("kubernetes postrouting rules")
            .jump(KUBE_POSTROUTING),
    );
    filter.append(
        "INPUT",
        Rule::builder()
            .comment("kubernetes ipvs access filter")
            .jump(KUBE_IPVS_FILTER),
    );
    filter.append(
        "INPUT",
        Rule::builder()
            .comment("kube-proxy firewall rules")
            .jump(KUBE_PROXY_FIREWALL),
    );
    filter.append(
        "INPUT",
        Rule::builder()
            .comment("kubernetes health check rules")
            .jump(KUBE_NODE_PORT),
    );
    filter.append(
        "FORWARD",
        Rule::builder()
            .comment("kube-proxy firewall rules")
            .jump(KUBE_PROXY_FIREWALL),
    );
    filter.append(
        "FORWARD",
        Rule::builder()
            .comment("kubernetes forwarding rules")
            .jump(KUBE_FORWARD),
    );
    filter.append(
        "OUTPUT",
        Rule::builder()
            .comment("kubernetes ipvs access filter")
            .jump(KUBE_IPVS_OUT_FILTER),
    );
    for c in [
        KUBE_SERVICES,
        KUBE_POSTROUTING,
        KUBE_MARK_MASQ,
        KUBE_NODE_PORT,
        KUBE_LOAD_BALANCER,
    ] {
        nat.chain(c);
    }
    for c in [
        KUBE_FORWARD,
        KUBE_NODE_PORT,
        KUBE_PROXY_FIREWALL,
        KUBE_SOURCE_RANGES_FIREWALL,
        KUBE_IPVS_FILTER,
        KUBE_IPVS_OUT_FILTER,
    ] {
        filter.chain(c);
    }

    // nat KUBE-POSTROUTING: hairpin first, then the mark-driven masquerade.
    nat.append(
        KUBE_POSTROUTING,
        Rule::builder()
            .comment("Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose")
            .m(set_match("KUBE-LOOP-BACK", &[Dst, Dst, Src]))
            .target(Target::Masquerade {
                random_fully: false,
            }),
    );
    masquerade_rules(&mut nat);

    // nat KUBE-SERVICES.
    if nonempty("KUBE-LOAD-BALANCER") {
        nat.append(
            KUBE_SERVICES,
            Rule::builder()
                .comment("Kubernetes service lb portal")
                .m(set_match("KUBE-LOAD-BALANCER", &[Dst, Dst]))
                .jump(KUBE_LOAD_BALANCER),
        );
        if nonempty("KUBE-LOAD-BALANCER-LOCAL") {
            nat.append(
                KUBE_LOAD_BALANCER,
                Rule::builder()
                    .comment("Kubernetes service load balancer ip + port with externalTrafficPolicy=local")
                    .m(set_match("KUBE-LOAD-BALANCER-LOCAL", &[Dst, Dst]))
                    .target(Target::Return),
            );
        }
        nat.append(KUBE_LOAD_BALANCER, Rule::builder().jump(KUBE_MARK_MASQ));
    }
    let cip = Rule::builder()
        .comment("Kubernetes service cluster ip + port for masquerade purpose")
        .m(set_match("KUBE-CLUSTER-IP", &[Dst, Dst]));
    if masquerade_all {
        nat.append(KUBE_SERVICES, cip.jump(KUBE_MARK_MASQ));
    } else {
        nat.append(
            KUBE_SERVICES,
            cip.not_src(cluster_cidr).jump(KUBE_MARK_MASQ),
        );
    }
    if nonempty("KUBE-EXTERNAL-IP") {
        nat.append(
            KUBE_SERVICES,
            Rule::builder()
                .comment("Kubernetes service external ip + port for masquerade and filter purpose")
                .m(set_match("KUBE-EXTERNAL-IP", &[Dst, Dst]))
                .jump(KUBE_MARK_MASQ),
        );
    }
    nat.append(
        KUBE_SERVICES,
        Rule::builder()
            .m(Match::AddrTypeLocal {
                dir: AddrDir::Dst,
                negate: false,
            })
            .jump(KUBE_NODE_PORT),
    );
    nat.append(
        KUBE_SERVICES,
        Rule::builder()
            .m(set_match("KUBE-CLUSTER-IP", &[Dst, Dst]))
            .target(Target::Accept),
    );
    for (p, base) in [(Proto::Tcp, "TCP"), (Proto::Udp, "UDP")] {
        let local = format!("KUBE-NODE-PORT-LOCAL-{base}");
        if nonempty(&local) {
            nat.append(
                KUBE_NODE_PORT,
                Rule::builder()
                    .proto_only(p)
                    .comment(format!(
                        "Kubernetes nodeport {base} port with externalTrafficPolicy=local"
                    ))
                    .m(set_match(&local, &[Dst]))
                    .target(Target::Return),
            );
        }
        let all = format!("KUBE-NODE-PORT-{base}");
        if nonempty(&all) {
            nat.append(
                KUBE_NODE_PORT,
                Rule::builder()
                    .proto_only(p)
                    .comment(format!(
                        "Kubernetes nodeport {base} port for masquerade purpose"
                    ))
                    .m(set_match(&all, &[Dst]))
                    .jump(KUBE_MARK_MASQ),
            );
        }
    }

    // filter.
    forward_rules(&mut filter);
    filter.append(
        KUBE_NODE_PORT,
        Rule::builder()
            .comment("Kubernetes health check node port")
            .m(set_match("KUBE-HEALTH-CHECK-NODE-PORT", &[Dst]))
            .target(Target::Accept),
    );
    for (name, dirs) in [
        ("KUBE-LOAD-BALANCER", &[Dst, Dst][..]),
        ("KUBE-CLUSTER-IP", &[Dst, Dst][..]),
        ("KUBE-EXTERNAL-IP", &[Dst, Dst][..]),
        ("KUBE-EXTERNAL-IP-LOCAL", &[Dst, Dst][..]),
        ("KUBE-HEALTH-CHECK-NODE-PORT", &[Dst][..]),
    ] {
        filter.append(
            KUBE_IPVS_FILTER,
            Rule::builder()
                .m(set_match(name, dirs))
                .target(Target::Return),
        );
    }
    filter.append(
        KUBE_IPVS_FILTER,
        Rule::builder()
            .ctstate(&[CtState::New], false)
            .m(set_match("KUBE-IPVS-IPS", &[Dst]))
            .target(Target::Reject),
    );
    (filter, nat)
}

/// The service line of `ipvsadm -Ln` (`TCP  10.96.0.1:443 rr [persistent N]`).
pub fn service_line(vs: &VirtualServer) -> String {
    let mut name = format!("{:<4} {}:{}", vs.proto.upper(), vs.vip, vs.port);
    name.truncate(33);
    let mut out = format!("{name} {}", vs.scheduler);
    if let Some(t) = vs.persistent_s {
        let _ = write!(out, " persistent {t}");
    }
    out
}

/// One connection in a node's IPVS connection table: the client, the virtual server it was
/// scheduled on and the real server it went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpvsConn {
    pub proto: Proto,
    pub client: Ipv4Addr,
    pub cport: u16,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub rip: Ipv4Addr,
    pub rport: u16,
    pub state: IpvsConnState,
    /// Seconds before the entry expires.
    pub expires_s: i64,
}

/// A connection's state, as `ipvsadm -Lnc` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpvsConnState {
    Established,
    TimeWait,
    /// Every UDP connection (IPVS keeps no states for UDP).
    Udp,
}

impl IpvsConnState {
    pub fn name(self) -> &'static str {
        match self {
            IpvsConnState::Established => "ESTABLISHED",
            IpvsConnState::TimeWait => "TIME_WAIT",
            IpvsConnState::Udp => "UDP",
        }
    }

    /// Counted under ActiveConn. Everything else is InActConn: the kernel starts each
    /// connection inactive and only an established TCP (or SCTP) one turns active
    /// (`ip_vs_bind_dest`, `set_tcp_state`), so UDP flows are always inactive.
    pub fn is_active(self) -> bool {
        self == IpvsConnState::Established
    }
}

/// `ipvsadm -Ln`: header, then services sorted by protocol number, address, port, each with
/// its real servers sorted by address and port (§4.5–4.6), with their ActiveConn and
/// InActConn counted from `conns` (persistence templates are not connections and are not
/// counted, as in the kernel).
pub fn ipvsadm_ln(rt: &RuleTable, conns: &[IpvsConn]) -> String {
    // (virtual server, real server address, port) → (active, inactive).
    let mut counts: BTreeMap<(VsKey, Ipv4Addr, u16), (u32, u32)> = BTreeMap::new();
    for c in conns {
        let n = counts
            .entry(((c.proto, c.vip, c.vport), c.rip, c.rport))
            .or_default();
        if c.state.is_active() {
            n.0 += 1;
        } else {
            n.1 += 1;
        }
    }
    let mut out = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    let mut vss: Vec<&VirtualServer> = rt.virtual_servers.iter().collect();
    vss.sort_by_key(|vs| (vs.proto.number(), u32::from(vs.vip), vs.port));
    for vs in vss {
        out.push_str(&service_line(vs));
        out.push('\n');
        let mut rss: Vec<&RealServer> = vs.real_servers.iter().collect();
        rss.sort_by_key(|r| (u32::from(r.ip), r.port));
        for r in rss {
            let addr = format!("{}:{}", r.ip, r.port);
            let (active, inactive) = counts
                .get(&((vs.proto, vs.vip, vs.port), r.ip, r.port))
                .copied()
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  -> {addr:<28} {:<7} {:<6} {active:<10} {inactive:<10}",
                "Masq", r.weight
            );
        }
    }
    out
}

/// `ipvsadm -Lnc`: the connection table, one line per connection, in `conns`' order (the
/// kernel lists its hash table's order; callers pass a sorted one).
pub fn ipvsadm_lnc(conns: &[IpvsConn]) -> String {
    let mut out = format!(
        "IPVS connection entries\npro expire {:<11} {:<18} {:<18} destination\n",
        "state", "source", "virtual"
    );
    for c in conns {
        let left = c.expires_s.max(0);
        let expire = format!("{:02}:{:02}", left / 60, left % 60);
        let source = format!("{}:{}", c.client, c.cport);
        let virt = format!("{}:{}", c.vip, c.vport);
        let _ = writeln!(
            out,
            "{:<3} {expire:<6} {:<11} {source:<18} {virt:<18} {}:{}",
            c.proto.upper(),
            c.state.name(),
            c.rip,
            c.rport,
        );
    }
    out
}
