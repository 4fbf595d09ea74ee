//! Workload controllers: Deployment → ReplicaSet → Pod, DaemonSet, StatefulSet
//! (kube-controller-manager's algorithms, simplified where noted).

use std::collections::BTreeSet;
use std::sync::Arc;

use apiserver::json::{self, At, Pointer};
use apiserver::resources::{find, Resource};
use apiserver::{ApiError, PatchType};
use serde_json::{json, Value};

use super::cache::{key_of, object, or_null, str_at, without, Key};
use super::kubelet::{Owner, Timer};
use super::{ignore_not_found, Cluster, ClusterError};

fn res(plural: &str) -> Result<&'static Resource, ApiError> {
    find(plural).ok_or_else(|| ApiError::internal(format!("unknown resource {plural}")))
}

fn i64_at<P: Pointer + ?Sized>(v: &Value, ptr: &P) -> i64 {
    v.at(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// FNV-1a (32-bit) of the template, as `controller.ComputeHash`, encoded with
/// `rand.SafeEncodeString`. The input is our canonical JSON of the template (Go's
/// spew dump cannot be reproduced outside Go; reference 1.11), so values differ from a real
/// cluster's but keep the format (only `4-9bcdf`) and the stability properties.
pub fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(template.to_string().as_bytes());
    if let Some(c) = collision_count {
        let mut b = (c as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0, 0, 0]);
        feed(&b);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| ALPHANUMS[usize::from(d) % 27] as char)
        .collect()
}

/// Built field by field, in key order: `json!` would serialize each borrowed field into a
/// new value, and every pod a controller creates carries one of these.
fn owner_ref(owner: &Value) -> Value {
    object([
        ("apiVersion", or_null(owner.get("apiVersion"))),
        ("blockOwnerDeletion", true.into()),
        ("controller", true.into()),
        ("kind", or_null(owner.get("kind"))),
        ("name", or_null(owner.at(&["metadata", "name"]))),
        ("uid", or_null(owner.at(&["metadata", "uid"]))),
    ])
}

pub(super) fn is_active(pod: &Value) -> bool {
    json::path(pod, &["metadata", "deletionTimestamp"]).is_none()
        && !matches!(
            json::path(pod, &["status", "phase"]).and_then(Value::as_str),
            Some("Succeeded") | Some("Failed")
        )
}

pub fn is_ready(pod: &Value) -> bool {
    json::path(pod, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                json::get(c, "type").and_then(Value::as_str) == Some("Ready")
                    && json::get(c, "status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Resolves an int-or-percent against `total` (`25%` of 3 is 1 for surge, 0 for unavailable).
fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            if round_up {
                (p * total + 99) / 100
            } else {
                p * total / 100
            }
        }
        _ => 0,
    }
}

/// A pod built from a template, as `controller.GetPodFromTemplate` does.
/// The pod shares the template's spec and labels (maps are copied on write): `json!` would
/// have serialized the whole spec into a new tree for every pod.
fn pod_from_template(template: &Value, ns: &str, owner: &Value) -> Value {
    let empty = || Value::Object(serde_json::Map::new());
    let mut metadata = object([
        (
            "labels",
            template
                .at(&["metadata", "labels"])
                .cloned()
                .unwrap_or_else(empty),
        ),
        ("namespace", ns.into()),
        ("ownerReferences", Value::Array(vec![owner_ref(owner)])),
    ]);
    if let Some(a) = template.at(&["metadata", "annotations"]) {
        metadata["annotations"] = a.clone();
    }
    object([
        ("apiVersion", "v1".into()),
        ("kind", "Pod".into()),
        ("metadata", metadata),
        ("spec", template.get("spec").cloned().unwrap_or_else(empty)),
    ])
}

/// A controller's object as the cache has it, with the identity fields every sync needs.
struct Live {
    obj: Arc<Value>,
    uid: String,
    ns: String,
    name: String,
}

impl Cluster {
    /// The apiserver refused a pod create (a missing ServiceAccount, say): as the real
    /// controllers do, record a `FailedCreate` warning and sync the workload again after its
    /// workqueue's back-off (5 ms doubling, capped at 1000 s) instead of stopping. A server
    /// error (the store is down) still stops the simulation.
    async fn create_refused(
        &mut self,
        owner_obj: &Value,
        owner: Owner,
        key: &Key,
        err: ApiError,
        message: String,
        component: &'static str,
    ) -> Result<(), ClusterError> {
        if err.code >= 500 {
            return Err(err.into());
        }
        self.record_event(
            owner_obj,
            "Warning",
            "FailedCreate",
            message,
            component,
            None,
        )
        .await?;
        let n = self
            .create_failures
            .entry((owner, key.clone()))
            .or_insert(0);
        let delay_ms = (5i64 << (*n).min(20)).min(1_000_000);
        *n += 1;
        let at = self.clock.now_ms() + delay_ms;
        self.schedule(
            at,
            Timer::Requeue {
                owner,
                key: key.clone(),
            },
        );
        Ok(())
    }

    /// The object at `key`, unless it is gone or being deleted (the garbage collector's then).
    fn live(&self, plural: &str, key: &str) -> Option<Live> {
        let obj = self.cache.get_shared(plural, key)?;
        if obj.at(&["metadata", "deletionTimestamp"]).is_some() {
            return None;
        }
        let field = |f: &[&str]| str_at(obj, f).unwrap_or_default().to_owned();
        let ns = str_at(obj, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_owned();
        Some(Live {
            uid: field(&["metadata", "uid"]),
            name: field(&["metadata", "name"]),
            ns,
            obj: Arc::clone(obj),
        })
    }

    /// Writes `status` through the status subresource, only when it changed (controllers
    /// must not bump resourceVersions for nothing: that would wake every watcher).
    async fn write_status(
        &mut self,
        plural: &'static str,
        obj: &Value,
        status: Value,
    ) -> Result<(), ClusterError> {
        if obj.get("status") == Some(&status) {
            return Ok(());
        }
        let ns = str_at(obj, &["metadata", "namespace"]);
        let name = str_at(obj, &["metadata", "name"]).unwrap_or_default();
        let mut n = without(obj, &["status"]);
        n["status"] = status;
        let written = ignore_not_found(self.api.update_status(res(plural)?, ns, name, n).await)?;
        let echoed = matches!(plural, "deployments" | "replicasets");
        if let (true, Some(written)) = (echoed, written) {
            let rv = str_at(&written, &["metadata", "resourceVersion"]);
            let only_write = self.api.writes_made() == self.sync_began_at + 1;
            if let (true, Some(rv)) = (only_write, rv) {
                self.own_status_writes
                    .insert(key_of(&written), (plural, rv.to_owned()));
            }
        }
        Ok(())
    }

    async fn scale_rs(&mut self, rs: &Value, to: i64, d: &Value) -> Result<(), ClusterError> {
        let from = i64_at(rs, &["spec", "replicas"]);
        if from == to {
            return Ok(());
        }
        let (ns, name) = (
            str_at(rs, &["metadata", "namespace"]),
            str_at(rs, &["metadata", "name"])
                .unwrap_or_default()
                .to_owned(),
        );
        let replicas = i64_at(d, &["spec", "replicas"]);
        let surge = int_or_percent(
            d.at(&["spec", "strategy", "rollingUpdate", "maxSurge"]),
            replicas,
            true,
        );
        let patch = json!({"metadata": {"annotations": {
            "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
            "deployment.kubernetes.io/max-replicas": (replicas + surge).to_string()}},
            "spec": {"replicas": to}});
        ignore_not_found(
            self.api
                .patch_internal(res("replicasets")?, ns, &name, &patch, PatchType::Merge)
                .await,
        )?;
        let verb = if to > from { "up" } else { "down" };
        self.record_event(
            d,
            "Normal",
            "ScalingReplicaSet",
            format!("Scaled {verb} replica set {name} from {from} to {to}"),
            "deployment-controller",
            None,
        )
        .await
    }

    pub(super) async fn run_deployments(
        &mut self,
        keys: BTreeSet<Key>,
    ) -> Result<(), ClusterError> {
        for key in keys {
            let Some(d) = self.cache.get_shared("deployments", &key).cloned() else {
                continue;
            };
            if d.at(&["metadata", "deletionTimestamp"]).is_some() {
                continue;
            }
            self.sync_began_at = self.api.writes_made();
            self.sync_deployment(&d).await?;
        }
        Ok(())
    }

    async fn sync_deployment(&mut self, d: &Value) -> Result<(), ClusterError> {
        let ns = str_at(d, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_owned();
        let dname = str_at(d, &["metadata", "name"])
            .unwrap_or_default()
            .to_owned();
        let uid = str_at(d, &["metadata", "uid"])
            .unwrap_or_default()
            .to_owned();
        let replicas = i64_at(d, &["spec", "replicas"]);
        let empty = json!({});
        let template = d.at(&["spec", "template"]).unwrap_or(&empty);
        let collisions = d.at(&["status", "collisionCount"]).and_then(Value::as_i64);
        // The template only changes with the spec, which bumps the generation: hash it once
        // per (generation, collisionCount) rather than re-serializing it on every sync.
        let memo_key = (
            uid.clone(),
            i64_at(d, &["metadata", "generation"]),
            collisions,
        );
        let hash = match self.template_hashes.get(&memo_key) {
            Some(h) => h.clone(),
            None => {
                let h = pod_template_hash(template, collisions);
                self.template_hashes.insert(memo_key, h.clone());
                h
            }
        };
        let new_name = format!("{dname}-{hash}");
        let mut all: Vec<Arc<Value>> = self
            .cache
            .owned_by_shared(&uid, "replicasets")
            .into_iter()
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (
                str_at(a, &["metadata", "creationTimestamp"]),
                str_at(a, &["metadata", "name"]),
            )
                .cmp(&(
                    str_at(b, &["metadata", "creationTimestamp"]),
                    str_at(b, &["metadata", "name"]),
                ))
        });
        let new_rs = all
            .iter()
            .find(|r| str_at(r, &["metadata", "name"]) == Some(new_name.as_str()))
            .cloned();
        let olds: Vec<Arc<Value>> = all
            .iter()
            .filter(|r| str_at(r, &["metadata", "name"]) != Some(new_name.as_str()))
            .cloned()
            .collect();
        let revision_of = |r: &Value| -> i64 {
            str_at(
                r,
                &[
                    "metadata",
                    "annotations",
                    "deployment.kubernetes.io/revision",
                ],
            )
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
        };
        let max_old_rev = olds.iter().map(|r| revision_of(r)).max().unwrap_or(0);
        let recreate = str_at(d, &["spec", "strategy", "type"]) == Some("Recreate");
        let surge = if recreate {
            0
        } else {
            int_or_percent(
                d.at(&["spec", "strategy", "rollingUpdate", "maxSurge"]),
                replicas,
                true,
            )
        };
        let mut unavailable = if recreate {
            replicas
        } else {
            int_or_percent(
                d.at(&["spec", "strategy", "rollingUpdate", "maxUnavailable"]),
                replicas,
                false,
            )
        };
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        let old_total: i64 = olds.iter().map(|r| i64_at(r, &["spec", "replicas"])).sum();
        let new_rs = match new_rs {
            Some(r) => r,
            None => {
                if recreate && old_total > 0 {
                    for r in &olds {
                        self.scale_rs(r, 0, d).await?;
                    }
                    return Ok(());
                }
                if recreate && olds.iter().any(|r| i64_at(r, &["status", "replicas"]) > 0) {
                    return Ok(());
                }
                let start = if old_total == 0 {
                    replicas
                } else {
                    (replicas + surge - old_total).clamp(0, replicas)
                };
                let mut labels = template
                    .at(&["metadata", "labels"])
                    .cloned()
                    .unwrap_or(json!({}));
                labels["pod-template-hash"] = json!(hash);
                let mut rs_template = template.clone();
                rs_template["metadata"]["labels"] = labels.clone();
                let mut selector = d.at(&["spec", "selector"]).cloned().unwrap_or(json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": new_name, "namespace": ns, "labels": labels,
                        "annotations": {
                            "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                            "deployment.kubernetes.io/max-replicas": (replicas + surge).to_string(),
                            "deployment.kubernetes.io/revision": (max_old_rev + 1).to_string(),
                        },
                        "ownerReferences": [owner_ref(d)],
                    },
                    "spec": {"replicas": start, "selector": selector, "template": rs_template},
                });
                let created = self
                    .api
                    .create_shared(res("replicasets")?, Some(&ns), rs)
                    .await?;
                let patch = json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": (max_old_rev + 1).to_string()}}});
                self.api
                    .patch_internal(
                        res("deployments")?,
                        Some(&ns),
                        &dname,
                        &patch,
                        PatchType::Merge,
                    )
                    .await?;
                self.record_event(
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {new_name} from 0 to {start}"),
                    "deployment-controller",
                    None,
                )
                .await?;
                created
            }
        };
        // A rollback to an older template makes that ReplicaSet the newest revision again.
        if revision_of(&new_rs) <= max_old_rev {
            let rev = (max_old_rev + 1).to_string();
            let patch =
                json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": rev}}});
            self.api
                .patch_internal(
                    res("replicasets")?,
                    Some(&ns),
                    &new_name,
                    &patch,
                    PatchType::Merge,
                )
                .await?;
            self.api
                .patch_internal(
                    res("deployments")?,
                    Some(&ns),
                    &dname,
                    &patch,
                    PatchType::Merge,
                )
                .await?;
        }
        let new_spec = i64_at(&new_rs, &["spec", "replicas"]);
        if recreate {
            if old_total > 0 {
                for r in &olds {
                    self.scale_rs(r, 0, d).await?;
                }
                return self.deployment_status(d, &new_rs, &olds).await;
            }
            if new_spec != replicas && olds.iter().all(|r| i64_at(r, &["status", "replicas"]) == 0)
            {
                self.scale_rs(&new_rs, replicas, d).await?;
            }
            return self.deployment_status(d, &new_rs, &olds).await;
        }
        // Rolling update: scale the new ReplicaSet up within maxSurge...
        if old_total == 0 {
            if new_spec != replicas {
                self.scale_rs(&new_rs, replicas, d).await?;
            }
        } else {
            let total = old_total + new_spec;
            let max_total = replicas + surge;
            if new_spec < replicas && total < max_total {
                let to = (new_spec + max_total - total).min(replicas);
                self.scale_rs(&new_rs, to, d).await?;
            } else if new_spec > replicas {
                self.scale_rs(&new_rs, replicas, d).await?;
            }
            // ...and the old ones down within maxUnavailable.
            let min_available = replicas - unavailable;
            let new_unavailable =
                (new_spec - i64_at(&new_rs, &["status", "availableReplicas"])).max(0);
            let all_available: i64 = all
                .iter()
                .map(|r| i64_at(r, &["status", "availableReplicas"]))
                .sum();
            let mut budget = all_available - min_available - new_unavailable;
            // Unhealthy old replicas go first: they do not count as available anyway.
            for r in &olds {
                let spec = i64_at(r, &["spec", "replicas"]);
                let unhealthy = spec - i64_at(r, &["status", "availableReplicas"]);
                if spec > 0 && unhealthy > 0 {
                    self.scale_rs(r, spec - unhealthy, d).await?;
                }
            }
            for r in &olds {
                if budget <= 0 {
                    break;
                }
                let spec = i64_at(r, &["status", "availableReplicas"])
                    .min(i64_at(r, &["spec", "replicas"]));
                if spec == 0 {
                    continue;
                }
                let down = spec.min(budget);
                self.scale_rs(r, spec - down, d).await?;
                budget -= down;
            }
        }
        self.deployment_status(d, &new_rs, &olds).await
    }

    async fn deployment_status(
        &mut self,
        d: &Value,
        new_rs: &Value,
        olds: &[Arc<Value>],
    ) -> Result<(), ClusterError> {
        let replicas = i64_at(d, &["spec", "replicas"]);
        let all: Vec<&Value> = olds
            .iter()
            .map(|r| &**r)
            .chain(std::iter::once(new_rs))
            .collect();
        let sum = |p: &[&str]| -> i64 { all.iter().map(|r| i64_at(r, p)).sum() };
        let available = sum(&["status", "availableReplicas"]);
        let unavailable = int_or_percent(
            d.at(&["spec", "strategy", "rollingUpdate", "maxUnavailable"]),
            replicas,
            false,
        );
        let updated = i64_at(new_rs, &["status", "replicas"]);
        let new_name = str_at(new_rs, &["metadata", "name"]).unwrap_or_default();
        let complete = updated == replicas
            && i64_at(new_rs, &["status", "availableReplicas"]) == replicas
            && olds.iter().all(|r| i64_at(r, &["status", "replicas"]) == 0);
        let now = self.clock.now_rfc3339();
        let old_conds = d
            .at(&["status", "conditions"])
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        // Built field by field (this runs on every sync of every Deployment; `json!` would
        // serialize each piece into a new value).
        let cond = |ty: &str, status: &str, reason: &str, message: String| -> Value {
            fn text<'a>(c: &'a Value, k: &str) -> Option<&'a str> {
                json::get(c, k).and_then(Value::as_str)
            }
            let prev = old_conds.iter().find(|c| text(c, "type") == Some(ty));
            let same_status = prev.is_some_and(|p| text(p, "status") == Some(status));
            let same = same_status && prev.is_some_and(|p| text(p, "reason") == Some(reason));
            let now_v = || Value::String(now.clone());
            let kept = |p: &Value, k: &str| json::get(p, k).cloned().unwrap_or_else(now_v);
            let (lut, ltt) = match prev {
                Some(p) if same => (kept(p, "lastUpdateTime"), kept(p, "lastTransitionTime")),
                Some(p) if same_status => (now_v(), kept(p, "lastTransitionTime")),
                _ => (now_v(), now_v()),
            };
            object([
                ("lastTransitionTime", ltt),
                ("lastUpdateTime", lut),
                ("message", message.into()),
                ("reason", reason.into()),
                ("status", status.into()),
                ("type", ty.into()),
            ])
        };
        let available_cond = if available >= replicas - unavailable {
            cond(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            cond(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let progressing = if complete {
            cond(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            )
        } else {
            cond(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new_name}\" is progressing."),
            )
        };
        let mut status = object([
            ("availableReplicas", available.into()),
            (
                "conditions",
                Value::Array(vec![available_cond, progressing]),
            ),
            (
                "observedGeneration",
                or_null(d.at(&["metadata", "generation"])),
            ),
            ("readyReplicas", sum(&["status", "readyReplicas"]).into()),
            ("replicas", sum(&["status", "replicas"]).into()),
            ("updatedReplicas", updated.into()),
        ]);
        let unavail = (replicas.max(sum(&["status", "replicas"])) - available).max(0);
        if unavail > 0 {
            status["unavailableReplicas"] = json!(unavail);
        }
        strip_zero(
            &mut status,
            &[
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ],
        );
        self.write_status("deployments", d, status).await?;
        Ok(())
    }

    pub(super) async fn run_replicasets(
        &mut self,
        keys: BTreeSet<Key>,
    ) -> Result<(), ClusterError> {
        for key in keys {
            let Some(Live {
                obj: rs,
                uid,
                ns,
                name,
            }) = self.live("replicasets", &key)
            else {
                continue;
            };
            self.sync_began_at = self.api.writes_made();
            let mut pods: Vec<(Arc<Value>, bool)> = self
                .cache
                .owned_pods(&uid)
                .filter(|(_, f)| f.active)
                .map(|(p, f)| (Arc::clone(p), f.ready))
                .collect();
            let want = i64_at(&rs, &["spec", "replicas"]);
            let diff = want - pods.len() as i64;
            if diff > 0 {
                let template = rs.at(&["spec", "template"]).cloned().unwrap_or(json!({}));
                for _ in 0..diff {
                    let mut pod = pod_from_template(&template, &ns, &rs);
                    pod["metadata"]["generateName"] = json!(format!("{name}-"));
                    let created = match self.api.create_shared(res("pods")?, Some(&ns), pod).await {
                        Ok(c) => c,
                        Err(e) => {
                            let msg = format!("Error creating: {}", e.message);
                            self.create_refused(
                                &rs,
                                Owner::ReplicaSet,
                                &key,
                                e,
                                msg,
                                "replicaset-controller",
                            )
                            .await?;
                            break;
                        }
                    };
                    self.create_failures
                        .remove(&(Owner::ReplicaSet, key.clone()));
                    let pname = str_at(&created, &["metadata", "name"])
                        .unwrap_or_default()
                        .to_owned();
                    self.record_event(
                        &rs,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {pname}"),
                        "replicaset-controller",
                        None,
                    )
                    .await?;
                }
            } else if diff < 0 {
                // controller.ActivePods ranking: unscheduled, pending, not ready, newest go first.
                pods.sort_by_key(|(p, ready)| {
                    let scheduled = str_at(p, &["spec", "nodeName"]).is_some();
                    let phase = match str_at(p, &["status", "phase"]) {
                        Some("Pending") => 0,
                        Some("Running") => 2,
                        _ => 1,
                    };
                    let ts = std::cmp::Reverse(
                        str_at(p, &["metadata", "creationTimestamp"])
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    (scheduled, phase, *ready, ts, key_of(p))
                });
                for (p, _) in pods.iter().take((-diff) as usize) {
                    let pname = str_at(p, &["metadata", "name"])
                        .unwrap_or_default()
                        .to_owned();
                    ignore_not_found(self.api.delete(res("pods")?, Some(&ns), &pname, None).await)?;
                    self.record_event(
                        &rs,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {pname}"),
                        "replicaset-controller",
                        None,
                    )
                    .await?;
                }
            }
            // The status counts what the cache shows: this pass's creates and deletes reach
            // it in the next round, which runs this ReplicaSet again (its pods changed).
            let ready = pods.iter().filter(|(_, ready)| *ready).count() as i64;
            let mut status = object([
                ("availableReplicas", ready.into()),
                ("fullyLabeledReplicas", pods.len().into()),
                (
                    "observedGeneration",
                    or_null(rs.at(&["metadata", "generation"])),
                ),
                ("readyReplicas", ready.into()),
                ("replicas", pods.len().into()),
            ]);
            strip_zero(
                &mut status,
                &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
            );
            self.write_status("replicasets", &rs, status).await?;
        }
        Ok(())
    }

    pub(super) async fn run_daemonsets(&mut self, keys: BTreeSet<Key>) -> Result<(), ClusterError> {
        for key in keys {
            let Some(Live {
                obj: ds,
                uid,
                ns,
                name,
            }) = self.live("daemonsets", &key)
            else {
                continue;
            };
            let generation = i64_at(&ds, &["metadata", "generation"]);
            let template = ds.at(&["spec", "template"]).cloned().unwrap_or(json!({}));
            let hash = pod_template_hash(&template, None);
            let tolerations = daemon_tolerations(template.at(&["spec", "tolerations"]));
            let nodes: Vec<String> = self
                .cache
                .all("nodes")
                .filter(|n| super::scheduler::tolerates_all(n, &tolerations, true))
                .filter(|n| {
                    super::scheduler::node_selector_matches(
                        n,
                        template.at(&["spec", "nodeSelector"]),
                    )
                })
                .filter_map(|n| str_at(n, &["metadata", "name"]).map(str::to_owned))
                .collect();
            let pods: Vec<Arc<Value>> = self
                .cache
                .owned_by_shared(&uid, "pods")
                .into_iter()
                .filter(|p| is_active(p))
                .cloned()
                .collect();
            let node_of = |p: &Value| -> String {
                super::scheduler::required_node_name(p)
                    .or_else(|| str_at(p, &["spec", "nodeName"]))
                    .unwrap_or_default()
                    .to_owned()
            };
            let covered: std::collections::BTreeSet<String> =
                pods.iter().map(|p| node_of(p)).collect();
            for node in &nodes {
                if covered.contains(node) {
                    continue;
                }
                let mut pod = pod_from_template(&template, &ns, &ds);
                pod["metadata"]["generateName"] = json!(format!("{name}-"));
                pod["metadata"]["labels"]["controller-revision-hash"] = json!(hash);
                pod["metadata"]["labels"]["pod-template-generation"] =
                    json!(generation.to_string());
                pod["spec"]["tolerations"] = json!(tolerations);
                pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}});
                let created = match self.api.create(res("pods")?, Some(&ns), pod).await {
                    Ok(c) => c,
                    Err(e) => {
                        let msg = format!("Error creating: {}", e.message);
                        self.create_refused(
                            &ds,
                            Owner::DaemonSet,
                            &key,
                            e,
                            msg,
                            "daemonset-controller",
                        )
                        .await?;
                        break;
                    }
                };
                self.create_failures
                    .remove(&(Owner::DaemonSet, key.clone()));
                let pname = str_at(&created, &["metadata", "name"])
                    .unwrap_or_default()
                    .to_owned();
                self.record_event(
                    &ds,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created pod: {pname}"),
                    "daemonset-controller",
                    None,
                )
                .await?;
            }
            // Rolling update, maxUnavailable 1: replace one outdated pod once all are ready.
            let outdated: Vec<&Value> = pods
                .iter()
                .map(|p| &**p)
                .filter(|p| {
                    str_at(p, &["metadata", "labels", "controller-revision-hash"])
                        != Some(hash.as_str())
                })
                .collect();
            if let Some(p) = outdated.first() {
                if pods.iter().all(|p| is_ready(p)) && pods.len() >= nodes.len() {
                    let pname = str_at(p, &["metadata", "name"])
                        .unwrap_or_default()
                        .to_owned();
                    ignore_not_found(self.api.delete(res("pods")?, Some(&ns), &pname, None).await)?;
                }
            }
            let pods: Vec<&Value> = self
                .cache
                .owned_by(&uid, "pods")
                .into_iter()
                .filter(|p| is_active(p))
                .collect();
            let ready = pods.iter().filter(|p| is_ready(p)).count();
            let updated = pods
                .iter()
                .filter(|p| {
                    str_at(p, &["metadata", "labels", "controller-revision-hash"])
                        == Some(hash.as_str())
                })
                .count();
            let scheduled = pods
                .iter()
                .filter(|p| str_at(p, &["spec", "nodeName"]).is_some())
                .count();
            let status = json!({
                "currentNumberScheduled": scheduled, "desiredNumberScheduled": nodes.len(), "numberMisscheduled": 0,
                "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": updated,
                "observedGeneration": generation,
            });
            self.write_status("daemonsets", &ds, status).await?;
        }
        Ok(())
    }

    pub(super) async fn run_statefulsets(
        &mut self,
        keys: BTreeSet<Key>,
    ) -> Result<(), ClusterError> {
        for key in keys {
            let Some(Live {
                obj: sts,
                uid,
                ns,
                name,
            }) = self.live("statefulsets", &key)
            else {
                continue;
            };
            let replicas = i64_at(&sts, &["spec", "replicas"]);
            let parallel = str_at(&sts, &["spec", "podManagementPolicy"]) == Some("Parallel");
            let template = sts.at(&["spec", "template"]).cloned().unwrap_or(json!({}));
            let revision = format!("{name}-{}", pod_template_hash(&template, None));
            let pods: Vec<Arc<Value>> = self
                .cache
                .owned_by_shared(&uid, "pods")
                .into_iter()
                .cloned()
                .collect();
            let ordinal = |p: &Value| -> i64 {
                str_at(p, &["metadata", "name"])
                    .and_then(|n| n.rsplit('-').next())
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(-1)
            };
            let find_pod = |i: i64| pods.iter().find(|p| ordinal(p) == i);
            let mut blocked = false;
            for i in 0..replicas {
                match find_pod(i) {
                    None => {
                        let pname = format!("{name}-{i}");
                        let mut pod = pod_from_template(&template, &ns, &sts);
                        // GetPodFromTemplate's generateName stays beside the ordinal name.
                        pod["metadata"]["generateName"] = json!(format!("{name}-"));
                        pod["metadata"]["name"] = json!(pname);
                        let labels = &mut pod["metadata"]["labels"];
                        labels["controller-revision-hash"] = json!(revision);
                        labels["statefulset.kubernetes.io/pod-name"] = json!(pname);
                        labels["apps.kubernetes.io/pod-index"] = json!(i.to_string());
                        pod["spec"]["hostname"] = json!(pname);
                        if let Some(svc) = str_at(&sts, &["spec", "serviceName"]) {
                            pod["spec"]["subdomain"] = json!(svc);
                        }
                        match self.api.create(res("pods")?, Some(&ns), pod).await {
                            Ok(_) => {
                                self.create_failures
                                    .remove(&(Owner::StatefulSet, key.clone()));
                            }
                            Err(e) if e.code == 404 || e.code == 409 => {}
                            Err(e) => {
                                let msg = format!(
                                    "create Pod {pname} in StatefulSet {name} failed error: {}",
                                    e.message
                                );
                                self.create_refused(
                                    &sts,
                                    Owner::StatefulSet,
                                    &key,
                                    e,
                                    msg,
                                    "statefulset-controller",
                                )
                                .await?;
                                break;
                            }
                        }
                        self.record_event(
                            &sts,
                            "Normal",
                            "SuccessfulCreate",
                            format!("create Pod {pname} in StatefulSet {name} successful"),
                            "statefulset-controller",
                            None,
                        )
                        .await?;
                        if !parallel {
                            blocked = true;
                            break;
                        }
                    }
                    Some(p) if !(parallel || is_ready(p) && is_active(p)) => {
                        blocked = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !blocked {
                // Scale down from the highest ordinal. OrderedReady deletes one pod and waits
                // until it is gone before the next (a terminating one blocks); Parallel
                // deletes them all at once.
                let mut condemned: Vec<&Value> = pods
                    .iter()
                    .map(|p| &**p)
                    .filter(|p| ordinal(p) >= replicas)
                    .collect();
                condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
                for p in &condemned {
                    if p.at(&["metadata", "deletionTimestamp"]).is_some() {
                        if parallel {
                            continue;
                        }
                        break;
                    }
                    let pname = str_at(p, &["metadata", "name"])
                        .unwrap_or_default()
                        .to_owned();
                    ignore_not_found(self.api.delete(res("pods")?, Some(&ns), &pname, None).await)?;
                    self.record_event(
                        &sts,
                        "Normal",
                        "SuccessfulDelete",
                        format!("delete Pod {pname} in StatefulSet {name} successful"),
                        "statefulset-controller",
                        None,
                    )
                    .await?;
                    if !parallel {
                        break;
                    }
                }
                if condemned.is_empty() && pods.iter().all(|p| is_active(p)) {
                    // Rolling update: the highest outdated ordinal is replaced first.
                    let mut outdated: Vec<&Value> = pods
                        .iter()
                        .map(|p| &**p)
                        .filter(|p| {
                            ordinal(p) < replicas
                                && str_at(p, &["metadata", "labels", "controller-revision-hash"])
                                    != Some(revision.as_str())
                        })
                        .collect();
                    outdated.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
                    if let Some(p) = outdated.first() {
                        let pname = str_at(p, &["metadata", "name"])
                            .unwrap_or_default()
                            .to_owned();
                        ignore_not_found(
                            self.api.delete(res("pods")?, Some(&ns), &pname, None).await,
                        )?;
                    }
                }
            }
            let pods: Vec<&Value> = self
                .cache
                .owned_by(&uid, "pods")
                .into_iter()
                .filter(|p| is_active(p))
                .collect();
            let ready = pods.iter().filter(|p| is_ready(p)).count();
            let updated = pods
                .iter()
                .filter(|p| {
                    str_at(p, &["metadata", "labels", "controller-revision-hash"])
                        == Some(revision.as_str())
                })
                .count();
            let mut status = json!({
                "replicas": pods.len(), "readyReplicas": ready, "currentReplicas": updated, "updatedReplicas": updated,
                "availableReplicas": ready, "currentRevision": revision, "updateRevision": revision,
                "observedGeneration": sts.at(&["metadata", "generation"]), "collisionCount": 0,
            });
            strip_zero(
                &mut status,
                &["readyReplicas", "currentReplicas", "updatedReplicas"],
            );
            self.write_status("statefulsets", &sts, status).await?;
        }
        Ok(())
    }
}

/// Zero counts are omitted (`omitempty`), as the real status objects show them.
fn strip_zero(status: &mut Value, keys: &[&str]) {
    if let Some(m) = status.as_object_mut() {
        for k in keys {
            if m.get(*k).and_then(Value::as_i64) == Some(0) {
                m.remove(*k);
            }
        }
    }
}

/// The tolerations the DaemonSet controller adds to every daemon pod.
fn daemon_tolerations(existing: Option<&Value>) -> Vec<Value> {
    let mut out: Vec<Value> = existing
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        if !out.iter().any(|t| t.get("key") == Some(&json!(key))) {
            out.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hash_has_the_real_alphabet_and_is_stable() {
        let t = json!({"metadata": {"labels": {"app": "myapp"}}, "spec": {"containers": [{"name": "myapp", "image": "wangyanglinux/myapp:v2"}]}});
        let h = pod_template_hash(&t, None);
        assert_eq!(h, pod_template_hash(&t.clone(), None));
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
        assert!((1..=10).contains(&h.len()));
        let mut t2 = t.clone();
        t2["spec"]["containers"][0]["image"] = json!("wangyanglinux/myapp:v3");
        assert_ne!(h, pod_template_hash(&t2, None));
        assert_ne!(h, pod_template_hash(&t, Some(1)));
    }

    #[test]
    fn percentages_round_like_the_deployment_controller() {
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, true), 1);
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, false), 0);
        assert_eq!(int_or_percent(Some(&json!("25%")), 5, true), 2);
        assert_eq!(int_or_percent(Some(&json!(2)), 5, false), 2);
    }
}
