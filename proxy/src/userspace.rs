//! The userspace proxier (historical): portals and the nat rules that redirect to them.
//!
//! Layer: proxier (pure). Guarantee: every service port gets a portal with a proxy port that
//! depends only on the service-port name (hash-probed in sorted order, so adding a service
//! rarely moves another's port), and the chains of pre-1.26 kube-proxy (§5.2):
//! `KUBE-PORTALS-CONTAINER`, `KUBE-PORTALS-HOST`, `KUBE-NODEPORT-CONTAINER`,
//! `KUBE-NODEPORT-HOST`, filter `KUBE-NODEPORT-NON-LOCAL`. Backend choice is round robin over
//! the sorted endpoint list (upstream shuffled it on change; we keep it sorted to stay
//! deterministic without spending RNG draws).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::eval::ProxyState;
use crate::input::SvcPort;
use crate::model::*;

const PORT_LO: u16 = 32768;
const PORT_SPAN: u32 = 28232; // 32768..=60999, Linux's default ephemeral range.

fn first_port(spn: &str, p: Proto) -> u16 {
    let d = Sha256::digest(format!("{spn}/{}", p.lower()).as_bytes());
    let v = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % PORT_SPAN;
    PORT_LO + v as u16
}

pub(crate) fn build(ports: &[SvcPort], node_ips: &[Ipv4Addr]) -> (Table, Table, Vec<Portal>) {
    let mut nat = Table::new("nat");
    let mut filter = Table::new("filter");
    let node_ip = node_ips.first().copied().unwrap_or(Ipv4Addr::LOCALHOST);
    let before = "handle ClusterIPs; NOTE: this must be before the NodePort rules";
    let last = "handle service NodePorts; NOTE: this must be the last rule in the chain";
    let local = Match::AddrTypeLocal {
        dir: AddrDir::Dst,
        negate: false,
    };
    nat.append(
        "PREROUTING",
        Rule::builder()
            .comment(before)
            .jump("KUBE-PORTALS-CONTAINER"),
    );
    nat.append(
        "PREROUTING",
        Rule::builder()
            .m(local.clone())
            .comment(last)
            .jump("KUBE-NODEPORT-CONTAINER"),
    );
    nat.append(
        "OUTPUT",
        Rule::builder().comment(before).jump("KUBE-PORTALS-HOST"),
    );
    nat.append(
        "OUTPUT",
        Rule::builder()
            .m(local)
            .comment(last)
            .jump("KUBE-NODEPORT-HOST"),
    );
    filter.append(
        "INPUT",
        Rule::builder()
            .comment("Ensure that non-local NodePort traffic can flow")
            .jump("KUBE-NODEPORT-NON-LOCAL"),
    );
    for c in [
        "KUBE-PORTALS-CONTAINER",
        "KUBE-PORTALS-HOST",
        "KUBE-NODEPORT-CONTAINER",
        "KUBE-NODEPORT-HOST",
    ] {
        nat.chain(c);
    }
    filter.chain("KUBE-NODEPORT-NON-LOCAL");

    let mut used = BTreeSet::new();
    let mut portals = Vec::new();
    for sp in ports {
        let mut port = first_port(&sp.spn, sp.proto);
        while !used.insert(port) || sp.node_port == Some(port) {
            port = if port >= PORT_LO + (PORT_SPAN - 1) as u16 {
                PORT_LO
            } else {
                port + 1
            };
        }
        let cat = sp.categorize();
        let spn = sp.spn.as_str();
        let ip = Cidr::host(sp.cluster_ip);
        // `-m comment` before `-m tcp --dport`: the order of the old proxier's
        // `iptablesCommonPortalArgs`, which iptables-save keeps.
        nat.append(
            "KUBE-PORTALS-CONTAINER",
            Rule::builder()
                .dst(ip)
                .comment(spn)
                .proto(sp.proto, Some(sp.port))
                .target(Target::Redirect { port }),
        );
        nat.append(
            "KUBE-PORTALS-HOST",
            Rule::builder()
                .dst(ip)
                .comment(spn)
                .proto(sp.proto, Some(sp.port))
                .target(Target::Dnat { ip: node_ip, port }),
        );
        for eip in sp.external_ips.iter().chain(sp.lb_ips.iter()) {
            let e = Cidr::host(*eip);
            nat.append(
                "KUBE-PORTALS-CONTAINER",
                Rule::builder()
                    .dst(e)
                    .comment(spn)
                    .proto(sp.proto, Some(sp.port))
                    .target(Target::Redirect { port }),
            );
            nat.append(
                "KUBE-PORTALS-HOST",
                Rule::builder()
                    .dst(e)
                    .comment(spn)
                    .proto(sp.proto, Some(sp.port))
                    .target(Target::Dnat { ip: node_ip, port }),
            );
        }
        if let Some(np) = sp.node_port {
            nat.append(
                "KUBE-NODEPORT-CONTAINER",
                Rule::builder()
                    .comment(spn)
                    .proto(sp.proto, Some(np))
                    .target(Target::Redirect { port }),
            );
            nat.append(
                "KUBE-NODEPORT-HOST",
                Rule::builder()
                    .comment(spn)
                    .proto(sp.proto, Some(np))
                    .target(Target::Dnat { ip: node_ip, port }),
            );
            filter.append(
                "KUBE-NODEPORT-NON-LOCAL",
                Rule::builder()
                    .comment(spn)
                    .proto(sp.proto, Some(np))
                    .target(Target::Accept),
            );
        }
        portals.push(Portal {
            service: sp.spn.clone(),
            proto: sp.proto,
            cluster_ip: sp.cluster_ip,
            port: sp.port,
            node_port: sp.node_port,
            proxy_port: port,
            endpoints: cat.cluster.iter().map(|e| (e.ip, e.port)).collect(),
            affinity_s: sp.affinity_s,
        });
    }
    (filter, nat, portals)
}

/// The userspace proxy's backend choice for a connection accepted on `proxy_port` from
/// `client`: ClientIP affinity first (if configured and fresh), else round robin. Returns the
/// backend and a reason for the trace; `None` if the port is not a portal or has no backends
/// (the proxy then closes the connection).
pub fn userspace_pick(
    rt: &RuleTable,
    proto: Proto,
    proxy_port: u16,
    client: Ipv4Addr,
    state: &mut ProxyState,
    now_ms: i64,
) -> Option<((Ipv4Addr, u16), String)> {
    let portal = rt
        .portals
        .iter()
        .find(|p| p.proxy_port == proxy_port && p.proto == proto)?;
    if portal.endpoints.is_empty() {
        return None;
    }
    if let Some(ttl) = portal.affinity_s {
        if let Some((ep, t)) = state.userspace_affinity.get(&(proxy_port, client)).copied() {
            if now_ms - t <= i64::from(ttl) * 1000 && portal.endpoints.contains(&ep) {
                state
                    .userspace_affinity
                    .insert((proxy_port, client), (ep, now_ms));
                return Some((ep, format!("affinity hit for {client}")));
            }
        }
    }
    let n = portal.endpoints.len();
    let idx = state.userspace_rr.get(&proxy_port).copied().unwrap_or(0) % n;
    state.userspace_rr.insert(proxy_port, (idx + 1) % n);
    let ep = portal.endpoints[idx];
    if portal.affinity_s.is_some() {
        state
            .userspace_affinity
            .insert((proxy_port, client), (ep, now_ms));
    }
    Some((ep, format!("round robin index {idx} of {n}")))
}
