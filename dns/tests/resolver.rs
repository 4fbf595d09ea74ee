//! resolv.conf text (§6.15) and the glibc search walk (§6.16).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dns::{resolv_conf, search_candidates, DnsPolicy, NodeResolv, PodDnsConfig};

fn node() -> NodeResolv {
    NodeResolv {
        nameservers: vec!["192.168.0.1".into()],
        searches: vec!["lan".into()],
        options: vec!["edns0".into()],
    }
}

#[test]
fn cluster_first() {
    let t = resolv_conf(
        DnsPolicy::ClusterFirst,
        false,
        "team-b",
        &["10.96.0.10".parse().unwrap()],
        "cluster.local",
        &NodeResolv::default(),
        None,
    );
    assert_eq!(t, "search team-b.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n");
    let t = resolv_conf(
        DnsPolicy::ClusterFirst,
        false,
        "default",
        &["10.96.0.10".parse().unwrap()],
        "cluster.local",
        &node(),
        None,
    );
    assert_eq!(t, "search default.svc.cluster.local svc.cluster.local cluster.local lan\nnameserver 10.96.0.10\noptions ndots:5\n");
}

#[test]
fn default_none_and_host_network() {
    let dns = ["10.96.0.10".parse().unwrap()];
    let d = resolv_conf(
        DnsPolicy::Default,
        false,
        "x",
        &dns,
        "cluster.local",
        &node(),
        None,
    );
    assert_eq!(d, "search lan\nnameserver 192.168.0.1\noptions edns0\n");
    assert_eq!(
        resolv_conf(
            DnsPolicy::ClusterFirst,
            true,
            "x",
            &dns,
            "cluster.local",
            &node(),
            None
        ),
        d
    );
    let cfg = PodDnsConfig {
        nameservers: vec!["1.1.1.1".into()],
        searches: vec!["my.dns.search.suffix".into()],
        options: vec![("ndots".into(), Some("2".into())), ("edns0".into(), None)],
    };
    let n = resolv_conf(
        DnsPolicy::None,
        false,
        "x",
        &dns,
        "cluster.local",
        &node(),
        Some(&cfg),
    );
    assert_eq!(
        n,
        "search my.dns.search.suffix\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"
    );
    let c = resolv_conf(
        DnsPolicy::ClusterFirst,
        false,
        "x",
        &dns,
        "cluster.local",
        &NodeResolv::default(),
        Some(&cfg),
    );
    assert_eq!(
        c,
        "search x.svc.cluster.local svc.cluster.local cluster.local my.dns.search.suffix\nnameserver 10.96.0.10\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"
    );
}

#[test]
fn ndots_walk() {
    let search: Vec<String> = [
        "team-b.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        search_candidates("web", &search, 5),
        [
            "web.team-b.svc.cluster.local.",
            "web.svc.cluster.local.",
            "web.cluster.local.",
            "web."
        ]
    );
    assert_eq!(
        search_candidates("web.team-a", &search, 5)[..2],
        [
            "web.team-a.team-b.svc.cluster.local.",
            "web.team-a.svc.cluster.local."
        ]
    );
    // Enough dots: as-is first.
    assert_eq!(
        search_candidates("a.b.c.d.e", &search, 5),
        [
            "a.b.c.d.e.team-b.svc.cluster.local.",
            "a.b.c.d.e.svc.cluster.local.",
            "a.b.c.d.e.cluster.local.",
            "a.b.c.d.e."
        ]
    );
    assert_eq!(
        search_candidates("a.b.c.d.e.f", &search, 5)[0],
        "a.b.c.d.e.f."
    );
    assert_eq!(
        search_candidates("web.default.svc.cluster.local.", &search, 5),
        ["web.default.svc.cluster.local."]
    );
}
