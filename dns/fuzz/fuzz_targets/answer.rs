//! Any bytes as a query to a fixed snapshot, and as a reply to the formatters: must never panic, and every
//! reply must parse back.
#![no_main]

use dns::{format_dig, wire, DigTransport, DnsConfig, Outcome, Snapshot, Transport};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let services = [
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.5",
               "ports": [{"name": "http", "port": 80}]}}),
        json!({"metadata": {"name": "ext", "namespace": "default"},
               "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}}),
    ];
    let namespaces = [json!({"metadata": {"name": "default"}})];
    let snap = Snapshot::from_objects(&services, &[], &[], &namespaces, &DnsConfig::default());
    for t in [Transport::Udp { ipv6: false }, Transport::Tcp] {
        if let Outcome::Reply(r) = snap.answer(data, t) {
            assert!(wire::parse_message(&r).is_ok());
        }
    }
    let _ = format_dig("dig x", data, ([10, 96, 0, 10], 53).into(), DigTransport::Udp, 0, "w", "9.18.30");
});
