//! Endpoints and EndpointSlice controllers: a Service's selected pods, ready ones in
//! `addresses`, the rest in `notReadyAddresses` (slices: conditions), targetPorts resolved
//! against each pod's named container ports (reference §7).

use std::collections::BTreeSet;
use std::sync::Arc;

use apiserver::json::At;
use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};

use super::cache::{object, or_null, str_at, without, Key};
use super::workloads::is_ready;
use super::{ignore_not_found, split_key, Cluster, ClusterError};

fn resolve_target_port(pod: &Value, target: Option<&Value>, port: i64) -> Option<i64> {
    match target {
        None => Some(port),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) => pod
            .at("/spec/containers")
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

/// The Service's `spec.ports` (none if it has none).
fn service_ports(svc: &Value) -> &[Value] {
    svc.at("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// What one pod contributes to one Service's Endpoints and EndpointSlice, kept between
/// syncs: a Service with many pods is synced once per pod that changes, and rebuilding
/// every other pod's entry each time was a large part of its work. An entry is reused
/// while the Service and the pod are the very objects it was built from (the informer
/// replaces an object's `Arc` when it changes), so it is never stale.
pub(super) struct PodEndpoint {
    svc: Arc<Value>,
    pod: Arc<Value>,
    /// The Service's ports resolved against the pod's named container ports.
    ports: Vec<Value>,
    ready: bool,
    /// The Endpoints `addresses`/`notReadyAddresses` entry.
    address: Value,
    /// The EndpointSlice `endpoints` entry.
    slice_endpoint: Value,
}

impl PodEndpoint {
    fn new(
        svc: &Arc<Value>,
        ns: &str,
        name: &str,
        publish_not_ready: bool,
        ip: &str,
        p: &Arc<Value>,
    ) -> PodEndpoint {
        let svc_ports = service_ports(svc);
        let ports: Vec<Value> = svc_ports
            .iter()
            .filter_map(|sp| {
                let port = resolve_target_port(
                    p,
                    sp.get("targetPort"),
                    sp.get("port").and_then(Value::as_i64).unwrap_or(0),
                )?;
                let mut v = object([
                    ("port", port.into()),
                    (
                        "protocol",
                        sp.get("protocol").cloned().unwrap_or_else(|| "TCP".into()),
                    ),
                ]);
                if let Some(n) = sp
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                {
                    v["name"] = n.into();
                }
                Some(v)
            })
            .collect();
        let serving = is_ready(p);
        let ready = serving || publish_not_ready;
        let target_ref = object([
            ("kind", "Pod".into()),
            ("name", or_null(p.at("/metadata/name"))),
            ("namespace", ns.into()),
            ("uid", or_null(p.at("/metadata/uid"))),
        ]);
        let node_name = or_null(p.at("/spec/nodeName"));
        let mut address = object([
            ("ip", ip.into()),
            ("nodeName", node_name.clone()),
            ("targetRef", target_ref.clone()),
        ]);
        let hostname =
            str_at(p, "/spec/hostname").filter(|_| str_at(p, "/spec/subdomain") == Some(name));
        if let Some(h) = hostname {
            address["hostname"] = h.into();
        }
        let terminating = p.at("/metadata/deletionTimestamp").is_some();
        let conditions = object([
            ("ready", (ready && !terminating).into()),
            ("serving", serving.into()),
            ("terminating", terminating.into()),
        ]);
        let mut slice_endpoint = object([
            ("addresses", Value::Array(vec![ip.into()])),
            ("conditions", conditions),
            ("nodeName", node_name),
            ("targetRef", target_ref),
        ]);
        if let Some(h) = hostname {
            slice_endpoint["hostname"] = h.into();
        }
        PodEndpoint {
            svc: Arc::clone(svc),
            pod: Arc::clone(p),
            ports,
            ready,
            address,
            slice_endpoint,
        }
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
                self.endpoint_memo.remove(&key);
                ignore_not_found(self.api.delete(ep_res, Some(&ns), &name, None).await)?;
                continue;
            };
            let Some(selector) = svc
                .at("/spec/selector")
                .and_then(Value::as_object)
                .filter(|s| !s.is_empty())
            else {
                self.endpoint_memo.remove(&key);
                continue;
            };
            if str_at(&svc, "/spec/type") == Some("ExternalName") {
                self.endpoint_memo.remove(&key);
                continue;
            }
            let publish_not_ready = svc
                .at("/spec/publishNotReadyAddresses")
                .and_then(Value::as_bool)
                == Some(true);
            let headless = str_at(&svc, "/spec/clusterIP") == Some("None");
            // (pod IP, pod), sorted by IP: each IP is looked up once, not once per comparison.
            let mut pods: Vec<(&str, &Arc<Value>)> = self
                .cache
                .pods_matching(&ns, selector)
                .into_iter()
                .filter_map(|p| Some((str_at(p, "/status/podIP")?, p)))
                .filter(|(_, p)| {
                    !matches!(
                        str_at(p, "/status/phase"),
                        Some("Succeeded") | Some("Failed")
                    )
                })
                .filter(|(_, p)| publish_not_ready || p.at("/metadata/deletionTimestamp").is_none())
                .collect();
            pods.sort_by(|a, b| a.0.cmp(b.0));

            // Endpoints (legacy): one subset per distinct resolved port set.
            let mut subsets: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = Vec::new();
            let mut slice_eps = Vec::new();
            let mut slice_ports: Option<Vec<Value>> = None;
            let has_ports = !service_ports(&svc).is_empty();
            let memo = self.endpoint_memo.entry(key.clone()).or_default();
            for &(ip, p) in &pods {
                let fresh = memo
                    .get(ip)
                    .is_some_and(|m| Arc::ptr_eq(&m.pod, p) && Arc::ptr_eq(&m.svc, &svc));
                if !fresh {
                    let entry = PodEndpoint::new(&svc, &ns, &name, publish_not_ready, ip, p);
                    memo.insert(ip.to_owned(), entry);
                }
                let Some(m) = memo.get(ip) else { continue };
                if m.ports.is_empty() && has_ports {
                    continue;
                }
                let idx = match subsets.iter().position(|s| s.0 == m.ports) {
                    Some(i) => i,
                    None => {
                        subsets.push((m.ports.clone(), Vec::new(), Vec::new()));
                        subsets.len() - 1
                    }
                };
                if m.ready {
                    subsets[idx].1.push(m.address.clone());
                } else {
                    subsets[idx].2.push(m.address.clone());
                }
                slice_eps.push(m.slice_endpoint.clone());
                if slice_ports.is_none() {
                    slice_ports = Some(
                        m.ports
                            .iter()
                            .map(|pt| {
                                object([
                                    ("name", pt.get("name").cloned().unwrap_or_else(|| "".into())),
                                    ("port", or_null(pt.get("port"))),
                                    ("protocol", or_null(pt.get("protocol"))),
                                ])
                            })
                            .collect(),
                    );
                }
            }
            if memo.len() > pods.len() {
                let current: BTreeSet<&str> = pods.iter().map(|(ip, _)| *ip).collect();
                memo.retain(|ip, _| current.contains(ip.as_str()));
            }
            let svc_ports = service_ports(&svc);
            let subsets: Vec<Value> = subsets
                .into_iter()
                .map(|(ports, ready, not_ready)| {
                    let mut s = json!({});
                    if !ready.is_empty() {
                        s["addresses"] = Value::Array(ready);
                    }
                    if !not_ready.is_empty() {
                        s["notReadyAddresses"] = Value::Array(not_ready);
                    }
                    if !ports.is_empty() {
                        s["ports"] = Value::Array(ports);
                    }
                    s
                })
                .collect();
            let mut labels = svc.at("/metadata/labels").cloned().unwrap_or(json!({}));
            if headless {
                labels["service.kubernetes.io/headless"] = json!("");
            }
            let metadata = object([
                ("labels", labels.clone()),
                ("name", name.as_str().into()),
                ("namespace", ns.as_str().into()),
            ]);
            let mut ep = object([
                ("apiVersion", "v1".into()),
                ("kind", "Endpoints".into()),
                ("metadata", metadata),
            ]);
            if !subsets.is_empty() {
                ep["subsets"] = Value::Array(subsets);
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
                        || old.at("/metadata/labels") != ep.at("/metadata/labels")
                    {
                        let mut n = without(&old, &["subsets"]);
                        n["metadata"]["labels"] = labels.clone();
                        if let Some(s) = ep.as_object_mut().and_then(|m| m.remove("subsets")) {
                            n["subsets"] = s;
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
            let ports: Vec<Value> = slice_ports.unwrap_or_else(|| {
                svc_ports
                    .iter()
                    .map(|sp| {
                        object([
                            ("name", sp.get("name").cloned().unwrap_or_else(|| "".into())),
                            (
                                "port",
                                or_null(
                                    sp.get("targetPort")
                                        .filter(|t| t.is_i64())
                                        .or(sp.get("port")),
                                ),
                            ),
                            ("protocol", or_null(sp.get("protocol"))),
                        ])
                    })
                    .collect()
            });
            match existing {
                None => {
                    let mut slice = json!({
                        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": slice_labels,
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": svc.at("/metadata/uid"), "controller": true, "blockOwnerDeletion": true}]},
                        "addressType": "IPv4",
                    });
                    slice["endpoints"] = Value::Array(slice_eps);
                    slice["ports"] = Value::Array(ports);
                    ignore_not_found(self.api.create(slice_res, Some(&ns), slice).await)?;
                }
                Some(old) => {
                    let old_eps = old
                        .get("endpoints")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                    if old_eps != slice_eps.as_slice()
                        || old.get("ports").and_then(Value::as_array) != Some(&ports)
                    {
                        let sname = str_at(&old, "/metadata/name")
                            .unwrap_or_default()
                            .to_owned();
                        let mut n = without(&old, &["endpoints", "ports"]);
                        n["endpoints"] = Value::Array(slice_eps);
                        n["ports"] = Value::Array(ports);
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
