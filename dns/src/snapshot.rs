//! The index (the "store" layer): Services, EndpointSlices, Pods and Namespaces, read once from their JSON
//! form into ordered maps keyed the way the CoreDNS kubernetes plugin looks them up.
//!
//! Guarantee: building never fails and never panics on malformed objects — a field that is missing or of
//! the wrong shape is treated as absent, as an informer would never have delivered it. Everything is a
//! `BTreeMap`/`Vec`, so iteration (and therefore every answer) is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

/// How `a-b-c-d.<ns>.pod.<zone>` names are answered (the plugin's `pods` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodsMode {
    /// Answer the IP parsed from the name if the namespace exists (kubeadm's Corefile).
    #[default]
    Insecure,
    /// Answer only if a pod with that IP exists in that namespace.
    Verified,
    /// Always NXDOMAIN (the plugin's default when `pods` is not given).
    Disabled,
}

/// What the kubernetes plugin block of the Corefile says, plus the SOA serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Cluster domain, without the final dot (`cluster.local`).
    pub zone: String,
    /// Record TTL (`ttl 30` in kubeadm's Corefile; the plugin default is 5).
    pub ttl: u32,
    pub pods_mode: PodsMode,
    /// SOA serial: Unix time of the last API change, passed in (no clock is read here).
    pub serial: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: "cluster.local".to_string(),
            ttl: 30,
            pods_mode: PodsMode::Insecure,
            serial: 0,
        }
    }
}

/// A port as CoreDNS keeps it: name and protocol compared case-insensitively, `-1` = "no ports" sentinel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    pub name: String,
    pub protocol: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SvcKind {
    ClusterIp(Vec<IpAddr>),
    Headless,
    /// The externalName as written (CoreDNS serves it only if it is not an IP literal).
    ExternalName(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    pub name: String,
    pub namespace: String,
    pub kind: SvcKind,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EpAddr {
    pub ip: IpAddr,
    /// CoreDNS's `endpointHostname`: the endpoint hostname, else the dashed IP.
    pub hostname: String,
}

/// One EndpointSlice reduced to its ready addresses and ports (one `object.Endpoints` in CoreDNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slice {
    pub addrs: Vec<EpAddr>,
    pub ports: Vec<Port>,
}

/// The immutable index one DNS server answers from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) cfg: DnsConfig,
    /// Zone labels, lowercase.
    pub(crate) zone_labels: Vec<Vec<u8>>,
    pub(crate) namespaces: BTreeSet<String>,
    /// key `namespace/name`, lowercase.
    pub(crate) services: BTreeMap<String, Service>,
    /// key `namespace/name`; slices sorted by slice name, addresses by IP.
    pub(crate) endpoints: BTreeMap<String, Vec<Slice>>,
    /// PTR targets (lowercase, no final dot, zone appended at answer time excluded): ClusterIPs first.
    pub(crate) reverse: BTreeMap<IpAddr, Vec<String>>,
    /// pod IP → namespaces of pods with that IP (for `pods verified`).
    pub(crate) pod_ips: BTreeMap<IpAddr, BTreeSet<String>>,
    /// The cluster DNS Service's ClusterIPs (kube-system/kube-dns), for `ns.dns.<zone>` and NS answers.
    pub(crate) dns_ips: Vec<IpAddr>,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(c) => cur = c,
            None => return &[],
        }
    }
    cur.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn parse_port(p: &Value) -> Option<Port> {
    let port = p.get("port")?.as_i64()?;
    Some(Port {
        name: s(p, &["name"]).unwrap_or("").to_ascii_lowercase(),
        protocol: s(p, &["protocol"]).unwrap_or("TCP").to_ascii_lowercase(),
        port: i32::try_from(port).ok()?,
    })
}

/// CoreDNS `endpointHostname`: hostname, else dashed IP (IPv6: `:`→`-`, a trailing `-` gets a `0`).
pub(crate) fn dashed_ip(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let d = v6.to_string().replace(':', "-");
            if d.ends_with('-') {
                d + "0"
            } else {
                d
            }
        }
    }
}

impl Snapshot {
    /// Builds the index from API objects in their JSON form (as `kubectl get -o json` items).
    pub fn from_objects(
        services: &[Value],
        endpoint_slices: &[Value],
        pods: &[Value],
        namespaces: &[Value],
        cfg: &DnsConfig,
    ) -> Snapshot {
        let mut snap = Snapshot {
            cfg: cfg.clone(),
            zone_labels: cfg
                .zone
                .trim_end_matches('.')
                .split('.')
                .filter(|l| !l.is_empty())
                .map(|l| l.to_ascii_lowercase().into_bytes())
                .collect(),
            ..Snapshot::default()
        };
        for ns in namespaces {
            if let Some(n) = s(ns, &["metadata", "name"]) {
                snap.namespaces.insert(n.to_ascii_lowercase());
            }
        }
        // Pod hostname/subdomain by (namespace, name), for endpoints whose slice lacks `hostname`.
        let mut pod_host: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        for p in pods {
            let ns = s(p, &["metadata", "namespace"])
                .unwrap_or("default")
                .to_ascii_lowercase();
            let mut ips: BTreeSet<IpAddr> = BTreeSet::new();
            if let Some(ip) = s(p, &["status", "podIP"]).and_then(|x| x.parse().ok()) {
                ips.insert(ip);
            }
            for e in arr(p, &["status", "podIPs"]) {
                if let Some(ip) = s(e, &["ip"]).and_then(|x| x.parse().ok()) {
                    ips.insert(ip);
                }
            }
            for ip in ips {
                snap.pod_ips.entry(ip).or_default().insert(ns.clone());
            }
            if let (Some(name), Some(h), Some(sd)) = (
                s(p, &["metadata", "name"]),
                s(p, &["spec", "hostname"]),
                s(p, &["spec", "subdomain"]),
            ) {
                pod_host.insert(
                    (ns, name.to_string()),
                    (h.to_ascii_lowercase(), sd.to_ascii_lowercase()),
                );
            }
        }
        for v in services {
            let Some(name) = s(v, &["metadata", "name"]) else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            let namespace = s(v, &["metadata", "namespace"])
                .unwrap_or("default")
                .to_ascii_lowercase();
            let ports = arr(v, &["spec", "ports"])
                .iter()
                .filter_map(parse_port)
                .collect();
            let kind = if s(v, &["spec", "type"]) == Some("ExternalName") {
                SvcKind::ExternalName(s(v, &["spec", "externalName"]).unwrap_or("").to_string())
            } else {
                let mut ips: Vec<String> = arr(v, &["spec", "clusterIPs"])
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
                if ips.is_empty() {
                    if let Some(ip) = s(v, &["spec", "clusterIP"]) {
                        ips.push(ip.to_string());
                    }
                }
                if ips.first().map(String::as_str) == Some("None") {
                    SvcKind::Headless
                } else {
                    SvcKind::ClusterIp(ips.iter().filter_map(|x| x.parse().ok()).collect())
                }
            };
            let svc = Service {
                name: name.clone(),
                namespace: namespace.clone(),
                kind,
                ports,
            };
            snap.services.insert(format!("{namespace}/{name}"), svc);
        }
        // Slices, grouped per service, in slice-name order.
        let mut slices: BTreeMap<String, BTreeMap<String, Slice>> = BTreeMap::new();
        for (i, v) in endpoint_slices.iter().enumerate() {
            let Some(svc) = s(v, &["metadata", "labels", "kubernetes.io/service-name"]) else {
                continue;
            };
            if s(v, &["addressType"]) == Some("FQDN") {
                continue;
            }
            let svc = svc.to_ascii_lowercase();
            let ns = s(v, &["metadata", "namespace"])
                .unwrap_or("default")
                .to_ascii_lowercase();
            let slice_name = s(v, &["metadata", "name"])
                .map(str::to_string)
                .unwrap_or_else(|| format!("~{i:08}"));
            let mut addrs = Vec::new();
            for e in arr(v, &["endpoints"]) {
                // Ready unless explicitly false (EndpointSlice semantics; nil means ready).
                if e.get("conditions")
                    .and_then(|c| c.get("ready"))
                    .and_then(Value::as_bool)
                    == Some(false)
                {
                    continue;
                }
                let mut host = s(e, &["hostname"]).unwrap_or("").to_ascii_lowercase();
                if host.is_empty() && s(e, &["targetRef", "kind"]).unwrap_or("Pod") == "Pod" {
                    if let Some(pod) = s(e, &["targetRef", "name"]) {
                        if let Some((h, sd)) = pod_host.get(&(ns.clone(), pod.to_string())) {
                            if *sd == svc {
                                host = h.clone();
                            }
                        }
                    }
                }
                for a in arr(e, &["addresses"]) {
                    let Some(ip) = a.as_str().and_then(|x| x.parse::<IpAddr>().ok()) else {
                        continue;
                    };
                    let hostname = if host.is_empty() {
                        dashed_ip(&ip)
                    } else {
                        host.clone()
                    };
                    addrs.push(EpAddr { ip, hostname });
                }
            }
            addrs.sort_by_key(|a| a.ip);
            let mut ports: Vec<Port> = arr(v, &["ports"])
                .iter()
                .filter_map(|p| {
                    let port = p
                        .get("port")
                        .and_then(Value::as_i64)
                        .and_then(|x| i32::try_from(x).ok())?;
                    Some(Port {
                        name: s(p, &["name"]).unwrap_or("").to_ascii_lowercase(),
                        protocol: s(p, &["protocol"]).unwrap_or("TCP").to_ascii_lowercase(),
                        port,
                    })
                })
                .collect();
            if ports.is_empty() {
                ports.push(Port {
                    name: String::new(),
                    protocol: String::new(),
                    port: -1,
                });
            }
            slices
                .entry(format!("{ns}/{svc}"))
                .or_default()
                .insert(slice_name, Slice { addrs, ports });
        }
        for (key, m) in slices {
            snap.endpoints.insert(key, m.into_values().collect());
        }
        // Reverse index: ClusterIPs win over endpoint IPs (CoreDNS checks services first).
        let mut by_cluster_ip: BTreeMap<IpAddr, String> = BTreeMap::new();
        for svc in snap.services.values() {
            if let SvcKind::ClusterIp(ips) = &svc.kind {
                for ip in ips {
                    by_cluster_ip
                        .entry(*ip)
                        .or_insert_with(|| format!("{}.{}.svc", svc.name, svc.namespace));
                }
                if svc.namespace == "kube-system" && svc.name == "kube-dns" {
                    snap.dns_ips = ips.clone();
                }
            }
        }
        let mut by_ep: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
        for (key, slices) in &snap.endpoints {
            for sl in slices {
                for a in &sl.addrs {
                    let (ns, name) = key.split_once('/').unwrap_or(("", key.as_str()));
                    let target = format!("{}.{name}.{ns}.svc", a.hostname);
                    let v = by_ep.entry(a.ip).or_default();
                    if !v.contains(&target) {
                        v.push(target);
                    }
                }
            }
        }
        for (ip, t) in by_ep {
            snap.reverse.insert(ip, t);
        }
        for (ip, t) in by_cluster_ip {
            snap.reverse.insert(ip, vec![t]);
        }
        snap
    }

    /// The configuration this snapshot answers with.
    pub fn config(&self) -> &DnsConfig {
        &self.cfg
    }

    /// A rough count of bytes held by the index (strings, vectors and map nodes), for the benchmark.
    pub fn index_bytes_estimate(&self) -> usize {
        let mut n = 0usize;
        for (k, svc) in &self.services {
            n += 64 + k.len() + svc.name.len() + svc.namespace.len() + 64;
            n += svc.ports.len() * (32 + 16);
        }
        for (k, slices) in &self.endpoints {
            n += 64 + k.len();
            for sl in slices {
                n += 48 + sl.ports.len() * 48;
                n += sl
                    .addrs
                    .iter()
                    .map(|a| 48 + a.hostname.len())
                    .sum::<usize>();
            }
        }
        for v in self.reverse.values() {
            n += 64 + v.iter().map(|t| 24 + t.len()).sum::<usize>();
        }
        n += self.pod_ips.len() * 96 + self.namespaces.len() * 64;
        n
    }
}
