//! Endpoints and EndpointSlice controllers: a Service's selected pods, ready ones in
//! `addresses`, the rest in `notReadyAddresses` (slices: conditions), targetPorts resolved
//! against each pod's named container ports (reference §7).

use std::collections::BTreeSet;
use std::sync::Arc;

use apiserver::json::At;
use apiserver::reaper::Garbage;
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
            .at(&["spec", "containers"])
            .and_then(Value::as_array)?
            .iter()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|p| p.get("containerPort").and_then(Value::as_i64)),
        _ => None,
    }
}

/// The Service's `spec.ports` (none if it has none).
fn service_ports(svc: &Value) -> &[Value] {
    svc.at(&["spec", "ports"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// What one pod contributes to one Service's Endpoints and EndpointSlice, kept between
/// syncs: a Service with many pods is synced once per pod that changes, and rebuilding
/// every other pod's entry each time was a large part of its work. An entry is reused
/// while the Service and the pod are the very objects it was built from (the informer
/// replaces an object's `Arc` when it changes), so it is never stale, and reusing it reads
/// neither object.
pub(super) struct PodEndpoint {
    /// The pod's key: a Service's entries are kept in key order, the order the label index
    /// gives its pods in, so that a sync pairs them up in one pass.
    key: Key,
    svc: Arc<Value>,
    pod: Arc<Value>,
    /// What the pod shows, if it is shown at all (it has an IP, has not finished, and is
    /// not terminating unless the Service publishes not-ready addresses).
    shown: Option<Shown>,
}

struct Shown {
    ip: String,
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
        name: &str,
        publish_not_ready: bool,
        key: &Key,
        p: &Arc<Value>,
    ) -> PodEndpoint {
        let terminating = p.at(&["metadata", "deletionTimestamp"]).is_some();
        let ip = str_at(p, &["status", "podIP"]).filter(|_| {
            !matches!(
                str_at(p, &["status", "phase"]),
                Some("Succeeded") | Some("Failed")
            ) && (publish_not_ready || !terminating)
        });
        PodEndpoint {
            key: key.clone(),
            svc: Arc::clone(svc),
            pod: Arc::clone(p),
            shown: ip.map(|ip| Shown::new(svc, name, publish_not_ready, terminating, ip, p)),
        }
    }
}

impl Shown {
    fn new(
        svc: &Value,
        name: &str,
        publish_not_ready: bool,
        terminating: bool,
        ip: &str,
        p: &Value,
    ) -> Shown {
        let ns = str_at(p, &["metadata", "namespace"]).unwrap_or("default");
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
            ("name", or_null(p.at(&["metadata", "name"]))),
            ("namespace", ns.into()),
            ("uid", or_null(p.at(&["metadata", "uid"]))),
        ]);
        let node_name = or_null(p.at(&["spec", "nodeName"]));
        let mut address = object([
            ("ip", ip.into()),
            ("nodeName", node_name.clone()),
            ("targetRef", target_ref.clone()),
        ]);
        let hostname = str_at(p, &["spec", "hostname"])
            .filter(|_| str_at(p, &["spec", "subdomain"]) == Some(name));
        if let Some(h) = hostname {
            address["hostname"] = h.into();
        }
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
        Shown {
            ip: ip.to_owned(),
            ports,
            ready,
            address,
            slice_endpoint,
        }
    }
}

/// A Service's entries for `pods` (its selected pods, in key order), reusing those of
/// `old` (the last sync's, in the same order) that are still current. The rest go to
/// `garbage`: an entry can hold the last reference to an old version of its pod.
fn pod_endpoints(
    old: Vec<PodEndpoint>,
    pods: &[(&Key, &Arc<Value>)],
    svc: &Arc<Value>,
    name: &str,
    publish_not_ready: bool,
    garbage: &mut Garbage<PodEndpoint>,
) -> Vec<PodEndpoint> {
    let mut old = old.into_iter().peekable();
    let mut out: Vec<PodEndpoint> = Vec::with_capacity(pods.len());
    for &(key, p) in pods {
        // Both in key order: entries before this pod are pods that left.
        while let Some(left) = old.next_if(|e| e.key < *key) {
            garbage.push(left);
        }
        let kept = match old.next_if(|e| e.key == *key) {
            Some(e) if Arc::ptr_eq(&e.pod, p) && Arc::ptr_eq(&e.svc, svc) => Some(e),
            Some(stale) => {
                garbage.push(stale);
                None
            }
            None => None,
        };
        let e = kept.unwrap_or_else(|| {
            let mut e = PodEndpoint::new(svc, name, publish_not_ready, key, p);
            // A new entry resolving the Service's ports as another does shares that copy,
            // so that the sync's grouping by port set compares them by pointer.
            if let Some(shown) = &mut e.shown {
                let same = out
                    .iter()
                    .filter_map(|o| o.shown.as_ref())
                    .find(|o| o.ports == shown.ports);
                if let Some(o) = same {
                    shown.ports.clone_from(&o.ports);
                }
            }
            e
        });
        out.push(e);
    }
    old.for_each(|left| garbage.push(left));
    out
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
                .at(&["spec", "selector"])
                .and_then(Value::as_object)
                .filter(|s| !s.is_empty())
            else {
                self.endpoint_memo.remove(&key);
                continue;
            };
            if str_at(&svc, &["spec", "type"]) == Some("ExternalName") {
                self.endpoint_memo.remove(&key);
                continue;
            }
            let publish_not_ready = svc
                .at(&["spec", "publishNotReadyAddresses"])
                .and_then(Value::as_bool)
                == Some(true);
            let headless = str_at(&svc, &["spec", "clusterIP"]) == Some("None");
            let pods = self.cache.pods_matching(&ns, selector);
            let old = self.endpoint_memo.remove(&key).unwrap_or_default();
            let entries = pod_endpoints(
                old,
                &pods,
                &svc,
                &name,
                publish_not_ready,
                &mut self.endpoint_garbage,
            );
            // The shown pods, by IP.
            let mut shown: Vec<&Shown> = entries.iter().filter_map(|e| e.shown.as_ref()).collect();
            shown.sort_by(|a, b| a.ip.cmp(&b.ip));

            // Endpoints (legacy): one subset per distinct resolved port set.
            let mut subsets: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = Vec::new();
            let mut slice_eps = Vec::new();
            let mut slice_ports: Option<Vec<Value>> = None;
            let has_ports = !service_ports(&svc).is_empty();
            for m in shown {
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
            self.endpoint_memo.insert(key.clone(), entries);
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
            let mut labels = svc
                .at(&["metadata", "labels"])
                .cloned()
                .unwrap_or(json!({}));
            if headless {
                labels["service.kubernetes.io/headless"] = json!("");
            }
            // An empty label map is left out, as `omitempty` does on a real Endpoints.
            let metadata = if labels.as_object().is_some_and(|l| l.is_empty()) {
                object([
                    ("name", name.as_str().into()),
                    ("namespace", ns.as_str().into()),
                ])
            } else {
                object([
                    ("labels", labels.clone()),
                    ("name", name.as_str().into()),
                    ("namespace", ns.as_str().into()),
                ])
            };
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
            let existing = str_at(&svc, &["metadata", "uid"])
                .and_then(|uid| {
                    self.cache
                        .owned_by_shared(uid, "endpointslices")
                        .into_iter()
                        .find(|s| {
                            str_at(s, &["metadata", "labels", "kubernetes.io/service-name"])
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
                        || old.at(&["metadata", "labels"]) != ep.at(&["metadata", "labels"])
                    {
                        let mut n = without(&old, &["subsets"]);
                        match ep.at(&["metadata", "labels"]) {
                            Some(l) => n["metadata"]["labels"] = l.clone(),
                            None => {
                                if let Some(m) = n["metadata"].as_object_mut() {
                                    m.remove("labels");
                                }
                            }
                        }
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
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": svc.at(&["metadata", "uid"]), "controller": true, "blockOwnerDeletion": true}]},
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
                        let sname = str_at(&old, &["metadata", "name"])
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
