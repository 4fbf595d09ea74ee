//! The iptables proxier: service ports → nat and filter tables.
//!
//! Layer: proxier (pure). Guarantee: the rules, their order and their chain names are those
//! kube-proxy's iptables proxier (v1.28+) writes for the same Services and EndpointSlices
//! (reference §3); service ports are emitted in sorted `ns/name:port` order where kube-proxy
//! iterates a Go map. Optional upstream extras that depend on kernel features (nfacct
//! counters, the `-d 127.0.0.0/8` nfacct NodePort variant) are left out, as kube-proxy does
//! when the kernel lacks them.

use crate::hash::{endpoint_chain_name, port_proto_hash};
use crate::input::{Categorized, SvcPort};
use crate::model::*;

pub(crate) const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub(crate) const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub(crate) const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub(crate) const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
pub(crate) const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub(crate) const KUBE_FORWARD: &str = "KUBE-FORWARD";
pub(crate) const KUBE_PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";
pub(crate) const KUBE_FIREWALL: &str = "KUBE-FIREWALL";
pub(crate) const KUBE_PROXY_CANARY: &str = "KUBE-PROXY-CANARY";

fn localhost() -> Cidr {
    Cidr {
        addr: std::net::Ipv4Addr::new(127, 0, 0, 0),
        prefix: 8,
    }
}

/// The jump rules kube-proxy inserts (with `-I`, so the last one listed upstream ends up
/// first) into the built-in chains, and the fixed chains (§3.2, §3.13, §3.14).
fn base_rules(filter: &mut Table, nat: &mut Table) {
    let new = [CtState::New];
    // filter INPUT: inserted EXTERNAL-SERVICES, NODEPORTS, PROXY-FIREWALL → listed reversed.
    filter.append(
        "INPUT",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes load balancer firewall")
            .jump(KUBE_PROXY_FIREWALL),
    );
    filter.append(
        "INPUT",
        Rule::builder()
            .comment("kubernetes health check service ports")
            .jump(KUBE_NODEPORTS),
    );
    filter.append(
        "INPUT",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes externally-visible service portals")
            .jump(KUBE_EXTERNAL_SERVICES),
    );
    filter.append("INPUT", Rule::builder().jump(KUBE_FIREWALL));
    // filter FORWARD: inserted EXTERNAL-SERVICES, SERVICES, FORWARD, PROXY-FIREWALL.
    filter.append(
        "FORWARD",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes load balancer firewall")
            .jump(KUBE_PROXY_FIREWALL),
    );
    filter.append(
        "FORWARD",
        Rule::builder()
            .comment("kubernetes forwarding rules")
            .jump(KUBE_FORWARD),
    );
    filter.append(
        "FORWARD",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes service portals")
            .jump(KUBE_SERVICES),
    );
    filter.append(
        "FORWARD",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes externally-visible service portals")
            .jump(KUBE_EXTERNAL_SERVICES),
    );
    // filter OUTPUT: inserted SERVICES, PROXY-FIREWALL.
    filter.append(
        "OUTPUT",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes load balancer firewall")
            .jump(KUBE_PROXY_FIREWALL),
    );
    filter.append(
        "OUTPUT",
        Rule::builder()
            .ctstate(&new, false)
            .comment("kubernetes service portals")
            .jump(KUBE_SERVICES),
    );
    filter.append("OUTPUT", Rule::builder().jump(KUBE_FIREWALL));

    for c in [
        KUBE_EXTERNAL_SERVICES,
        KUBE_FORWARD,
        KUBE_NODEPORTS,
        KUBE_PROXY_CANARY,
        KUBE_PROXY_FIREWALL,
        KUBE_SERVICES,
        KUBE_FIREWALL,
    ] {
        filter.chain(c);
    }
    // KUBE-FIREWALL: the localnet guard that makes route_localnet (localhost NodePorts) safe.
    filter.append(
        KUBE_FIREWALL,
        Rule::builder()
            .not_src(localhost())
            .dst(localhost())
            .comment("block incoming localnet connections")
            .ctstate(
                &[CtState::Related, CtState::Established, CtState::Dnat],
                true,
            )
            .target(Target::Drop),
    );
    forward_rules(filter);

    // nat
    for c in ["PREROUTING", "OUTPUT"] {
        nat.append(
            c,
            Rule::builder()
                .comment("kubernetes service portals")
                .jump(KUBE_SERVICES),
        );
    }
    nat.append(
        "POSTROUTING",
        Rule::builder()
            .comment("kubernetes postrouting rules")
            .jump(KUBE_POSTROUTING),
    );
    for c in [
        KUBE_MARK_MASQ,
        KUBE_NODEPORTS,
        KUBE_POSTROUTING,
        KUBE_PROXY_CANARY,
        KUBE_SERVICES,
    ] {
        nat.chain(c);
    }
    masquerade_rules(nat);
}

/// KUBE-POSTROUTING and KUBE-MARK-MASQ (§3.13); shared with ipvs mode.
/// filter KUBE-FORWARD (§3.14), the same in iptables and ipvs mode.
pub(crate) fn forward_rules(filter: &mut Table) {
    filter.append(
        KUBE_FORWARD,
        Rule::builder()
            .ctstate(&[CtState::Invalid], false)
            .target(Target::Drop),
    );
    filter.append(
        KUBE_FORWARD,
        Rule::builder()
            .comment("kubernetes forwarding rules")
            .m(Match::Mark {
                value: MASQ_MARK,
                mask: MASQ_MARK,
                negate: false,
            })
            .target(Target::Accept),
    );
    filter.append(
        KUBE_FORWARD,
        Rule::builder()
            .comment("kubernetes forwarding conntrack rule")
            .ctstate(&[CtState::Related, CtState::Established], false)
            .target(Target::Accept),
    );
}

pub(crate) fn masquerade_rules(nat: &mut Table) {
    nat.append(
        KUBE_POSTROUTING,
        Rule::builder()
            .m(Match::Mark {
                value: MASQ_MARK,
                mask: MASQ_MARK,
                negate: true,
            })
            .target(Target::Return),
    );
    nat.append(
        KUBE_POSTROUTING,
        Rule::builder().target(Target::Mark {
            value: MASQ_MARK,
            mask: 0,
        }),
    );
    nat.append(
        KUBE_POSTROUTING,
        Rule::builder()
            .comment("kubernetes service traffic requiring SNAT")
            .target(Target::Masquerade { random_fully: true }),
    );
    nat.append(
        KUBE_MARK_MASQ,
        Rule::builder().target(Target::Mark {
            value: MASQ_MARK,
            mask: MASQ_MARK,
        }),
    );
}

/// Builds the iptables-mode tables.
pub(crate) fn build(
    ports: &[SvcPort],
    cluster_cidr: Cidr,
    masquerade_all: bool,
    node_ips: &[std::net::Ipv4Addr],
) -> (Table, Table) {
    let mut filter = Table::new("filter");
    let mut nat = Table::new("nat");
    base_rules(&mut filter, &mut nat);

    // Large cluster mode (§3.12): more than 1000 endpoints in total drops per-endpoint comments.
    let total_endpoints: usize = ports
        .iter()
        .map(|p| p.categorize().all_reachable.len())
        .sum();
    let large = total_endpoints > 1000;

    for sp in ports {
        write_service_port(
            &mut filter,
            &mut nat,
            sp,
            cluster_cidr,
            masquerade_all,
            large,
            node_ips,
        );
    }

    // The NodePorts tail call must be the last rule of KUBE-SERVICES (localhost NodePorts on).
    nat.append(
        KUBE_SERVICES,
        Rule::builder()
            .comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
            .m(Match::AddrTypeLocal {
                dir: AddrDir::Dst,
                negate: false,
            })
            .jump(KUBE_NODEPORTS),
    );
    (filter, nat)
}

fn write_service_port(
    filter: &mut Table,
    nat: &mut Table,
    sp: &SvcPort,
    cluster_cidr: Cidr,
    masquerade_all: bool,
    large: bool,
    node_ips: &[std::net::Ipv4Addr],
) {
    let proto = sp.proto;
    let spn = sp.spn.as_str();
    let hash = port_proto_hash(spn, proto.lower());
    let svc_chain = format!("KUBE-SVC-{hash}");
    let svl_chain = format!("KUBE-SVL-{hash}");
    let ext_chain = format!("KUBE-EXT-{hash}");
    let fw_chain = format!("KUBE-FW-{hash}");

    let Categorized {
        cluster,
        local,
        all_reachable,
        has_any: has_endpoints,
    } = sp.categorize();
    let uses_cluster_policy =
        !cluster.is_empty() && (!sp.int_local || (sp.externally_accessible() && !sp.ext_local));
    let uses_local_policy = !local.is_empty() && (sp.int_local || sp.ext_local);

    let (internal_chain, has_internal) = if sp.int_local {
        (svl_chain.as_str(), has_endpoints && !local.is_empty())
    } else {
        (svc_chain.as_str(), has_endpoints)
    };
    let (external_policy_chain, has_external) = if sp.ext_local {
        (svl_chain.as_str(), has_endpoints && !local.is_empty())
    } else {
        (svc_chain.as_str(), has_endpoints)
    };
    let uses_ext_chain = has_endpoints && sp.externally_accessible();
    let uses_fw_chain = has_endpoints && !sp.lb_ips.is_empty() && !sp.lb_source_ranges.is_empty();
    let lb_chain = if uses_fw_chain {
        fw_chain.as_str()
    } else {
        ext_chain.as_str()
    };

    let (int_filter_target, int_filter_comment, ext_filter_target, ext_filter_comment) =
        if !has_endpoints {
            let c = format!("{spn} has no endpoints");
            (Target::Reject, c.clone(), Target::Reject, c)
        } else {
            let c = format!("{spn} has no local endpoints");
            (Target::Drop, c.clone(), Target::Drop, c)
        };

    // Cluster IP.
    if has_internal {
        nat.append(
            KUBE_SERVICES,
            Rule::builder()
                .comment(format!("{spn} cluster IP"))
                .proto(proto, Some(sp.port))
                .dst(Cidr::host(sp.cluster_ip))
                .jump(internal_chain),
        );
    } else {
        filter.append(
            KUBE_SERVICES,
            Rule::builder()
                .comment(int_filter_comment)
                .proto(proto, Some(sp.port))
                .dst(Cidr::host(sp.cluster_ip))
                .target(int_filter_target),
        );
    }

    // External IPs.
    for ip in &sp.external_ips {
        if has_endpoints {
            nat.append(
                KUBE_SERVICES,
                Rule::builder()
                    .comment(format!("{spn} external IP"))
                    .proto(proto, Some(sp.port))
                    .dst(Cidr::host(*ip))
                    .jump(&ext_chain),
            );
        }
        if !has_external {
            filter.append(
                KUBE_EXTERNAL_SERVICES,
                Rule::builder()
                    .comment(ext_filter_comment.clone())
                    .proto(proto, Some(sp.port))
                    .dst(Cidr::host(*ip))
                    .target(ext_filter_target.clone()),
            );
        }
    }

    // Load balancer ingress IPs.
    for ip in &sp.lb_ips {
        if has_endpoints {
            nat.append(
                KUBE_SERVICES,
                Rule::builder()
                    .comment(format!("{spn} loadbalancer IP"))
                    .proto(proto, Some(sp.port))
                    .dst(Cidr::host(*ip))
                    .jump(lb_chain),
            );
        }
        if uses_fw_chain {
            filter.append(
                KUBE_PROXY_FIREWALL,
                Rule::builder()
                    .comment(format!("{spn} traffic not accepted by {fw_chain}"))
                    .proto(proto, Some(sp.port))
                    .dst(Cidr::host(*ip))
                    .target(Target::Drop),
            );
        }
    }
    if !has_external {
        for ip in &sp.lb_ips {
            filter.append(
                KUBE_EXTERNAL_SERVICES,
                Rule::builder()
                    .comment(ext_filter_comment.clone())
                    .proto(proto, Some(sp.port))
                    .dst(Cidr::host(*ip))
                    .target(ext_filter_target.clone()),
            );
        }
    }

    // NodePort.
    if let Some(np) = sp.node_port {
        if has_endpoints {
            nat.append(
                KUBE_NODEPORTS,
                Rule::builder()
                    .comment(spn)
                    .proto(proto, Some(np))
                    .jump(&ext_chain),
            );
        }
        if !has_external {
            filter.append(
                KUBE_EXTERNAL_SERVICES,
                Rule::builder()
                    .comment(ext_filter_comment.clone())
                    .m(Match::AddrTypeLocal {
                        dir: AddrDir::Dst,
                        negate: false,
                    })
                    .proto(proto, Some(np))
                    .target(ext_filter_target.clone()),
            );
        }
    }

    // Health check node port.
    if let Some(hc) = sp.health_check_node_port {
        filter.append(
            KUBE_NODEPORTS,
            Rule::builder()
                .comment(format!("{spn} health check node port"))
                .proto(Proto::Tcp, Some(hc))
                .target(Target::Accept),
        );
    }

    if !has_endpoints {
        return;
    }

    // KUBE-EXT-X.
    if uses_ext_chain {
        nat.chain(&ext_chain);
        if !sp.ext_local {
            nat.append(
                &ext_chain,
                Rule::builder()
                    .comment(format!(
                        "masquerade traffic for {spn} external destinations"
                    ))
                    .jump(KUBE_MARK_MASQ),
            );
        } else {
            nat.append(
                &ext_chain,
                Rule::builder()
                    .comment(format!("pod traffic for {spn} external destinations"))
                    .src(cluster_cidr)
                    .jump(&svc_chain),
            );
            nat.append(
                &ext_chain,
                Rule::builder()
                    .comment(format!(
                        "masquerade LOCAL traffic for {spn} external destinations"
                    ))
                    .m(Match::AddrTypeLocal {
                        dir: AddrDir::Src,
                        negate: false,
                    })
                    .jump(KUBE_MARK_MASQ),
            );
            nat.append(
                &ext_chain,
                Rule::builder()
                    .comment(format!(
                        "route LOCAL traffic for {spn} external destinations"
                    ))
                    .m(Match::AddrTypeLocal {
                        dir: AddrDir::Src,
                        negate: false,
                    })
                    .jump(&svc_chain),
            );
        }
        if has_external {
            nat.append(&ext_chain, Rule::builder().jump(external_policy_chain));
        }
    }

    // KUBE-FW-X (loadBalancerSourceRanges): allowed sources go on to KUBE-EXT-X; anything
    // else falls through and is dropped by filter KUBE-PROXY-FIREWALL.
    if uses_fw_chain {
        nat.chain(&fw_chain);
        for r in &sp.lb_source_ranges {
            nat.append(
                &fw_chain,
                Rule::builder()
                    .comment(format!("{spn} loadbalancer IP"))
                    .src(*r)
                    .jump(&ext_chain),
            );
        }
        // A VIP-style LB IP is often local to the node: a request from the node to it loops
        // back with the VIP as source, so it is allowed when the node itself is allowed.
        let allow_from_node = sp
            .lb_source_ranges
            .iter()
            .any(|r| node_ips.iter().any(|ip| r.contains(*ip)));
        for ip in sp.lb_ips.iter().filter(|_| allow_from_node) {
            nat.append(
                &fw_chain,
                Rule::builder()
                    .comment(format!("{spn} loadbalancer IP"))
                    .src(Cidr::host(*ip))
                    .jump(&ext_chain),
            );
        }
    }

    // KUBE-SVC-X.
    if uses_cluster_policy {
        nat.chain(&svc_chain);
        let masq = Rule::builder()
            .comment(format!("{spn} cluster IP"))
            .proto(proto, Some(sp.port))
            .dst(Cidr::host(sp.cluster_ip));
        if masquerade_all {
            nat.append(&svc_chain, masq.jump(KUBE_MARK_MASQ));
        } else {
            nat.append(&svc_chain, masq.not_src(cluster_cidr).jump(KUBE_MARK_MASQ));
        }
        endpoint_rules(nat, sp, &svc_chain, &cluster, large);
    }
    // KUBE-SVL-X.
    if uses_local_policy {
        nat.chain(&svl_chain);
        endpoint_rules(nat, sp, &svl_chain, &local, large);
    }

    // KUBE-SEP-Y.
    for ep in &all_reachable {
        let addr = ep.addr();
        let sep = endpoint_chain_name(spn, proto.lower(), &addr);
        nat.chain(&sep);
        let mut b = Rule::builder();
        if !large {
            b = b.comment(spn);
        }
        nat.append(&sep, b.clone().src(Cidr::host(ep.ip)).jump(KUBE_MARK_MASQ));
        if sp.affinity_s.is_some() {
            b = b.m(Match::Recent {
                name: sep.clone(),
                op: RecentOp::Set,
            });
        }
        nat.append(
            &sep,
            b.proto(proto, None).target(Target::Dnat {
                ip: ep.ip,
                port: ep.port,
            }),
        );
    }
}

/// `writeServiceToEndpointRules`: affinity checks, then the statistic cascade (§3.9, §3.19).
fn endpoint_rules(
    nat: &mut Table,
    sp: &SvcPort,
    chain: &str,
    eps: &[crate::input::Endpoint],
    large: bool,
) {
    let spn = sp.spn.as_str();
    let comment = |ep: &crate::input::Endpoint| {
        let b = Rule::builder();
        if large {
            b
        } else {
            b.comment(format!("{spn} -> {}", ep.addr()))
        }
    };
    if let Some(seconds) = sp.affinity_s {
        for ep in eps {
            let sep = endpoint_chain_name(spn, sp.proto.lower(), &ep.addr());
            nat.append(
                chain,
                comment(ep)
                    .m(Match::Recent {
                        name: sep.clone(),
                        op: RecentOp::Rcheck { seconds },
                    })
                    .jump(&sep),
            );
        }
    }
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let sep = endpoint_chain_name(spn, sp.proto.lower(), &ep.addr());
        let mut b = comment(ep);
        if i + 1 < n {
            b = b.m(Match::Statistic(Probability::one_in(n - i)));
        }
        nat.append(chain, b.jump(&sep));
    }
}
