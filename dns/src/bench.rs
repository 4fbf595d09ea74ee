//! A throughput probe (not a test): builds a synthetic cluster and times `Snapshot::answer`.
//!
//! Guarantee: this is the one place in the crate that reads the real clock, and only to measure; nothing
//! it measures feeds back into any answer.

use serde_json::{json, Value};

use crate::responder::Transport;
use crate::snapshot::{DnsConfig, Snapshot};
use crate::wire;

/// Builds `n_services` ClusterIP Services in 100 namespaces plus one headless Service per 10 with
/// `n_endpoints` ready endpoints spread over them, then answers `queries` A queries round-robin.
/// Returns (answers per second, index size estimate in bytes).
#[allow(clippy::disallowed_methods)]
pub fn bench_answers(n_services: usize, n_endpoints: usize, queries: usize) -> (f64, usize) {
    let mut services: Vec<Value> = Vec::new();
    let mut slices: Vec<Value> = Vec::new();
    let namespaces: Vec<Value> = (0..100)
        .map(|i| json!({"metadata": {"name": format!("ns{i}")}}))
        .collect();
    let n_headless = (n_services / 10).max(1);
    let per = (n_endpoints / n_headless).max(1);
    for i in 0..n_services {
        let headless = i % 10 == 0;
        let ns = format!("ns{}", i % 100);
        let ip = if headless {
            "None".to_string()
        } else {
            format!("10.96.{}.{}", (i / 250) % 256, i % 250 + 1)
        };
        services.push(
            json!({"metadata": {"name": format!("svc{i}"), "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        );
        if headless {
            let eps: Vec<Value> = (0..per)
                .map(|j| {
                    let k = i * per + j;
                    json!({"addresses": [format!("10.{}.{}.{}", 64 + (k >> 16) % 64, (k >> 8) % 256, k % 256)],
                           "conditions": {"ready": true}})
                })
                .collect();
            slices.push(json!({"metadata": {"name": format!("svc{i}-abc"), "namespace": ns,
                "labels": {"kubernetes.io/service-name": format!("svc{i}")}},
                "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}));
        }
    }
    let snap = Snapshot::from_objects(&services, &slices, &[], &namespaces, &DnsConfig::default());
    let qs: Vec<Vec<u8>> = (0..n_services.clamp(1, 1000))
        .filter_map(|i| {
            let name = format!("svc{}.ns{}.svc.cluster.local.", i + 1, (i + 1) % 100);
            crate::dig::build_query(
                &name,
                wire::TYPE_A,
                i as u16,
                true,
                Some([1, 2, 3, 4, 5, 6, 7, 8]),
            )
            .ok()
        })
        .collect();
    let start = std::time::Instant::now();
    let mut bytes = 0usize;
    for i in 0..queries {
        if let Some(q) = qs.get(i % qs.len().max(1)) {
            if let crate::Outcome::Reply(r) = snap.answer(q, Transport::Udp { ipv6: false }) {
                bytes += r.len();
            }
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(bytes);
    (queries as f64 / secs, snap.index_bytes_estimate())
}
