//! nftables mode: chain names against upstream's proxier_test vectors, and the walk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proxy::*;

#[test]
fn chain_names_match_upstream_vectors() {
    // kubernetes pkg/proxy/nftables/proxier_test.go expectations.
    assert_eq!(
        nft_chain_name("service", "ns1/svc1:p80", Proto::Tcp),
        "service-ULMVA6XW-ns1/svc1/tcp/p80"
    );
    assert_eq!(
        nft_chain_name("service", "ns2/svc2:p80", Proto::Tcp),
        "service-42NFTM6N-ns2/svc2/tcp/p80"
    );
    assert_eq!(
        nft_endpoint_chain_name("ns1/svc1:p80", Proto::Tcp, "10.180.0.1:80"),
        "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    );
    assert_eq!(
        nft_endpoint_chain_name("ns2/svc2:p80", Proto::Tcp, "10.180.0.2:80"),
        "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"
    );
}

fn web(mode: Mode) -> ProxyInput {
    input(
        mode,
        vec![
            svc(
                "default",
                "web",
                "NodePort",
                "10.96.45.12",
                &[P("http", 80, 8080, Some(30080), "TCP")],
            ),
            svc(
                "default",
                "empty",
                "ClusterIP",
                "10.96.45.99",
                &[P("", 80, 8080, None, "TCP")],
            ),
        ],
        vec![slice(
            "default",
            "web",
            &[("http", 8080, "TCP")],
            &[
                E("10.244.1.5", "node-1", true),
                E("10.244.2.7", "node-2", true),
                E("10.244.2.8", "node-2", true),
            ],
        )],
    )
}

fn tcp(src: &str, dst: &str, dport: u16) -> PacketMeta {
    PacketMeta::new(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        Proto::Tcp,
        40000,
        dport,
    )
}

#[test]
fn ruleset_shape_and_walk() {
    let rt = sync(&web(Mode::Nftables)).unwrap();
    let text = nft_list_ruleset(&rt);
    let svc = nft_chain_name("service", "default/web:http", Proto::Tcp);
    // Upstream's rule forms (proxier_test.go), as nft lists them.
    assert!(text.contains(&format!("\tchain {svc} {{\n\t\tip daddr 10.96.45.12 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n")), "{text}");
    assert!(
        text.contains("numgen random mod 3 vmap { 0 : goto endpoint-"),
        "{text}"
    );
    assert!(
        text.contains("\t\tmeta l4proto tcp dnat to 10.244.2.7:8080\n"),
        "{text}"
    );
    assert!(
        text.contains("\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"),
        "{text}"
    );
    assert!(
        text.contains("10.96.45.99 . tcp . 80 comment \"default/empty\" : goto reject-chain"),
        "{text}"
    );

    let mut st = ProxyState::default();
    // numgen: draw 0.5 of 3 → index 1 → the second endpoint in sorted order.
    let v = evaluate(
        &rt,
        Hook::Prerouting,
        &tcp("10.244.3.3", "10.96.45.12", 80),
        &mut st,
        &mut seq(&[0.5]),
        0,
    );
    assert_eq!(v.nat.unwrap().ip.to_string(), "10.244.2.7", "{:?}", v.trace);
    assert!(v
        .trace
        .iter()
        .any(|t| t.why.starts_with("numgen draw 0.500000 → 1 of 3")));
    // NodePort from outside: masquerade mark set in the external- chain.
    let v = evaluate(
        &rt,
        Hook::Prerouting,
        &tcp("192.168.1.50", "172.18.0.2", 30080),
        &mut st,
        &mut seq(&[0.0]),
        0,
    );
    assert_eq!(v.nat.unwrap().ip.to_string(), "10.244.1.5");
    assert_eq!(v.mark, 0x4000);
    // No endpoints: rejected in filter-forward.
    let v = evaluate(
        &rt,
        Hook::Forward,
        &tcp("10.244.3.3", "10.96.45.99", 80),
        &mut st,
        &mut seq(&[]),
        0,
    );
    assert!(v.reject, "{:?}", v.trace);
}

#[test]
fn nft_affinity_sticks() {
    let mut i = web(Mode::Nftables);
    i.services[0]["spec"]["sessionAffinity"] = "ClientIP".into();
    let rt = sync(&i).unwrap();
    let mut st = ProxyState::default();
    let p = tcp("10.244.3.3", "10.96.45.12", 80);
    let first = evaluate(&rt, Hook::Prerouting, &p, &mut st, &mut seq(&[0.9]), 0)
        .nat
        .unwrap();
    assert_eq!(first.ip.to_string(), "10.244.2.8");
    let again = evaluate(&rt, Hook::Prerouting, &p, &mut st, &mut seq(&[]), 5_000);
    assert_eq!(again.nat.unwrap(), first);
    assert!(
        again
            .trace
            .iter()
            .any(|t| t.why.starts_with("affinity hit")),
        "{:?}",
        again.trace
    );
}

#[test]
fn nft_check_accepts_our_ruleset() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut i = web(Mode::Nftables);
    i.services[0]["spec"]["sessionAffinity"] = "ClientIP".into();
    let text = nft_list_ruleset(&sync(&i).unwrap());
    let child = Command::new("nft")
        .args(["-c", "-f", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("skipping: nft is not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Operation not permitted") {
        println!("skipping: nft -c needs privileges: {err}");
        return;
    }
    assert!(
        out.status.success(),
        "nft -c rejected our ruleset: {err}\n{text}"
    );
}
