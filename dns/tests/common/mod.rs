//! Shared fixtures: a small cluster in JSON form and query helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use dns::wire::{self, Message};
use dns::{build_query, DnsConfig, Outcome, Snapshot, Transport};
use serde_json::{json, Value};

pub const SERIAL: u32 = 1_700_000_000;

pub fn ns(name: &str) -> Value {
    json!({"metadata": {"name": name}})
}

pub fn svc(ns: &str, name: &str, cluster_ip: &str, ports: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": ns},
           "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports}})
}

pub fn external(ns: &str, name: &str, target: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns}, "spec": {"type": "ExternalName", "externalName": target}})
}

/// An EndpointSlice; endpoints are (ip, ready, hostname, pod name).
pub fn slice(
    ns: &str,
    svc: &str,
    eps: &[(&str, bool, Option<&str>, Option<&str>)],
    ports: Value,
) -> Value {
    let eps: Vec<Value> = eps
        .iter()
        .map(|(ip, ready, host, pod)| {
            let mut e = json!({"addresses": [ip], "conditions": {"ready": ready}});
            if let Some(h) = host {
                e["hostname"] = json!(h);
            }
            if let Some(p) = pod {
                e["targetRef"] = json!({"kind": "Pod", "name": p, "namespace": ns});
            }
            e
        })
        .collect();
    json!({"metadata": {"name": format!("{svc}-x1"), "namespace": ns,
                        "labels": {"kubernetes.io/service-name": svc}},
           "addressType": "IPv4", "endpoints": eps, "ports": ports})
}

pub fn http() -> Value {
    json!([{"name": "http", "port": 80, "protocol": "TCP"}])
}

/// The fixture cluster used by most tests.
pub fn cluster() -> Snapshot {
    let services = vec![
        svc("default", "web", "10.96.45.12", http()),
        svc(
            "default",
            "kubernetes",
            "10.96.0.1",
            json!([{"name": "https", "port": 443, "protocol": "TCP"}]),
        ),
        svc(
            "kube-system",
            "kube-dns",
            "10.96.0.10",
            json!([{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
        ),
        svc("default", "empty", "10.96.7.7", http()),
        svc("default", "web-headless", "None", http()),
        svc("default", "quad", "None", http()),
        svc("default", "nobody", "None", http()),
        svc(
            "default",
            "nginx",
            "None",
            json!([{"name": "web", "port": 80, "protocol": "TCP"}]),
        ),
        external("default", "ext-in", "web.default.svc.cluster.local"),
        external("default", "ext-out", "hub.atguigu.com"),
        external("default", "ext-ip", "1.2.3.4"),
        svc(
            "shiqi-lu",
            "myapp-headless",
            "None",
            json!([{"port": 80, "protocol": "TCP"}]),
        ),
        external("shiqi-lu", "my-service-1", "hub.atguigu.com"),
    ];
    let slices = vec![
        slice(
            "default",
            "web-headless",
            &[
                ("10.244.1.5", true, None, None),
                ("10.244.2.6", true, None, None),
                ("10.244.3.7", false, None, None),
            ],
            http(),
        ),
        slice(
            "default",
            "quad",
            &[
                ("10.244.9.1", true, None, None),
                ("10.244.9.2", true, None, None),
                ("10.244.9.3", true, None, None),
                ("10.244.9.4", true, None, None),
            ],
            http(),
        ),
        slice(
            "default",
            "nobody",
            &[("10.244.5.5", false, None, None)],
            http(),
        ),
        slice(
            "default",
            "nginx",
            &[
                ("10.244.4.10", true, Some("web-0"), Some("web-0")),
                ("10.244.4.11", true, None, Some("web-1")),
            ],
            json!([{"name": "web", "port": 80, "protocol": "TCP"}]),
        ),
        slice(
            "shiqi-lu",
            "myapp-headless",
            &[
                (
                    "10.244.6.101",
                    true,
                    None,
                    Some("myapp-deploy-c7b5fb585-lw9rr"),
                ),
                (
                    "10.244.8.108",
                    true,
                    None,
                    Some("myapp-deploy-c7b5fb585-pqd8j"),
                ),
                (
                    "10.244.4.51",
                    true,
                    None,
                    Some("myapp-deploy-c7b5fb585-stkdm"),
                ),
            ],
            json!([{"port": 80, "protocol": "TCP"}]),
        ),
        slice(
            "default",
            "web",
            &[("10.244.1.5", true, None, None)],
            http(),
        ),
    ];
    let pods = vec![
        json!({"metadata": {"name": "web-0", "namespace": "default"},
               "spec": {"hostname": "web-0", "subdomain": "nginx"}, "status": {"podIP": "10.244.4.10"}}),
        json!({"metadata": {"name": "web-1", "namespace": "default"},
               "spec": {"hostname": "web-1", "subdomain": "nginx"}, "status": {"podIP": "10.244.4.11"}}),
        json!({"metadata": {"name": "client", "namespace": "default"}, "status": {"podIP": "10.244.1.9"}}),
    ];
    let namespaces = vec![ns("default"), ns("kube-system"), ns("shiqi-lu")];
    let cfg = DnsConfig {
        serial: SERIAL,
        ..DnsConfig::default()
    };
    Snapshot::from_objects(&services, &slices, &pods, &namespaces, &cfg)
}

pub const COOKIE: [u8; 8] = [0xfd, 0x1f, 0xdb, 0xe4, 0xc0, 0x17, 0x73, 0x89];

pub fn query(name: &str, qtype: u16) -> Vec<u8> {
    build_query(name, qtype, 4242, true, Some(COOKIE)).unwrap()
}

pub fn ask(snap: &Snapshot, name: &str, qtype: u16) -> Message {
    reply_of(snap.answer(&query(name, qtype), Transport::Udp { ipv6: false }))
}

pub fn reply_of(o: Outcome) -> Message {
    match o {
        Outcome::Reply(b) => wire::parse_message(&b).expect("reply parses").0,
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// Answer section as dig-style text lines (name ttl type rdata), for compact assertions.
pub fn lines(rs: &[wire::Record]) -> Vec<String> {
    rs.iter()
        .filter(|r| r.rtype != wire::TYPE_OPT)
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name.to_text(),
                r.ttl,
                wire::type_name(r.rtype),
                dns::dig::rdata_text(r)
            )
        })
        .collect()
}
