//! Input decoding: Kubernetes Service and EndpointSlice JSON → service ports with endpoints.
//!
//! Layer: API → proxier model. Guarantee: the output depends only on the input values (services
//! and endpoints are sorted, never iterated from a hash map), and a malformed object is a typed
//! [`ProxyError`], never a panic. Skips what kube-proxy skips: headless and ExternalName
//! services, non-IPv4 addresses, `ipMode: Proxy` load-balancer ingress.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{Cidr, Mode, Proto};
use crate::ProxyError;

/// What kube-proxy on one node sees.
#[derive(Clone, Debug)]
pub struct ProxyInput {
    pub mode: Mode,
    pub node_name: String,
    /// The node's addresses (NodePorts are served on these and on 127.0.0.1).
    pub node_ips: Vec<Ipv4Addr>,
    /// Pod network, e.g. `10.244.0.0/16` (the local-traffic detector, `--cluster-cidr`).
    pub cluster_cidr: String,
    /// Service objects, as the apiserver serves them.
    pub services: Vec<serde_json::Value>,
    /// EndpointSlice objects, as the apiserver serves them.
    pub endpoint_slices: Vec<serde_json::Value>,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
}

/// One endpoint of one service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// On this node (`nodeName` equals the proxier's node).
    pub local: bool,
}

impl Endpoint {
    /// `ip:port`, the string kube-proxy sorts and hashes.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// One service port, with everything the proxiers need.
#[derive(Clone, Debug)]
pub(crate) struct SvcPort {
    /// `ns/name` or `ns/name:port` (reference §3.4).
    pub spn: String,
    pub proto: Proto,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    pub lb_ips: Vec<Ipv4Addr>,
    pub lb_source_ranges: Vec<Cidr>,
    /// ClientIP affinity timeout in seconds.
    pub affinity_s: Option<u32>,
    /// externalTrafficPolicy Local on an externally accessible service.
    pub ext_local: bool,
    /// internalTrafficPolicy Local.
    pub int_local: bool,
    pub health_check_node_port: Option<u16>,
    /// All endpoints for this port, sorted by the string `ip:port` (§3.11).
    pub endpoints: Vec<Endpoint>,
}

impl SvcPort {
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty() || !self.lb_ips.is_empty()
    }
    fn uses_cluster_endpoints(&self) -> bool {
        !self.int_local || (self.externally_accessible() && !self.ext_local)
    }
    fn uses_local_endpoints(&self) -> bool {
        self.int_local || (self.ext_local && self.externally_accessible())
    }
    /// kube-proxy's `CategorizeEndpoints` (§3.18): cluster endpoints, local endpoints, all
    /// reachable endpoints, and whether any usable endpoint exists anywhere.
    pub fn categorize(&self) -> Categorized {
        let mut out = Categorized::default();
        if self.uses_cluster_endpoints() {
            out.cluster = self.endpoints.iter().filter(|e| e.ready).cloned().collect();
            if out.cluster.is_empty() {
                out.cluster = self
                    .endpoints
                    .iter()
                    .filter(|e| e.serving && e.terminating)
                    .cloned()
                    .collect();
            }
            out.has_any = !out.cluster.is_empty();
        }
        if !self.uses_local_endpoints() {
            out.all_reachable = out.cluster.clone();
            return out;
        }
        let mut local_ready = false;
        let mut local_term = false;
        for e in &self.endpoints {
            if e.ready {
                out.has_any = true;
                local_ready |= e.local;
            } else if e.serving && e.terminating {
                out.has_any = true;
                local_term |= e.local;
            }
        }
        if local_ready {
            out.local = self
                .endpoints
                .iter()
                .filter(|e| e.ready && e.local)
                .cloned()
                .collect();
        } else if local_term {
            out.local = self
                .endpoints
                .iter()
                .filter(|e| e.local && e.serving && e.terminating)
                .cloned()
                .collect();
        }
        if !self.uses_cluster_endpoints() {
            out.all_reachable = out.local.clone();
            return out;
        }
        let mut all: BTreeMap<String, Endpoint> = BTreeMap::new();
        for e in out.cluster.iter().chain(out.local.iter()) {
            all.entry(e.addr()).or_insert_with(|| e.clone());
        }
        out.all_reachable = all.into_values().collect();
        out
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Categorized {
    pub cluster: Vec<Endpoint>,
    pub local: Vec<Endpoint>,
    pub all_reachable: Vec<Endpoint>,
    pub has_any: bool,
}

fn parse_ipv4(field: &str, value: &str) -> Result<Option<Ipv4Addr>, ProxyError> {
    if value.contains(':') {
        return Ok(None); // IPv6: this is an IPv4 proxier.
    }
    value
        .parse::<Ipv4Addr>()
        .map(Some)
        .map_err(|_| ProxyError::InvalidAddress {
            field: field.to_string(),
            value: value.to_string(),
        })
}

fn proto_of(p: Option<&str>) -> Option<Proto> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Proto::Tcp),
        "UDP" => Some(Proto::Udp),
        "SCTP" => Some(Proto::Sctp),
        _ => None,
    }
}

/// Decodes and joins the input into service ports, sorted by (`spn`, protocol).
pub(crate) fn service_ports(input: &ProxyInput) -> Result<Vec<SvcPort>, ProxyError> {
    // Endpoints by (namespace, service name, port name, protocol) → ip:port → endpoint.
    type Key = (String, String, String, Proto);
    let mut eps: BTreeMap<Key, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for (index, v) in input.endpoint_slices.iter().enumerate() {
        let slice: EndpointSlice =
            serde_json::from_value(v.clone()).map_err(|source| ProxyError::Decode {
                kind: "EndpointSlice",
                index,
                source,
            })?;
        if slice.address_type != "IPv4" {
            continue;
        }
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let Some(svc) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .cloned()
        else {
            continue;
        };
        for port in slice.ports.iter().flatten() {
            let (Some(p), Some(proto)) = (port.port, proto_of(port.protocol.as_deref())) else {
                continue;
            };
            let Ok(p) = u16::try_from(p) else { continue };
            let key = (
                ns.clone(),
                svc.clone(),
                port.name.clone().unwrap_or_default(),
                proto,
            );
            let entry = eps.entry(key).or_default();
            for ep in &slice.endpoints {
                let cond = ep.conditions.as_ref();
                let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                let local = ep.node_name.as_deref() == Some(input.node_name.as_str());
                // kube-proxy uses the first address of each endpoint.
                let Some(addr) = ep.addresses.first() else {
                    continue;
                };
                let Some(ip) = parse_ipv4("endpoints.addresses", addr)? else {
                    continue;
                };
                let e = Endpoint {
                    ip,
                    port: p,
                    ready,
                    serving,
                    terminating,
                    local,
                };
                entry.entry(e.addr()).or_insert(e);
            }
        }
    }

    let mut out = Vec::new();
    for (index, v) in input.services.iter().enumerate() {
        let svc: Service =
            serde_json::from_value(v.clone()).map_err(|source| ProxyError::Decode {
                kind: "Service",
                index,
                source,
            })?;
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cip = spec.cluster_ip.clone().unwrap_or_default();
        if cip.is_empty() || cip == "None" {
            continue;
        }
        let Some(cluster_ip) = parse_ipv4("spec.clusterIP", &cip)? else {
            continue;
        };
        let mut external_ips = Vec::new();
        for e in spec.external_ips.iter().flatten() {
            if let Some(ip) = parse_ipv4("spec.externalIPs", e)? {
                external_ips.push(ip);
            }
        }
        let mut lb_ips = Vec::new();
        if spec.type_.as_deref() == Some("LoadBalancer") {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.as_ref());
            for ing in ingress.into_iter().flatten() {
                // §9.2: only VIP-style load balancers get rules.
                if ing.ip_mode.as_deref() == Some("Proxy") {
                    continue;
                }
                if let Some(ip) = ing.ip.as_deref() {
                    if let Some(ip) = parse_ipv4("status.loadBalancer.ingress.ip", ip)? {
                        lb_ips.push(ip);
                    }
                }
            }
        }
        let mut lb_source_ranges = Vec::new();
        for r in spec.load_balancer_source_ranges.iter().flatten() {
            if r.contains(':') {
                continue;
            }
            lb_source_ranges.push(Cidr::parse(r.trim()).ok_or_else(|| {
                ProxyError::InvalidAddress {
                    field: "spec.loadBalancerSourceRanges".to_string(),
                    value: r.clone(),
                }
            })?);
        }
        let affinity_s = if spec.session_affinity.as_deref() == Some("ClientIP") {
            let t = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(10800);
            Some(u32::try_from(t).unwrap_or(10800))
        } else {
            None
        };
        for port in spec.ports.iter().flatten() {
            let Some(proto) = proto_of(port.protocol.as_deref()) else {
                continue;
            };
            let Ok(p) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let spn = if port_name.is_empty() {
                format!("{ns}/{name}")
            } else {
                format!("{ns}/{name}:{port_name}")
            };
            let node_port = port
                .node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0);
            let mut sp = SvcPort {
                spn,
                proto,
                cluster_ip,
                port: p,
                node_port,
                external_ips: external_ips.clone(),
                lb_ips: lb_ips.clone(),
                lb_source_ranges: lb_source_ranges.clone(),
                affinity_s,
                ext_local: false,
                int_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                health_check_node_port: None,
                endpoints: eps
                    .get(&(ns.clone(), name.clone(), port_name, proto))
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default(),
            };
            sp.ext_local = spec.external_traffic_policy.as_deref() == Some("Local")
                && sp.externally_accessible();
            if sp.ext_local {
                sp.health_check_node_port = spec
                    .health_check_node_port
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0);
            }
            out.push(sp);
        }
    }
    out.sort_by(|a, b| (&a.spn, a.proto).cmp(&(&b.spn, b.proto)));
    Ok(out)
}
