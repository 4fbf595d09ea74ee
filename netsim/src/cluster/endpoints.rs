//! Endpoints and EndpointSlice controllers: a Service's selected pods, ready ones in
//! `addresses`, the rest in `notReadyAddresses` (slices: conditions), targetPorts resolved
//! against each pod's named container ports (reference §7).

use std::collections::BTreeSet;
use std::sync::Arc;

use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};

use super::cache::{str_at, Key};
use super::workloads::is_ready;
use super::{ignore_not_found, split_key, Cluster, ClusterError};

fn resolve_target_port(pod: &Value, target: Option<&Value>, port: i64) -> Option<i64> {
    match target {
        None => Some(port),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)?
            .iter()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|p| p.get("containerPort").and_then(Value::as_i64)),
        _ => None,
    }
}

impl Cluster {
    pub(super) async fn run_endpoints(&mut self, keys: BTreeSet<Key>) -> Result<(), ClusterError> {
        let ep_res = find("endpoints").ok_or_else(|| ApiError::internal("no endpoints"))?;
        let slice_res =
            find("endpointslices").ok_or_else(|| ApiError::internal("no endpointslices"))?;
        for key in keys {
            let (ns, name) = split_key(&key);
            let ns = ns.unwrap_or("default").to_owned();
            let name = name.to_owned();
            let Some(svc) = self.cache.get_shared("services", &key).cloned() else {
                ignore_not_found(self.api.delete(ep_res, Some(&ns), &name, None).await)?;
                continue;
            };
            let Some(selector) = svc
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .filter(|s| !s.is_empty())
            else {
                continue;
            };
            if str_at(&svc, "/spec/type") == Some("ExternalName") {
                continue;
            }
            let publish_not_ready = svc
                .pointer("/spec/publishNotReadyAddresses")
                .and_then(Value::as_bool)
                == Some(true);
            let headless = str_at(&svc, "/spec/clusterIP") == Some("None");
            let mut pods: Vec<&Value> = self
                .cache
                .pods_matching(&ns, selector)
                .into_iter()
                .filter(|p| str_at(p, "/status/podIP").is_some())
                .filter(|p| {
                    !matches!(
                        str_at(p, "/status/phase"),
                        Some("Succeeded") | Some("Failed")
                    )
                })
                .filter(|p| publish_not_ready || p.pointer("/metadata/deletionTimestamp").is_none())
                .collect();
            pods.sort_by(|a, b| str_at(a, "/status/podIP").cmp(&str_at(b, "/status/podIP")));
            let svc_ports: &[Value] = svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice);

            // Endpoints (legacy): one subset per distinct resolved port set.
            let mut subsets: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = Vec::new();
            let mut slice_eps = Vec::new();
            let mut slice_ports: Option<Vec<Value>> = None;
            for p in &pods {
                let ports: Vec<Value> = svc_ports
                    .iter()
                    .filter_map(|sp| {
                        let port = resolve_target_port(p, sp.get("targetPort"), sp.get("port").and_then(Value::as_i64).unwrap_or(0))?;
                        let mut v = json!({"port": port, "protocol": sp.get("protocol").cloned().unwrap_or(json!("TCP"))});
                        if let Some(n) = sp.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                            v["name"] = json!(n);
                        }
                        Some(v)
                    })
                    .collect();
                if ports.is_empty() && !svc_ports.is_empty() {
                    continue;
                }
                let ready = is_ready(p) || publish_not_ready;
                let ip = str_at(p, "/status/podIP").unwrap_or_default();
                let target_ref = json!({"kind": "Pod", "namespace": ns, "name": p.pointer("/metadata/name"), "uid": p.pointer("/metadata/uid")});
                let mut addr = json!({"ip": ip, "nodeName": p.pointer("/spec/nodeName"), "targetRef": target_ref});
                let hostname = str_at(p, "/spec/hostname")
                    .filter(|_| str_at(p, "/spec/subdomain") == Some(name.as_str()));
                if let Some(h) = hostname {
                    addr["hostname"] = json!(h);
                }
                let idx = match subsets.iter().position(|s| s.0 == ports) {
                    Some(i) => i,
                    None => {
                        subsets.push((ports.clone(), Vec::new(), Vec::new()));
                        subsets.len() - 1
                    }
                };
                if ready {
                    subsets[idx].1.push(addr);
                } else {
                    subsets[idx].2.push(addr);
                }
                let terminating = p.pointer("/metadata/deletionTimestamp").is_some();
                let mut ep = json!({
                    "addresses": [ip],
                    "conditions": {"ready": ready && !terminating, "serving": is_ready(p), "terminating": terminating},
                    "nodeName": p.pointer("/spec/nodeName"), "targetRef": target_ref,
                });
                if let Some(h) = hostname {
                    ep["hostname"] = json!(h);
                }
                slice_eps.push(ep);
                if slice_ports.is_none() {
                    slice_ports = Some(
                        ports
                            .iter()
                            .map(|pt| json!({"name": pt.get("name").cloned().unwrap_or(json!("")), "port": pt.get("port"), "protocol": pt.get("protocol")}))
                            .collect(),
                    );
                }
            }
            let subsets: Vec<Value> = subsets
                .into_iter()
                .map(|(ports, ready, not_ready)| {
                    let mut s = json!({});
                    if !ready.is_empty() {
                        s["addresses"] = json!(ready);
                    }
                    if !not_ready.is_empty() {
                        s["notReadyAddresses"] = json!(not_ready);
                    }
                    if !ports.is_empty() {
                        s["ports"] = json!(ports);
                    }
                    s
                })
                .collect();
            let mut labels = svc
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            if headless {
                labels["service.kubernetes.io/headless"] = json!("");
            }
            let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns, "labels": labels.clone()}});
            if !subsets.is_empty() {
                ep["subsets"] = json!(subsets);
            }
            let old_ep = self.cache.get_shared("endpoints", &key).cloned();
            // The slice is the Service's (ownerReference), so the owner index finds it.
            let existing = str_at(&svc, "/metadata/uid")
                .and_then(|uid| {
                    self.cache
                        .owned_by_shared(uid, "endpointslices")
                        .into_iter()
                        .find(|s| {
                            str_at(s, "/metadata/labels/kubernetes.io~1service-name")
                                == Some(name.as_str())
                        })
                })
                .cloned();
            match old_ep {
                None => {
                    ignore_not_found(self.api.create(ep_res, Some(&ns), ep).await)?;
                }
                Some(old) => {
                    if old.get("subsets") != ep.get("subsets")
                        || old.pointer("/metadata/labels") != ep.pointer("/metadata/labels")
                    {
                        let mut n = Arc::unwrap_or_clone(old);
                        n["metadata"]["labels"] = labels.clone();
                        match ep.get("subsets") {
                            Some(s) => n["subsets"] = s.clone(),
                            None => {
                                if let Some(m) = n.as_object_mut() {
                                    m.remove("subsets");
                                }
                            }
                        }
                        ignore_not_found(
                            self.api
                                .update_shared(ep_res, Some(&ns), &name, n, false)
                                .await,
                        )?;
                    }
                }
            }

            // EndpointSlice: one per Service here (≤100 endpoints is the upstream default; the
            // split of larger services into several slices is not simulated).
            let mut slice_labels = labels.clone();
            slice_labels["kubernetes.io/service-name"] = json!(name);
            slice_labels["endpointslice.kubernetes.io/managed-by"] =
                json!("endpointslice-controller.k8s.io");
            let ports = slice_ports.unwrap_or_else(|| {
                svc_ports
                    .iter()
                    .map(|sp| json!({"name": sp.get("name").cloned().unwrap_or(json!("")), "port": sp.get("targetPort").filter(|t| t.is_i64()).or(sp.get("port")), "protocol": sp.get("protocol")}))
                    .collect()
            });
            let body = json!({"endpoints": slice_eps, "ports": ports});
            match existing {
                None => {
                    let slice = json!({
                        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": slice_labels,
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": svc.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true}]},
                        "addressType": "IPv4", "endpoints": body["endpoints"], "ports": body["ports"],
                    });
                    ignore_not_found(self.api.create(slice_res, Some(&ns), slice).await)?;
                }
                Some(old) => {
                    if old.get("endpoints").unwrap_or(&json!([])) != &body["endpoints"]
                        || old.get("ports") != Some(&body["ports"])
                    {
                        let sname = str_at(&old, "/metadata/name")
                            .unwrap_or_default()
                            .to_owned();
                        let mut n = Arc::unwrap_or_clone(old);
                        n["endpoints"] = body["endpoints"].clone();
                        n["ports"] = body["ports"].clone();
                        ignore_not_found(
                            self.api
                                .update_shared(slice_res, Some(&ns), &sname, n, false)
                                .await,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}
