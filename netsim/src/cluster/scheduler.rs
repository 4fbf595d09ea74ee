//! The scheduler: filter nodes (Ready, schedulable, taints tolerated, nodeSelector, required
//! node affinity on `metadata.name`), then spread — fewest pods of the same owner, then fewest
//! pods overall; ties broken by the seeded RNG, as kube-scheduler picks randomly among
//! equal scores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use apiserver::json::{self, At};
use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};

use super::cache::{str_at, Key};
use super::{ignore_not_found, split_key, Cluster, ClusterError};

/// True if every NoSchedule/NoExecute taint of `node` is tolerated.
pub fn tolerates_all(node: &Value, tolerations: &[Value], ignore_unschedulable: bool) -> bool {
    let unschedulable = node.at(&["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true);
    let taints = node
        .at(&["spec", "taints"])
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    // Built only for a cordoned node: this runs for every node a pod or DaemonSet weighs.
    let cordon = (unschedulable && !ignore_unschedulable)
        .then(|| json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}));
    let cordoned = cordon.as_ref();
    taints
        .iter()
        .chain(cordoned)
        .filter(|t| t.get("effect").and_then(Value::as_str) != Some("PreferNoSchedule"))
        .all(|t| {
            tolerations.iter().any(|tol| {
                let key_ok = match tol.get("key").and_then(Value::as_str) {
                    None | Some("") => {
                        tol.get("operator").and_then(Value::as_str) == Some("Exists")
                    }
                    Some(k) => Some(k) == t.get("key").and_then(Value::as_str),
                };
                let op_ok = match tol
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or("Equal")
                {
                    "Exists" => true,
                    _ => {
                        tol.get("value").and_then(Value::as_str).unwrap_or("")
                            == t.get("value").and_then(Value::as_str).unwrap_or("")
                    }
                };
                let eff_ok = match tol.get("effect").and_then(Value::as_str) {
                    None | Some("") => true,
                    e => e == t.get("effect").and_then(Value::as_str),
                };
                key_ok && op_ok && eff_ok
            })
        })
}

pub fn node_selector_matches(node: &Value, selector: Option<&Value>) -> bool {
    let Some(sel) = selector.and_then(Value::as_object) else {
        return true;
    };
    sel.iter()
        .all(|(k, v)| node.at(&["metadata", "labels"]).and_then(|l| l.get(k)) == Some(v))
}

/// The node a pod's required node affinity names by `metadata.name` (how DaemonSet pods are
/// pinned to their node).
pub(super) fn required_node_name(pod: &Value) -> Option<&str> {
    pod.at(&[
        "spec",
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "nodeSelectorTerms",
        "0",
        "matchFields",
        "0",
        "values",
        "0",
    ])
    .and_then(Value::as_str)
}

fn node_ready(node: &Value) -> bool {
    node.at(&["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                json::get(c, "type").and_then(Value::as_str) == Some("Ready")
                    && json::get(c, "status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// What filters a pod's node choice; pods of one controller share it, so the filtered node
/// list is computed once per distinct constraint set per scheduling pass. The three parts'
/// compact JSON, written into one buffer (no copy of the parts into a new array first).
fn constraints_of(pod: &Value) -> Vec<u8> {
    let mut key = Vec::with_capacity(256);
    // A NUL cannot appear in JSON text, so the parts cannot run into each other.
    for part in [
        pod.at(&["spec", "tolerations"]),
        pod.at(&["spec", "nodeSelector"]),
    ] {
        if let Some(v) = part {
            // Writing into a Vec cannot fail.
            let _ = json::write_compact(v, &mut key, false);
        }
        key.push(0);
    }
    key.extend_from_slice(required_node_name(pod).unwrap_or_default().as_bytes());
    key
}

/// `counts[n]`, for a count vector indexed by node number that may be shorter than `n`.
fn count_at(counts: &[usize], n: usize) -> usize {
    counts.get(n).copied().unwrap_or(0)
}

fn bump(counts: &mut Vec<usize>, n: usize) {
    if counts.len() <= n {
        counts.resize(n + 1, 0);
    }
    counts[n] += 1;
}

/// A feasible node: its name and the cache's number for it.
type Candidate = (String, Option<usize>);

impl Cluster {
    pub(super) async fn run_scheduler(&mut self, keys: BTreeSet<Key>) -> Result<(), ClusterError> {
        if keys.is_empty() {
            return Ok(());
        }
        let pods_res = find("pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
        let ready_nodes: Vec<Arc<Value>> = self
            .cache
            .all_shared("nodes")
            .filter(|n| node_ready(n))
            .cloned()
            .collect();
        let total = self.cache.all("nodes").count();
        // Feasible nodes per set of constraints, by name.
        let mut feasible_for: BTreeMap<Vec<u8>, Arc<[Candidate]>> = BTreeMap::new();
        // Bindings made in this pass, which the cache's counts do not show yet, indexed by
        // node number: a pod weighs every node, so its counts are read as vectors, not maps.
        let mut bound_here: Vec<usize> = Vec::new();
        let mut bound_here_owned: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        // The owner's pods per node from the cache, spread into a vector for one pod.
        let mut owned_dense: Vec<usize> = Vec::new();
        for key in keys {
            let Some(pod) = self.cache.get_shared("pods", &key).cloned() else {
                continue;
            };
            if str_at(&pod, &["spec", "nodeName"]).is_some()
                || pod.at(&["metadata", "deletionTimestamp"]).is_some()
            {
                continue;
            }
            let owner = str_at(&pod, &["metadata", "ownerReferences", "0", "uid"])
                .unwrap_or_default()
                .to_owned();
            let candidates = feasible_for
                .entry(constraints_of(&pod))
                .or_insert_with(|| {
                    let tolerations: &[Value] = pod
                        .at(&["spec", "tolerations"])
                        .and_then(Value::as_array)
                        .map_or(&[], Vec::as_slice);
                    ready_nodes
                        .iter()
                        .filter(|n| tolerates_all(n, tolerations, false))
                        .filter(|n| node_selector_matches(n, pod.at(&["spec", "nodeSelector"])))
                        .filter(|n| {
                            required_node_name(&pod)
                                .is_none_or(|want| str_at(n, &["metadata", "name"]) == Some(want))
                        })
                        .filter_map(|n| str_at(n, &["metadata", "name"]).map(str::to_owned))
                        .collect::<BTreeSet<String>>() // sorted: ties break in name order
                        .into_iter()
                        .map(|name| {
                            let number = self.cache.node_number(&name);
                            (name, number)
                        })
                        .collect()
                })
                .clone(); // an Arc: the list is shared, not copied per pod
            let (ns, name) = split_key(&key);
            if candidates.is_empty() {
                let cond = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": format!("0/{total} nodes are available: {total} node(s) didn't match Pod's node affinity/selector or had untolerated taints."),
                    "lastTransitionTime": self.clock.now_rfc3339()});
                if pod.at(&["status", "conditions", "0"]) != Some(&cond) {
                    let mut n = (*pod).clone();
                    n["status"]["conditions"] = json!([cond]);
                    ignore_not_found(self.api.update_status(pods_res, ns, name, n).await)?;
                }
                continue;
            }
            // Spread: fewest pods of this owner, then fewest pods, per node.
            owned_dense.clear();
            for (&n, &c) in self.cache.owned_pods_per_node(&owner).into_iter().flatten() {
                if owned_dense.len() <= n {
                    owned_dense.resize(n + 1, 0);
                }
                owned_dense[n] = c;
            }
            let owned_here = bound_here_owned.get(&owner).map_or(&[][..], Vec::as_slice);
            let scores: Vec<(usize, usize)> = candidates
                .iter()
                .map(|(_, number)| {
                    number.map_or((0, 0), |n| {
                        (
                            count_at(&owned_dense, n) + count_at(owned_here, n),
                            self.cache.pods_on_node(n) + count_at(&bound_here, n),
                        )
                    })
                })
                .collect();
            let best = scores.iter().min().copied().unwrap_or((0, 0));
            let tied: Vec<&Candidate> = candidates
                .iter()
                .zip(&scores)
                .filter(|(_, s)| **s == best)
                .map(|(n, _)| n)
                .collect();
            let (chosen, chosen_number) = tied[self.rng.below(tied.len() as u64) as usize].clone();
            // The binding subresource, as kube-scheduler posts it.
            let mut bound = (*pod).clone();
            bound["spec"]["nodeName"] = json!(chosen);
            if ignore_not_found(
                self.api
                    .update_shared(pods_res, ns, name, bound, false)
                    .await,
            )?
            .is_none()
            {
                continue;
            }
            if let Some(n) = chosen_number {
                bump(&mut bound_here, n);
                bump(bound_here_owned.entry(owner.clone()).or_default(), n);
            }
            let msg = format!(
                "Successfully assigned {}/{} to {chosen}",
                ns.unwrap_or("default"),
                name
            );
            self.record_event(&pod, "Normal", "Scheduled", msg, "default-scheduler", None)
                .await?;
        }
        Ok(())
    }
}
