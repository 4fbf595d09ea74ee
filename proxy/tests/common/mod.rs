//! Test fixtures: Kubernetes JSON objects as the apiserver serves them.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use proxy::{Mode, ProxyInput};
use serde_json::{json, Value};

/// A service port: (name, port, targetPort, nodePort, protocol).
pub struct P(
    pub &'static str,
    pub u16,
    pub u16,
    pub Option<u16>,
    pub &'static str,
);

pub fn svc(ns: &str, name: &str, type_: &str, cluster_ip: &str, ports: &[P]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut v = json!({"port": p.1, "targetPort": p.2, "protocol": p.4});
            if !p.0.is_empty() {
                v["name"] = json!(p.0);
            }
            if let Some(np) = p.3 {
                v["nodePort"] = json!(np);
            }
            v
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": type_, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": ports, "sessionAffinity": "None",
                 "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}}
    })
}

/// An endpoint: (ip, nodeName, ready).
pub struct E(pub &'static str, pub &'static str, pub bool);

/// An EndpointSlice for `svc` with ports (name, port, protocol).
pub fn slice(ns: &str, svc: &str, ports: &[(&str, u16, &str)], eps: &[E]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p, proto)| {
            let mut v = json!({"port": p, "protocol": proto});
            if !n.is_empty() {
                v["name"] = json!(n);
            }
            v
        })
        .collect();
    let eps: Vec<Value> = eps
        .iter()
        .map(|e| {
            json!({"addresses": [e.0], "nodeName": e.1,
                   "conditions": {"ready": e.2, "serving": e.2, "terminating": false}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-abcde"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": svc,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": ports
    })
}

pub fn input(mode: Mode, services: Vec<Value>, slices: Vec<Value>) -> ProxyInput {
    ProxyInput {
        mode,
        node_name: "node-1".into(),
        node_ips: vec![Ipv4Addr::new(172, 18, 0, 2)],
        cluster_cidr: "10.244.0.0/16".into(),
        services,
        endpoint_slices: slices,
        masquerade_all: false,
    }
}

/// The `-A` lines of a save output.
pub fn rules(save: &str) -> Vec<&str> {
    save.lines().filter(|l| l.starts_with("-A ")).collect()
}

/// A draw source replaying a fixed sequence (panics if the walk draws more than given).
pub fn seq(draws: &[f64]) -> impl FnMut() -> f64 + '_ {
    let mut i = 0;
    move || {
        let d = draws[i];
        i += 1;
        d
    }
}
