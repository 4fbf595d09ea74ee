//! The stub-resolver side: the `/etc/resolv.conf` the kubelet writes for a pod (§6.15) and the glibc
//! search-list/ndots walk over it (§6.16).
//!
//! Guarantee: pure functions of their arguments; the text is the exact file containerd writes (lines
//! `search`, `nameserver`…, `options`, each only when non-empty, newline-terminated).

use std::net::IpAddr;

/// A pod's `spec.dnsPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsPolicy {
    /// Cluster DNS with the cluster search path (hostNetwork pods fall back to `Default`).
    #[default]
    ClusterFirst,
    /// Cluster DNS even for hostNetwork pods.
    ClusterFirstWithHostNet,
    /// The node's resolv.conf.
    Default,
    /// Only `spec.dnsConfig`.
    None,
}

/// A pod's `spec.dnsConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodDnsConfig {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    /// (name, optional value), e.g. `("ndots", Some("2"))`.
    pub options: Vec<(String, Option<String>)>,
}

/// The node's own resolver configuration (what `Default` copies and `ClusterFirst` appends searches from).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeResolv {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// kubelet limits (pkg/kubelet/network/dns): 3 nameservers, 32 search domains, 2048 characters.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !s.is_empty() && !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// The resolv.conf text for a pod in `namespace`. `cluster_dns` is the kubelet's `clusterDNS` (10.96.0.10),
/// `zone` its `clusterDomain`; `host_network` selects the ClusterFirst fallback.
pub fn resolv_conf(
    dns_policy: DnsPolicy,
    host_network: bool,
    namespace: &str,
    cluster_dns: &[IpAddr],
    zone: &str,
    node: &NodeResolv,
    dns_config: Option<&PodDnsConfig>,
) -> String {
    let zone = zone.trim_end_matches('.');
    let mut nameservers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    let policy = match dns_policy {
        DnsPolicy::ClusterFirst if host_network => DnsPolicy::Default,
        DnsPolicy::ClusterFirstWithHostNet => DnsPolicy::ClusterFirst,
        p => p,
    };
    match policy {
        DnsPolicy::ClusterFirst => {
            for ip in cluster_dns {
                push_unique(&mut nameservers, &ip.to_string());
            }
            for s in [
                format!("{namespace}.svc.{zone}"),
                format!("svc.{zone}"),
                zone.to_string(),
            ] {
                push_unique(&mut searches, &s);
            }
            for s in &node.searches {
                push_unique(&mut searches, s);
            }
            options.push(("ndots".to_string(), Some("5".to_string())));
        }
        DnsPolicy::Default => {
            for n in &node.nameservers {
                push_unique(&mut nameservers, n);
            }
            for s in &node.searches {
                push_unique(&mut searches, s);
            }
            for o in &node.options {
                let (k, v) = match o.split_once(':') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (o.clone(), None),
                };
                options.push((k, v));
            }
        }
        DnsPolicy::None | DnsPolicy::ClusterFirstWithHostNet => {}
    }
    if let Some(c) = dns_config {
        for n in &c.nameservers {
            push_unique(&mut nameservers, n);
        }
        for s in &c.searches {
            push_unique(&mut searches, s);
        }
        for (k, v) in &c.options {
            match options.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => options.push((k.clone(), v.clone())),
            }
        }
    }
    nameservers.truncate(MAX_NAMESERVERS);
    searches.truncate(MAX_SEARCHES);
    while searches.join(" ").len() > MAX_SEARCH_CHARS {
        searches.pop();
    }
    let mut out = String::new();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for n in &nameservers {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !options.is_empty() {
        let opts: Vec<String> = options
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}:{v}"),
                None => k.clone(),
            })
            .collect();
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

/// The fully qualified names glibc's `res_nsearch` tries, in order, for `name`: a trailing dot means only
/// the name itself; at least `ndots` dots means as-is first, then each search suffix; fewer dots means
/// each suffix first, then as-is. The caller moves to the next candidate on NXDOMAIN or NODATA and stops
/// on an answer (or on SERVFAIL/timeouts, which end glibc's walk).
pub fn search_candidates(name: &str, search: &[String], ndots: usize) -> Vec<String> {
    if name.is_empty() {
        return vec![];
    }
    if name.ends_with('.') {
        return vec![name.to_string()];
    }
    let dots = name.matches('.').count();
    let mut out = Vec::new();
    let as_is = format!("{name}.");
    if dots >= ndots {
        out.push(as_is.clone());
    }
    for s in search {
        let s = s.trim_end_matches('.');
        if s.is_empty() {
            continue;
        }
        let c = format!("{name}.{s}.");
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if !out.contains(&as_is) {
        out.push(as_is);
    }
    out
}
