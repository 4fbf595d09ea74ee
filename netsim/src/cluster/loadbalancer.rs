//! A built-in LoadBalancer implementation, MetalLB-like in layer-2 mode: the controller
//! hands out addresses from a pool on the node network (lowest free first) into
//! `status.loadBalancer.ingress`, and one elected node answers for each address.
//! Until it assigns one (or with no pool left), EXTERNAL-IP stays `<pending>`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use apiserver::json::At;
use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};

use super::cache::{str_at, Key};
use super::{ignore_not_found, split_key, Cluster, ClusterError};

fn ingress_ips(svc: &Value) -> Vec<Ipv4Addr> {
    svc.at(&["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| str_at(i, &["ip"]).and_then(|s| s.parse().ok()))
        .collect()
}

impl Cluster {
    pub(super) async fn run_loadbalancers(
        &mut self,
        keys: &BTreeSet<Key>,
    ) -> Result<(), ClusterError> {
        let Some((first, last)) = self.config.lb_pool else {
            return Ok(());
        };
        let svc_res = find("services").ok_or_else(|| ApiError::internal("no services"))?;
        for key in keys {
            let Some(svc) = self.cache.get_shared("services", key).cloned() else {
                continue;
            };
            let wants = str_at(&svc, &["spec", "type"]) == Some("LoadBalancer");
            let has = ingress_ips(&svc);
            if wants != has.is_empty() {
                continue;
            }
            let mut n = (*svc).clone();
            if wants {
                let used: BTreeSet<Ipv4Addr> =
                    self.cache.all("services").flat_map(ingress_ips).collect();
                let free = (u32::from(first)..=u32::from(last))
                    .map(Ipv4Addr::from)
                    .find(|ip| !used.contains(ip));
                let Some(ip) = free else { continue };
                n["status"]["loadBalancer"] =
                    json!({"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]});
            } else {
                // No longer a LoadBalancer: the address goes back to the pool.
                n["status"]["loadBalancer"] = json!({});
            }
            let (ns, name) = split_key(key);
            ignore_not_found(self.api.update_status(svc_res, ns, name, n).await)?;
        }
        Ok(())
    }

    /// The speaker node for each LoadBalancer address: among eligible nodes (for
    /// `externalTrafficPolicy: Local`, those with a ready local endpoint), the one whose
    /// hash with the address is lowest — stable, and spread over nodes like MetalLB's.
    pub fn lb_speakers(&self) -> BTreeMap<Ipv4Addr, String> {
        let mut out = BTreeMap::new();
        for svc in self.cache.all("services") {
            let local = str_at(svc, &["spec", "externalTrafficPolicy"]) == Some("Local");
            let ns = str_at(svc, &["metadata", "namespace"]).unwrap_or_default();
            let name = str_at(svc, &["metadata", "name"]).unwrap_or_default();
            let endpoint_nodes: BTreeSet<String> = self
                .cache
                .in_ns("endpointslices", ns)
                .filter(|s| {
                    str_at(s, &["metadata", "labels", "kubernetes.io/service-name"]) == Some(name)
                })
                .flat_map(|s| {
                    s.get("endpoints")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter(|e| e.at(&["conditions", "ready"]) == Some(&json!(true)))
                .filter_map(|e| str_at(&e, &["nodeName"]).map(str::to_owned))
                .collect();
            for ip in ingress_ips(svc) {
                let best = self
                    .cache
                    .all("nodes")
                    .filter(|n| {
                        n.at(&[
                            "metadata",
                            "labels",
                            "node.kubernetes.io/exclude-from-external-load-balancers",
                        ])
                        .is_none()
                    })
                    .filter_map(|n| str_at(n, &["metadata", "name"]))
                    .filter(|n| !local || endpoint_nodes.contains(*n))
                    .min_by_key(|n| fnv(&format!("{n}#{ip}")));
                if let Some(n) = best {
                    out.insert(ip, n.to_owned());
                }
            }
        }
        out
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
