//! Data-path benchmarks (`netsim bench`): curl through a ClusterIP against a bare smoltcp
//! request/response loop in the same run, and kube-proxy rule sync and lookup at 10,000
//! Services. Reads the real clock: measuring is its purpose.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::resources::find;
use apiserver::store::MemStore;
use serde_json::{json, Value};

use crate::cluster::{Cluster, ClusterConfig};
use crate::net::http::Response;
use crate::net::{Exchange, NoRules, TcpExchange};
use crate::probes::{with_network, Place};

#[allow(clippy::disallowed_methods)] // measuring
fn now() -> Instant {
    Instant::now()
}

const GET: &[u8] =
    b"GET /hostname.html HTTP/1.1\r\nHost: bench\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// curl exchanges per second through a ClusterIP (kube-proxy rules, conntrack, NAT, two
/// nodes) vs straight to a pod IP with no rules, in one fabric, one thread.
pub async fn datapath(out: &mut String, n: usize) -> anyhow::Result<()> {
    let mut cluster = Cluster::new(ClusterConfig::default(), Arc::new(MemStore::new())).await?;
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "wangyanglinux/myapp:v2"}]}}}});
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let res = |p: &str| find(p).ok_or_else(|| anyhow::anyhow!("no {p}"));
    cluster
        .api
        .create(res("deployments")?, Some("default"), dep)
        .await?;
    let created = cluster
        .api
        .create(res("services")?, Some("default"), svc)
        .await?;
    let vip: Ipv4Addr = created
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()?;
    cluster.settle().await?;
    while let Some(t) = cluster.next_timer_ms() {
        cluster.advance_to(t).await?;
    }
    let pod_ip: Ipv4Addr = cluster
        .cache()
        .all("pods")
        .find(|p| p.pointer("/metadata/labels/app") == Some(&json!("web")))
        .and_then(|p| p.pointer("/status/podIP"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()?;
    let place = Place::Node("k8s-master".into());
    let timed = with_network(&mut cluster, &place, false, |fabric, nf, from| {
        let run = |fabric: &mut crate::net::Fabric<'_>,
                   nf: &mut dyn crate::net::Netfilter,
                   dst: Ipv4Addr|
         -> (Duration, usize) {
            let t0 = now();
            let mut ok = 0;
            for _ in 0..n {
                let start = fabric.now_ms();
                let x = TcpExchange {
                    from,
                    dst,
                    port: 80,
                    request: GET,
                    connect_deadline_ms: start + 5_000,
                    deadline_ms: start + 10_000,
                };
                if matches!(
                    fabric.tcp_exchange(nf, &x, |b| Response::parse(b, false).is_some()),
                    Exchange::Done(_)
                ) {
                    ok += 1;
                }
            }
            (t0.elapsed(), ok)
        };
        let bare = run(fabric, &mut NoRules, pod_ip);
        let proxied = run(fabric, nf, vip);
        (bare, proxied)
    })
    .await?;
    let ((bare, bare_ok), (proxied, proxied_ok)) = match timed {
        Ok((r, _)) => r,
        Err(e) => anyhow::bail!(e),
    };
    writeln!(
        out,
        "\n== data path: {n} HTTP exchanges from k8s-master, one thread =="
    )?;
    writeln!(
        out,
        "bare smoltcp request/response to the pod IP (no rules): {:.0}/s ({bare_ok} ok)",
        per_sec(n, bare)
    )?;
    writeln!(out, "through the ClusterIP (iptables rules, conntrack, DNAT, masquerade): {:.0}/s ({proxied_ok} ok)", per_sec(n, proxied))?;
    writeln!(
        out,
        "ratio proxied/bare: {:.2} (target >= 0.5)",
        bare.as_secs_f64() / proxied.as_secs_f64().max(1e-9)
    )?;
    // A whole `curl` command also builds the network from the cluster each time.
    let t0 = now();
    let m = n.min(50);
    for _ in 0..m {
        let argv = vec!["-s".to_owned(), format!("{vip}/hostname.html")];
        crate::probes::curl(&mut cluster, &place, &argv).await?;
    }
    writeln!(
        out,
        "whole `curl` commands (network rebuilt per command): {:.0}/s",
        per_sec(m, t0.elapsed())
    )?;
    Ok(())
}

/// Rule sync for 10,000 Services x 3 endpoints, and one new connection's lookup for the
/// first and the last Service: linear in iptables (the KUBE-SERVICES walk), constant in
/// ipvs and nftables (hash lookups), as upstream.
pub fn rules(out: &mut String, services: usize) -> anyhow::Result<()> {
    let mut svcs = Vec::new();
    let mut slices = Vec::new();
    for i in 0..services as u32 {
        let ip = format!(
            "10.{}.{}.{}",
            96 + i / 65536,
            (i / 256) % 256,
            i % 256 + (i % 256 == 0) as u32
        );
        let name = format!("s{i}");
        svcs.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}));
        let eps: Vec<Value> = (0..3)
            .map(|k| json!({"addresses": [format!("10.244.{k}.{}", i % 250 + 2)], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "node-2"}))
            .collect();
        slices.push(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-abcde"), "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}));
    }
    writeln!(
        out,
        "\n== kube-proxy rules: {services} Services x 3 endpoints =="
    )?;
    let first: Ipv4Addr = svcs[0]
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()?;
    let last: Ipv4Addr = svcs[services - 1]
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()?;
    for mode in [
        proxy::Mode::Iptables,
        proxy::Mode::Ipvs,
        proxy::Mode::Nftables,
    ] {
        let input = proxy::ProxyInput {
            mode,
            node_name: "node-1".into(),
            node_ips: vec![Ipv4Addr::new(172, 18, 0, 3)],
            cluster_cidr: "10.244.0.0/16".into(),
            services: svcs.clone(),
            endpoint_slices: slices.clone(),
            masquerade_all: false,
        };
        let t0 = now();
        let rt = proxy::sync(&input)?;
        let sync = t0.elapsed();
        let hook = if mode == proxy::Mode::Ipvs {
            proxy::Hook::Input
        } else {
            proxy::Hook::Prerouting
        };
        let lookup = |dst: Ipv4Addr| -> Duration {
            let mut st = proxy::ProxyState::default();
            let reps = 200;
            let t0 = now();
            for r in 0..reps {
                let pkt = proxy::PacketMeta::new(
                    Ipv4Addr::new(10, 244, 3, 3),
                    dst,
                    proxy::Proto::Tcp,
                    40000 + r,
                    80,
                );
                let _ = proxy::evaluate(&rt, hook, &pkt, &mut st, &mut || 0.1, 0);
            }
            t0.elapsed() / u32::from(reps)
        };
        let (f, l) = (lookup(first), lookup(last));
        writeln!(out, "{mode:?}: sync {:.0} ms; new connection to the first Service {:.1} µs, to the last {:.1} µs", sync.as_secs_f64() * 1000.0, f.as_secs_f64() * 1e6, l.as_secs_f64() * 1e6)?;
    }
    Ok(())
}
