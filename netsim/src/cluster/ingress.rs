//! ingress-nginx's status sync: each running controller writes the address it publishes
//! (`ingress::status_addresses`) into `status.loadBalancer.ingress` of every Ingress it
//! serves, so `kubectl get ingress` shows ADDRESS. Upstream does this from the elected
//! leader, on start and every 60 s; here it happens at once in `settle` (every controller
//! with the same flags computes the same value, so which pod is leader does not matter).
//! Addresses are left in place when the controllers go away (`--update-status-on-shutdown`
//! is not modelled).
//!
//! Each add or update of an Ingress a running controller serves gets the Event its store
//! records, `Normal Sync "Scheduled for sync"` from `nginx-ingress-controller` (the status
//! write is an update too, hence the usual `(x2 over ...)`). Ingresses that existed before
//! the controller started get none here (upstream: one each as its informer lists them).

use std::collections::{BTreeMap, BTreeSet};

use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::Value;

use super::cache::{key_of, str_at};
use super::{ignore_not_found, split_key, Cluster, ClusterError};
use crate::ingress::{controller_flags, status_addresses, Flags};

impl Cluster {
    pub(super) async fn run_ingress_status(
        &mut self,
        changed: BTreeSet<String>,
    ) -> Result<(), ClusterError> {
        // Cheap when unused: most clusters have no Ingress at all.
        if self.cache.all("ingresses").next().is_none() {
            return Ok(());
        }
        // Running controller pods, grouped by their flags' status-relevant part.
        let mut controllers: Vec<(Flags, Vec<String>)> = Vec::new();
        for pod in self.cache.all("pods") {
            if str_at(pod, "/status/phase") != Some("Running")
                || pod.pointer("/metadata/deletionTimestamp").is_some()
            {
                continue;
            }
            let Some(flags) = controller_flags(pod) else {
                continue;
            };
            if !flags.update_status {
                continue;
            }
            let node = str_at(pod, "/spec/nodeName").unwrap_or_default().to_owned();
            match controllers.iter_mut().find(|(f, _)| *f == flags) {
                Some((_, nodes)) => nodes.push(node),
                None => controllers.push((flags, vec![node])),
            }
        }
        let services: Vec<&Value> = self.cache.all("services").collect();
        let classes: Vec<&Value> = self.cache.all("ingressclasses").collect();
        let mut want: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut synced: Vec<Value> = Vec::new();
        for key in &changed {
            let Some(ing) = self.cache.get("ingresses", key) else {
                continue;
            };
            if controllers
                .iter()
                .any(|(f, _)| f.serves(ing, classes.iter().copied()))
            {
                synced.push(ing.clone());
            }
        }
        for (flags, node_names) in &controllers {
            let nodes: Vec<&Value> = node_names
                .iter()
                .filter_map(|n| self.cache.get("nodes", n))
                .collect();
            let Some(addrs) = status_addresses(flags, &services, &nodes) else {
                continue;
            };
            for ing in self.cache.all("ingresses") {
                if flags.serves(ing, classes.iter().copied()) {
                    want.entry(key_of(ing)).or_insert_with(|| addrs.clone());
                }
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
