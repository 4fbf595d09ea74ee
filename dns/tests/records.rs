//! CoreDNS kubernetes-plugin semantics (reference §6.A–6.B) through the public `answer` entry point.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dns::wire::{self, *};
use dns::{build_query, DnsConfig, Outcome, PodsMode, Snapshot, Transport};

fn rcode(m: &Message) -> u16 {
    m.header.rcode()
}

fn soa_line(zone: &str) -> String {
    format!("{zone} 30 SOA ns.dns.{zone} hostmaster.{zone} {SERIAL} 7200 1800 86400 30")
}

#[test]
fn cluster_ip_service_a_even_without_endpoints() {
    let s = cluster();
    let m = ask(&s, "empty.default.svc.cluster.local.", TYPE_A);
    assert_eq!(rcode(&m), RCODE_NOERROR);
    assert_eq!(
        lines(&m.answers),
        ["empty.default.svc.cluster.local. 30 A 10.96.7.7"]
    );
    assert_eq!(
        m.header.bits & (FLAG_QR | FLAG_AA | FLAG_RD | FLAG_RA),
        FLAG_QR | FLAG_AA | FLAG_RD
    );
}

#[test]
fn nodata_vs_nxdomain() {
    let s = cluster();
    // NODATA: existing name, other type; SOA in AUTHORITY.
    for (name, t) in [
        ("web.default.svc.cluster.local.", TYPE_AAAA),
        ("web.default.svc.cluster.local.", TYPE_TXT),
        ("web.default.svc.cluster.local.", TYPE_MX),
        ("cluster.local.", 13), // HINFO at the apex
        ("default.svc.cluster.local.", TYPE_A),
        ("svc.cluster.local.", TYPE_A),
    ] {
        let m = ask(&s, name, t);
        assert_eq!(rcode(&m), RCODE_NOERROR, "{name} {t}");
        assert!(m.answers.is_empty(), "{name} {t}");
        assert_eq!(
            lines(&m.authority),
            [soa_line("cluster.local.")],
            "{name} {t}"
        );
    }
    // NXDOMAIN: unknown service, unknown namespace, unparsable names, no ready endpoints.
    for name in [
        "nope.default.svc.cluster.local.",
        "web.nosuchns.svc.cluster.local.",
        "nosuchns.svc.cluster.local.",
        "foo.bar.cluster.local.",
        "a.b.c.web.default.svc.cluster.local.",
        "nobody.default.svc.cluster.local.",
        "ext-ip.default.svc.cluster.local.",
    ] {
        let m = ask(&s, name, TYPE_A);
        assert_eq!(rcode(&m), RCODE_NXDOMAIN, "{name}");
        assert_eq!(lines(&m.authority), [soa_line("cluster.local.")], "{name}");
        assert!(m.header.bits & FLAG_AA != 0);
    }
}

#[test]
fn soa_ttl_is_capped_at_300() {
    let cfg = DnsConfig {
        ttl: 3600,
        serial: 7,
        ..DnsConfig::default()
    };
    let s = Snapshot::from_objects(&[], &[], &[], &[ns("default")], &cfg);
    let m = ask(&s, "x.default.svc.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.authority),
        ["cluster.local. 300 SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 3600"]
    );
    let m = ask(&s, "cluster.local.", TYPE_SOA);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn headless_one_a_per_ready_endpoint() {
    let m = ask(
        &cluster(),
        "web-headless.default.svc.cluster.local.",
        TYPE_A,
    );
    assert_eq!(
        lines(&m.answers),
        [
            "web-headless.default.svc.cluster.local. 30 A 10.244.1.5",
            "web-headless.default.svc.cluster.local. 30 A 10.244.2.6"
        ]
    );
}

#[test]
fn endpoint_names_dashed_ip_hostname_and_statefulset() {
    let s = cluster();
    let m = ask(
        &s,
        "10-244-2-6.web-headless.default.svc.cluster.local.",
        TYPE_A,
    );
    assert_eq!(
        lines(&m.answers),
        ["10-244-2-6.web-headless.default.svc.cluster.local. 30 A 10.244.2.6"]
    );
    // Hostname from the slice, and from the pod's hostname/subdomain when the slice lacks it.
    let m = ask(&s, "web-0.nginx.default.svc.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        ["web-0.nginx.default.svc.cluster.local. 30 A 10.244.4.10"]
    );
    let m = ask(&s, "web-1.nginx.default.svc.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        ["web-1.nginx.default.svc.cluster.local. 30 A 10.244.4.11"]
    );
    // Endpoint label on a ClusterIP service answers the endpoint.
    let m = ask(&s, "10-244-1-5.web.default.svc.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        ["10-244-1-5.web.default.svc.cluster.local. 30 A 10.244.1.5"]
    );
    assert_eq!(
        rcode(&ask(&s, "web-9.nginx.default.svc.cluster.local.", TYPE_A)),
        RCODE_NXDOMAIN
    );
}

#[test]
fn srv_weights_and_additional() {
    let s = cluster();
    let m = ask(&s, "_http._tcp.web.default.svc.cluster.local.", TYPE_SRV);
    assert_eq!(
        lines(&m.answers),
        ["_http._tcp.web.default.svc.cluster.local. 30 SRV 0 100 80 web.default.svc.cluster.local."]
    );
    assert_eq!(
        lines(&m.additional),
        ["web.default.svc.cluster.local. 30 A 10.96.45.12"]
    );
    let m = ask(&s, "_http._tcp.quad.default.svc.cluster.local.", TYPE_SRV);
    assert_eq!(m.answers.len(), 4);
    for (i, l) in lines(&m.answers).iter().enumerate() {
        assert_eq!(
            l,
            &format!("_http._tcp.quad.default.svc.cluster.local. 30 SRV 0 25 80 10-244-9-{}.quad.default.svc.cluster.local.", i + 1)
        );
    }
    assert_eq!(lines(&m.additional).len(), 4);
    // Bare-name SRV: all ports.
    let m = ask(&s, "kube-dns.kube-system.svc.cluster.local.", TYPE_SRV);
    // Two ports (53/UDP, 53/TCP) → N = 2, weight 50; same target and port → one SRV (CoreDNS dedups).
    assert_eq!(
        lines(&m.answers),
        ["kube-dns.kube-system.svc.cluster.local. 30 SRV 0 50 53 kube-dns.kube-system.svc.cluster.local."]
    );
    let m = ask(
        &s,
        "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
        TYPE_SRV,
    );
    assert_eq!(lines(&m.answers)[0], "_dns._udp.kube-dns.kube-system.svc.cluster.local. 30 SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.");
    // No such port → NXDOMAIN; unnamed ports have no _port SRV.
    assert_eq!(
        rcode(&ask(
            &s,
            "_nope._tcp.web.default.svc.cluster.local.",
            TYPE_SRV
        )),
        RCODE_NXDOMAIN
    );
    assert_eq!(
        rcode(&ask(
            &s,
            "_http._tcp.myapp-headless.shiqi-lu.svc.cluster.local.",
            TYPE_SRV
        )),
        RCODE_NXDOMAIN
    );
}

#[test]
fn ptr_for_cluster_ips_and_endpoints() {
    let s = cluster();
    let m = ask(&s, "12.45.96.10.in-addr.arpa.", TYPE_PTR);
    assert_eq!(
        lines(&m.answers),
        ["12.45.96.10.in-addr.arpa. 30 PTR web.default.svc.cluster.local."]
    );
    let m = ask(&s, "6.2.244.10.in-addr.arpa.", TYPE_PTR);
    assert_eq!(
        lines(&m.answers),
        ["6.2.244.10.in-addr.arpa. 30 PTR 10-244-2-6.web-headless.default.svc.cluster.local."]
    );
    let m = ask(&s, "10.4.244.10.in-addr.arpa.", TYPE_PTR);
    assert_eq!(
        lines(&m.answers),
        ["10.4.244.10.in-addr.arpa. 30 PTR web-0.nginx.default.svc.cluster.local."]
    );
    // An IP in two services' endpoints has two PTRs.
    let m = ask(&s, "5.1.244.10.in-addr.arpa.", TYPE_PTR);
    assert_eq!(m.answers.len(), 2);
    // Unknown reverse names fall through to forward (kubeadm: fallthrough in-addr.arpa ip6.arpa).
    let q = query("9.9.9.9.in-addr.arpa.", TYPE_PTR);
    assert_eq!(
        s.answer(&q, Transport::Udp { ipv6: false }),
        Outcome::Forward
    );
}

#[test]
fn externalname_cname_alone_or_chased() {
    let s = cluster();
    let m = ask(&s, "ext-out.default.svc.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        ["ext-out.default.svc.cluster.local. 30 CNAME hub.atguigu.com."]
    );
    let m = ask(&s, "ext-in.default.svc.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        [
            "ext-in.default.svc.cluster.local. 30 CNAME web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 30 A 10.96.45.12"
        ]
    );
    let m = ask(&s, "ext-out.default.svc.cluster.local.", TYPE_CNAME);
    assert_eq!(
        lines(&m.answers),
        ["ext-out.default.svc.cluster.local. 30 CNAME hub.atguigu.com."]
    );
    // CNAME query on a ClusterIP service: NODATA.
    let m = ask(&s, "web.default.svc.cluster.local.", TYPE_CNAME);
    assert!(m.answers.is_empty() && rcode(&m) == RCODE_NOERROR);
}

#[test]
fn pod_records_by_mode() {
    let s = cluster();
    let m = ask(&s, "10-244-1-9.default.pod.cluster.local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        ["10-244-1-9.default.pod.cluster.local. 30 A 10.244.1.9"]
    );
    assert_eq!(
        rcode(&ask(&s, "10-244-1-9.nosuch.pod.cluster.local.", TYPE_A)),
        RCODE_NXDOMAIN
    );
    assert_eq!(
        rcode(&ask(&s, "not-an-ip.default.pod.cluster.local.", TYPE_A)),
        RCODE_NXDOMAIN
    );
    for (mode, known, unknown) in [
        (PodsMode::Verified, RCODE_NOERROR, RCODE_NXDOMAIN),
        (PodsMode::Disabled, RCODE_NXDOMAIN, RCODE_NXDOMAIN),
        (PodsMode::Insecure, RCODE_NOERROR, RCODE_NOERROR),
    ] {
        let pods = vec![
            serde_json::json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"podIP": "10.244.1.9"}}),
        ];
        let cfg = DnsConfig {
            pods_mode: mode,
            ..DnsConfig::default()
        };
        let s = Snapshot::from_objects(&[], &[], &pods, &[ns("default")], &cfg);
        assert_eq!(
            rcode(&ask(&s, "10-244-1-9.default.pod.cluster.local.", TYPE_A)),
            known,
            "{mode:?}"
        );
        assert_eq!(
            rcode(&ask(&s, "10-244-1-8.default.pod.cluster.local.", TYPE_A)),
            unknown,
            "{mode:?}"
        );
    }
}

#[test]
fn dns_version_ns_and_apex() {
    let s = cluster();
    let m = ask(&s, "dns-version.cluster.local.", TYPE_TXT);
    assert_eq!(
        lines(&m.answers),
        ["dns-version.cluster.local. 28800 TXT \"1.1.0\""]
    );
    let m = ask(&s, "cluster.local.", TYPE_NS);
    assert_eq!(
        lines(&m.answers),
        ["cluster.local. 30 NS ns.dns.cluster.local."]
    );
    assert_eq!(
        lines(&m.additional),
        ["ns.dns.cluster.local. 30 A 10.96.0.10"]
    );
    let m = ask(&s, "ns.dns.cluster.local.", TYPE_A);
    assert_eq!(lines(&m.answers), ["ns.dns.cluster.local. 30 A 10.96.0.10"]);
}

#[test]
fn case_is_matched_insensitively_and_kept() {
    let s = cluster();
    let m = ask(&s, "WEB.Default.SVC.Cluster.Local.", TYPE_A);
    assert_eq!(
        lines(&m.answers),
        ["WEB.Default.SVC.Cluster.Local. 30 A 10.96.45.12"]
    );
    assert_eq!(
        m.questions[0].name.to_text(),
        "WEB.Default.SVC.Cluster.Local."
    );
    let m = ask(&s, "Nope.Default.SVC.Cluster.LOCAL.", TYPE_A);
    assert_eq!(lines(&m.authority), [soa_line("Cluster.LOCAL.")]);
    let m = ask(&s, "_HTTP._TCP.web.default.svc.CLUSTER.local.", TYPE_SRV);
    assert_eq!(lines(&m.answers), ["_HTTP._TCP.web.default.svc.CLUSTER.local. 30 SRV 0 100 80 web.default.svc.CLUSTER.local."]);
}

#[test]
fn outside_the_zone_is_forwarded_and_axfr_refused() {
    let s = cluster();
    assert_eq!(
        s.answer(&query("example.com.", TYPE_A), Transport::Tcp),
        Outcome::Forward
    );
    let m = reply_of(s.answer(&query("cluster.local.", TYPE_AXFR), Transport::Tcp));
    assert_eq!(rcode(&m), RCODE_REFUSED);
    assert_eq!(m.header.bits & FLAG_AA, 0);
}

#[test]
fn bad_queries() {
    let s = cluster();
    let udp = Transport::Udp { ipv6: false };
    let q = query("web.default.svc.cluster.local.", TYPE_A);
    assert_eq!(s.answer(&q[..11], udp), Outcome::Drop);
    let mut resp = q.clone();
    resp[2] |= 0x80;
    assert_eq!(s.answer(&resp, udp), Outcome::Drop);
    // Opcode STATUS → NOTIMP, header only.
    let mut st = q.clone();
    st[2] = (st[2] & 0x87) | (2 << 3);
    let m = reply_of(s.answer(&st, udp));
    assert_eq!(
        (rcode(&m), m.header.opcode(), m.questions.len()),
        (RCODE_NOTIMP, 2, 0)
    );
    // Two questions → FORMERR.
    let mut two = q.clone();
    two[5] = 2;
    let m = reply_of(s.answer(&two, udp));
    assert_eq!((rcode(&m), m.questions.len()), (RCODE_FORMERR, 0));
    // Truncated additional → FORMERR that keeps the question.
    let m = reply_of(s.answer(&q[..q.len() - 3], udp));
    assert_eq!((rcode(&m), m.questions.len()), (RCODE_FORMERR, 1));
    // EDNS version 1 → BADVERS (extended rcode 1 in the OPT).
    let mut v1 = q.clone();
    let at = v1.len() - 17; // version byte of the OPT TTL
    v1[at] = 1;
    let m = reply_of(s.answer(&v1, udp));
    assert_eq!(m.opt().map(|o| o.ttl >> 24), Some(1));
}

#[test]
fn opt_echo_and_sizes() {
    let s = cluster();
    let m = ask(&s, "web.default.svc.cluster.local.", TYPE_A);
    let o = m.opt().unwrap();
    assert_eq!(
        (o.udp_size, o.options.clone()),
        (1232, vec![(10u16, COOKIE.to_vec())])
    );
    // No EDNS in → no OPT out.
    let q = build_query("web.default.svc.cluster.local.", TYPE_A, 1, true, None).unwrap();
    let plain = {
        let mut m = wire::parse_message(&q).unwrap().0;
        m.additional.clear();
        wire::encode(&m, false)
    };
    let m = reply_of(s.answer(&plain, Transport::Udp { ipv6: false }));
    assert!(m.opt().is_none());
    assert_eq!(m.header.arcount, 0);
}

fn big_cluster(n: usize) -> Snapshot {
    let eps: Vec<String> = (0..n)
        .map(|i| format!("10.250.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let e: Vec<(&str, bool, Option<&str>, Option<&str>)> = eps
        .iter()
        .map(|ip| (ip.as_str(), true, None, None))
        .collect();
    Snapshot::from_objects(
        &[svc("default", "big", "None", http())],
        &[slice("default", "big", &e, http())],
        &[],
        &[ns("default")],
        &DnsConfig::default(),
    )
}

#[test]
fn tc_bit_when_udp_answer_exceeds_client_size() {
    let s = big_cluster(100);
    let name = "big.default.svc.cluster.local.";
    // No EDNS: 512 bytes; compressed records that fit are kept, TC set.
    let mut m = wire::parse_message(&build_query(name, TYPE_A, 1, true, None).unwrap())
        .unwrap()
        .0;
    m.additional.clear();
    let q = wire::encode(&m, false);
    let Outcome::Reply(r) = s.answer(&q, Transport::Udp { ipv6: false }) else {
        panic!()
    };
    assert!(r.len() <= 512);
    let m = wire::parse_message(&r).unwrap().0;
    assert!(m.header.bits & FLAG_TC != 0);
    assert!(
        m.answers.len() > 20 && m.answers.len() < 100,
        "{}",
        m.answers.len()
    );
    // EDNS 1232: still too big, truncated within 1232 with the OPT kept last.
    let Outcome::Reply(r) = s.answer(&query(name, TYPE_A), Transport::Udp { ipv6: false }) else {
        panic!()
    };
    assert!(r.len() <= 1232);
    let m = wire::parse_message(&r).unwrap().0;
    assert!(m.header.bits & FLAG_TC != 0 && m.opt().is_some());
    // TCP: everything, uncompressed.
    let Outcome::Reply(r) = s.answer(&query(name, TYPE_A), Transport::Tcp) else {
        panic!()
    };
    let m = wire::parse_message(&r).unwrap().0;
    assert_eq!(m.answers.len(), 100);
    assert_eq!(m.header.bits & FLAG_TC, 0);
    assert_eq!(r.len(), 12 + 35 + 100 * (31 + 14) + 23);
    // Fits the buffer but over 1480 on UDP/IPv4: compressed, no TC.
    let s = big_cluster(40);
    let mut q = query(name, TYPE_A);
    let at = q.len() - 20;
    q[at..at + 2].copy_from_slice(&4096u16.to_be_bytes());
    let Outcome::Reply(r) = s.answer(&q, Transport::Udp { ipv6: false }) else {
        panic!()
    };
    let m = wire::parse_message(&r).unwrap().0;
    assert_eq!((m.answers.len(), m.header.bits & FLAG_TC), (40, 0));
    assert!(r.len() < 12 + 35 + 40 * 45);
}

#[test]
fn edns_payload_below_512_is_echoed_as_sent() {
    // hickory clamps the OPT class to 512; CoreDNS echoes the client's number (wire.rs keeps it).
    let s = cluster();
    let mut q = query("web.default.svc.cluster.local.", TYPE_A);
    let at = q.len() - 20; // OPT CLASS
    q[at..at + 2].copy_from_slice(&100u16.to_be_bytes());
    let Outcome::Reply(r) = s.answer(&q, Transport::Udp { ipv6: false }) else {
        panic!()
    };
    let m = wire::parse_message(&r).unwrap().0;
    assert_eq!(m.opt().map(|o| o.udp_size), Some(100));
    assert_eq!(r[r.len() - 20..r.len() - 18], 100u16.to_be_bytes());
    let out = dns::format_dig(
        "dig web.default.svc.cluster.local",
        &r,
        "10.96.0.10:53".parse().unwrap(),
        dns::DigTransport::Udp,
        0,
        "w",
        "9.18.30",
    );
    assert!(
        out.contains("; EDNS: version: 0, flags:; udp: 100\n"),
        "{out}"
    );
}

#[test]
fn malformed_edns_options_are_formerr() {
    let s = cluster();
    let udp = Transport::Udp { ipv6: false };
    let q = query("web.default.svc.cluster.local.", TYPE_A);
    // An option length that runs past the OPT rdata (hickory would drop the options silently).
    let mut bad_len = q.clone();
    let at = bad_len.len() - 10; // COOKIE option length
    bad_len[at..at + 2].copy_from_slice(&9u16.to_be_bytes());
    let m = reply_of(s.answer(&bad_len, udp));
    assert_eq!((rcode(&m), m.questions.len()), (RCODE_FORMERR, 1));
    // The cookie bytes read as a client-subnet option: no such address family (miekg: FORMERR).
    let mut ecs = q.clone();
    let at = ecs.len() - 12; // option code
    ecs[at..at + 2].copy_from_slice(&8u16.to_be_bytes());
    let m = reply_of(s.answer(&ecs, udp));
    assert_eq!((rcode(&m), m.questions.len()), (RCODE_FORMERR, 1));
}

#[test]
fn truncation_keeps_every_record_whose_compressed_form_fits() {
    // 12 header + 35 question + 29 × 16 (pointer owner, A) = 511: the 29th record fits in 512.
    let s = big_cluster(40);
    let mut m = wire::parse_message(
        &build_query("big.default.svc.cluster.local.", TYPE_A, 1, true, None).unwrap(),
    )
    .unwrap()
    .0;
    m.additional.clear();
    let Outcome::Reply(r) = s.answer(&wire::encode(&m, false), Transport::Udp { ipv6: false })
    else {
        panic!()
    };
    let m = wire::parse_message(&r).unwrap().0;
    assert_eq!((r.len(), m.answers.len()), (511, 29));
    assert!(m.header.bits & FLAG_TC != 0);
}
