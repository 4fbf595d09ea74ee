//! ingress-nginx's status sync: running controllers write the address they publish
//! (`ingress::status_addresses`) into `status.loadBalancer.ingress` of every Ingress they
//! serve, so `kubectl get ingress` shows ADDRESS.
//!
//! Upstream the elected leader polls every 60 s (`updateInterval`, the first poll one
//! interval after it starts leading), so a new Ingress waits up to a minute for its
//! address. Here the leader is the controller pod that started first and leads from its
//! start; when a status is out of date, a timer fires at that pod's next 60 s tick and
//! writes it. Every controller with the same flags computes the same value, so which pod
//! leads only sets the tick. Addresses are left in place when the controllers go away
//! (`--update-status-on-shutdown` is not modelled).
//!
//! Each add or update of an Ingress a running controller serves gets the Event its store
//! records at once, `Normal Sync "Scheduled for sync"` from `nginx-ingress-controller`
//! (the status write is an update too, hence the usual `(x2 over ...)`). Ingresses that
//! existed before the controller started get none here (upstream: one each as its
//! informer lists them).

use std::collections::{BTreeMap, BTreeSet};

use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::Value;

use super::cache::{key_of, str_at};
use super::kubelet::Timer;
use super::{ignore_not_found, split_key, Cluster, ClusterError};
use crate::ingress::{controller_flags, status_addresses, Flags};

/// ingress-nginx's status `updateInterval`.
const STATUS_INTERVAL_MS: i64 = 60_000;

/// Running controllers, grouped by flags: (flags, their pods' nodes, earliest start).
type Controllers = Vec<(Flags, Vec<String>, i64)>;

impl Cluster {
    fn ingress_controllers(&self) -> Controllers {
        let mut out: Controllers = Vec::new();
        for pod in self.cache.all("pods") {
            if str_at(pod, &["status", "phase"]) != Some("Running")
                || pod.pointer("/metadata/deletionTimestamp").is_some()
            {
                continue;
            }
            let Some(flags) = controller_flags(pod) else {
                continue;
            };
            let started = pod
                .pointer("/status/containerStatuses/0/state/running/startedAt")
                .or_else(|| pod.pointer("/status/startTime"))
                .and_then(Value::as_str)
                .and_then(apiserver::sim::parse_rfc3339)
                .unwrap_or_else(|| self.now_ms());
            let node = str_at(pod, &["spec", "nodeName"])
                .unwrap_or_default()
                .to_owned();
            match out.iter_mut().find(|(f, _, _)| *f == flags) {
                Some((_, nodes, first)) => {
                    nodes.push(node);
                    *first = (*first).min(started);
                }
                None => out.push((flags, vec![node], started)),
            }
        }
        out
    }

    /// The status writes the controllers would make now, and when the earliest leader's
    /// next poll is.
    fn ingress_status_writes(&self, controllers: &Controllers) -> (Vec<(String, Value)>, i64) {
        let services: Vec<&Value> = self.cache.all("services").collect();
        let classes: Vec<&Value> = self.cache.all("ingressclasses").collect();
        let mut want: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut next_tick = i64::MAX;
        for (flags, node_names, started) in controllers {
            if !flags.update_status {
                continue;
            }
            let nodes: Vec<&Value> = node_names
                .iter()
                .filter_map(|n| self.cache.get("nodes", n))
                .collect();
            let Some(addrs) = status_addresses(flags, &services, &nodes) else {
                continue;
            };
            let mut pending = false;
            for ing in self.cache.all("ingresses") {
                if flags.serves(ing, classes.iter().copied()) {
                    if let std::collections::btree_map::Entry::Vacant(e) = want.entry(key_of(ing)) {
                        let current = ing
                            .pointer("/status/loadBalancer/ingress")
                            .and_then(Value::as_array)
                            .map_or(&[][..], Vec::as_slice);
                        pending |= current != addrs.as_slice();
                        e.insert(addrs.clone());
                    }
                }
            }
            if pending {
                let ticks = (self.now_ms() - started) / STATUS_INTERVAL_MS + 1;
                next_tick = next_tick.min(started + ticks * STATUS_INTERVAL_MS);
            }
        }
        let mut writes = Vec::new();
        for (key, addrs) in want {
            let Some(ing) = self.cache.get_shared("ingresses", &key) else {
                continue;
            };
            let current = ing
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if current == addrs {
                continue;
            }
            let mut n = (**ing).clone();
            n["status"] = serde_json::json!({"loadBalancer": {"ingress": addrs}});
            writes.push((key, n));
        }
        (writes, next_tick)
    }

    /// In every settle round: Sync events for changed Ingresses, and a timer for the next
    /// status poll when a status is out of date.
    pub(super) async fn run_ingress_status(
        &mut self,
        changed: BTreeSet<String>,
    ) -> Result<(), ClusterError> {
        // Cheap when unused: most clusters have no Ingress at all.
        if self.cache.all("ingresses").next().is_none() {
            return Ok(());
        }
        let controllers = self.ingress_controllers();
        if controllers.is_empty() {
            return Ok(());
        }
        let classes: Vec<&Value> = self.cache.all("ingressclasses").collect();
        let synced: Vec<Value> = changed
            .iter()
            .filter_map(|k| self.cache.get("ingresses", k))
            .filter(|ing| {
                controllers
                    .iter()
                    .any(|(f, _, _)| f.serves(ing, classes.iter().copied()))
            })
            .cloned()
            .collect();
        for ing in synced {
            self.record_event(
                &ing,
                "Normal",
                "Sync",
                "Scheduled for sync".to_owned(),
                "nginx-ingress-controller",
                None,
            )
            .await?;
        }
        let (writes, next_tick) = self.ingress_status_writes(&controllers);
        let scheduled = self
            .timers
            .values()
            .any(|t| matches!(t, Timer::IngressStatus));
        if !writes.is_empty() && !scheduled && next_tick != i64::MAX {
            self.schedule(next_tick, Timer::IngressStatus);
        }
        Ok(())
    }

    /// The leader's poll: write every out-of-date status.
    pub(super) async fn ingress_status_tick(&mut self) -> Result<(), ClusterError> {
        let controllers = self.ingress_controllers();
        let (writes, _) = self.ingress_status_writes(&controllers);
        if writes.is_empty() {
            return Ok(());
        }
        let res = find("ingresses").ok_or_else(|| ApiError::internal("no ingresses resource"))?;
        for (key, obj) in writes {
            let (ns, name) = split_key(&key);
            ignore_not_found(self.api.update_status(res, ns, name, obj).await)?;
        }
        Ok(())
    }
}
