//! The simulated cluster: apiserver + controllers + scheduler + kubelets, driven by one
//! task on one virtual clock.
//!
//! Controllers are level-triggered state machines: every change seen by the informer cache
//! marks objects dirty; [`Cluster::settle`] runs the controllers over their dirty sets (in a
//! fixed order, each set in key order) until nothing changes. Time only moves in
//! [`Cluster::advance_to`], which fires kubelet timers in (time, sequence) order. So the same
//! scenario and seed always produce the same writes in the same order.

mod boot;
pub mod cache;
mod containers;
mod endpoints;
mod ingress;
mod kubelet;
pub mod kubeproxy;
mod loadbalancer;
mod scheduler;
mod serviceaccounts;
mod workloads;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use apiserver::json::At;
use apiserver::sim::{Clock, SimRng};
use apiserver::store::{Store, StoreError};
use apiserver::{ApiConfig, ApiError, ApiServer, EventType, ObjectEvent, PatchType, WatchItem};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;

pub use boot::{ClusterConfig, NodeConfig};
use cache::{key_of, str_at, Cache, Key};
use kubelet::Timer;

/// Errors that stop the simulation (as opposed to API errors a command prints).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store's watch ended unexpectedly")]
    WatchEnded,
    #[error("controllers did not settle after {0} rounds (a controller loop is fighting itself)")]
    NoFixpoint(usize),
}

/// Resources no controller reads: the informer skips them (Events are a third of all
/// writes; `kubectl describe` reads them from the apiserver, not from here).
const UNWATCHED: &[&str] = &["events"];

/// client-go's event de-duplication (`EventCorrelator`'s logger): an event identical to a
/// recent one — same object, type, reason, message and source — bumps that Event's `count`
/// and `lastTimestamp` instead of creating another, which is why `kubectl describe` shows
/// `(x4 over 2m)`. Remembers the last 4096, as client-go's LRU cache does.
///
/// Looked up by a 64-bit hash of the identity (a short key, not a 100-byte string: this
/// runs for every event), and confirmed against the whole identity kept with it.
#[derive(Default)]
struct EventLog {
    recent: BTreeMap<u64, Recent>,
    order: std::collections::VecDeque<u64>,
    /// client-go's EventSourceObjectSpamFilter, per (source, involved object): a bucket of
    /// 25 events refilled one every five minutes, in milliseconds of refill (so integer),
    /// with the time it was last looked at; an LRU of 4096 keys as there.
    spam: BTreeMap<u64, (i64, i64)>,
    spam_order: std::collections::VecDeque<u64>,
}

struct Recent {
    same: String,
    name: String,
    count: i64,
}

impl EventLog {
    const CAPACITY: usize = 4096;

    /// FNV-1a over 8-byte words, then a final mix: fixed, so the same on every machine
    /// (only equality depends on it), and a multiply per word rather than per byte.
    fn hash(same: &str) -> u64 {
        let mut chunks = same.as_bytes().chunks_exact(8);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // The multiplies carry low bits upward only: fold the high half back down.
        (h ^ (h >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ same.len() as u64
    }

    const SPAM_BURST: i64 = 25;
    const SPAM_REFILL_MS: i64 = 300_000;

    /// Whether the spam filter lets one more event about `source_object` through at `now`
    /// (every event counts, a repeat that would only bump a count too).
    fn allow(&mut self, source_object: &[&str], now: i64) -> bool {
        // FNV-1a over the parts and a separator after each: no string is built per event.
        let key = source_object
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, part| {
                part.bytes().chain([0]).fold(h, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
                })
            });
        let cap = Self::SPAM_BURST * Self::SPAM_REFILL_MS;
        let (level, last) = match self.spam.get(&key) {
            Some(&(level, last)) => ((level + (now - last).max(0)).min(cap), now),
            None => {
                self.spam_order.push_back(key);
                while self.spam_order.len() > Self::CAPACITY {
                    if let Some(old) = self.spam_order.pop_front() {
                        self.spam.remove(&old);
                    }
                }
                (cap, now)
            }
        };
        let allowed = level >= Self::SPAM_REFILL_MS;
        let left = if allowed {
            level - Self::SPAM_REFILL_MS
        } else {
            level
        };
        self.spam.insert(key, (left, last));
        allowed
    }

    /// The remembered Event with this identity: its name and count.
    fn get(&self, same: &str) -> Option<(String, i64)> {
        self.recent
            .get(&Self::hash(same))
            .filter(|r| r.same == same)
            .map(|r| (r.name.clone(), r.count))
    }

    fn bump(&mut self, same: &str, count: i64) {
        if let Some(r) = self
            .recent
            .get_mut(&Self::hash(same))
            .filter(|r| r.same == same)
        {
            r.count = count;
        }
    }

    fn remember(&mut self, same: String, name: String) {
        let h = Self::hash(&same);
        let fresh = Recent {
            same,
            name,
            count: 1,
        };
        if self.recent.insert(h, fresh).is_none() {
            self.order.push_back(h);
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }
}

/// What controllers must look at again.
#[derive(Default)]
struct Dirty {
    deployments: BTreeSet<Key>,
    replicasets: BTreeSet<Key>,
    daemonsets: BTreeSet<Key>,
    statefulsets: BTreeSet<Key>,
    unscheduled: BTreeSet<Key>,
    kubelet: BTreeSet<Key>,
    services: BTreeSet<Key>,
    deleted_uids: BTreeSet<String>,
    namespaces: BTreeSet<Key>,
    /// Namespaces whose `default` ServiceAccount and `kube-root-ca.crt` need a look.
    ns_defaults: BTreeSet<Key>,
    /// Ingresses that changed (all of them when an IngressClass did), for ingress-nginx.
    ingresses: BTreeSet<Key>,
}

impl Dirty {
    fn is_empty(&self) -> bool {
        self.deployments.is_empty()
            && self.replicasets.is_empty()
            && self.daemonsets.is_empty()
            && self.statefulsets.is_empty()
            && self.unscheduled.is_empty()
            && self.kubelet.is_empty()
            && self.services.is_empty()
            && self.deleted_uids.is_empty()
            && self.namespaces.is_empty()
            && self.ns_defaults.is_empty()
            && self.ingresses.is_empty()
    }
}

pub struct Cluster {
    pub api: Arc<ApiServer>,
    pub clock: Clock,
    pub config: ClusterConfig,
    rng: SimRng,
    cache: Cache,
    watch: BoxStream<'static, Result<WatchItem, StoreError>>,
    dirty: Dirty,
    timers: BTreeMap<(i64, u64), Timer>,
    timer_seq: u64,
    event_seq: u64,
    kubelet: kubelet::KubeletState,
    /// Conntrack and ephemeral ports: they outlive one command.
    pub net: crate::net::NetState,
    /// kube-proxy's per-node state (recent lists, rr positions).
    pub proxy_states: BTreeMap<String, proxy::ProxyState>,
    /// Draws for the data path (statistic matches, ephemeral ports).
    pub net_rng: SimRng,
    /// The mode each node's kube-proxy started in (from its ConfigMap).
    pub proxy_modes: BTreeMap<String, String>,
    derived: std::sync::Mutex<kubeproxy::Derived>,
    /// pod-template-hash by (Deployment uid, generation, collisionCount).
    template_hashes: BTreeMap<(String, i64, Option<i64>), String>,
    /// Refused pod creates in a row, per workload: its workqueue back-off.
    create_failures: BTreeMap<(kubelet::Owner, Key), u32>,
    events: EventLog,
    /// Per Service, each selected pod's Endpoints entries, in pod key order (`endpoints.rs`).
    endpoint_memo: BTreeMap<Key, Vec<endpoints::PodEndpoint>>,
    /// Entries the memo let go of, freed off the driver (`apiserver::reaper`).
    endpoint_garbage: apiserver::reaper::Garbage<endpoints::PodEndpoint>,
    /// Per key, the kind and resourceVersion of the last status this driver's Deployment
    /// and ReplicaSet controllers wrote, when that status was the sync's only write: see
    /// [`Cluster::is_own_status_echo`]. (A Deployment and a ReplicaSet of one name would
    /// share a slot; the loser is only synced once more than it needs.)
    own_status_writes: BTreeMap<Key, (&'static str, String)>,
    /// The apiserver's write count when the current Deployment or ReplicaSet sync began.
    sync_began_at: u64,
}

impl Cluster {
    /// Opens a cluster over `store` and boots it as kubeadm would (unless the store already
    /// holds a booted cluster).
    pub async fn new(config: ClusterConfig, store: Arc<dyn Store>) -> Result<Self, ClusterError> {
        // A fresh cluster is set up before the epoch (its boot then runs up to it); a kept
        // store's cluster already has its history, and its clock starts at the epoch.
        let booted = match apiserver::resources::find("namespaces") {
            Some(ns) => store.get(&ns.key(None, "kube-system")).await?.is_some(),
            None => false,
        };
        let clock = Clock::new(if booted {
            config.epoch_ms
        } else {
            config.epoch_ms - boot::CLUSTER_AGE_MS
        });
        let api_rng = SimRng::new(config.seed, "apiserver");
        let rng = SimRng::new(config.seed, "cluster");
        let seed = config.seed;
        let api =
            Arc::new(ApiServer::new(store, clock.clone(), api_rng, ApiConfig::default()).await?);
        let start = api.store().current_revision().await?;
        let watch = api.watch_all(start + 1, UNWATCHED).await?;
        let mut cluster = Cluster {
            api,
            clock,
            config,
            rng,
            cache: Cache::default(),
            watch,
            dirty: Dirty::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            event_seq: 0,
            kubelet: kubelet::KubeletState::default(),
            net: crate::net::NetState::default(),
            proxy_states: BTreeMap::new(),
            net_rng: SimRng::new(seed, "net"),
            proxy_modes: BTreeMap::new(),
            derived: std::sync::Mutex::new(kubeproxy::Derived::default()),
            template_hashes: BTreeMap::new(),
            create_failures: BTreeMap::new(),
            events: EventLog::default(),
            endpoint_memo: BTreeMap::new(),
            endpoint_garbage: Default::default(),
            own_status_writes: BTreeMap::new(),
            sync_began_at: 0,
        };
        cluster.cache.revision = start;
        // A kept store (etcd under `serve`) already holds objects: load them into the cache.
        cluster.load_existing(start).await?;
        cluster.boot().await?;
        Ok(cluster)
    }

    async fn load_existing(&mut self, rev: i64) -> Result<(), ClusterError> {
        let page = self.api.store().list("", &Default::default()).await?;
        for kv in page.items {
            let ev = apiserver::store::WatchEvent::Put { kv, prev: None };
            if let Some(oe) =
                ApiServer::decode_event(&ev).filter(|oe| !UNWATCHED.contains(&oe.resource.plural))
            {
                if oe.resource.plural == "pods" {
                    // Running pods keep their sandbox and IP across a restart of netsim.
                    self.kubelet.adopt(&oe.object);
                    self.resume_containers(&cache::key_of(&oe.object), &oe.object);
                }
                self.observe(oe);
            }
        }
        self.cache.revision = rev;
        Ok(())
    }

    /// Is the store answering? (A scenario stops at the first step after it went away.)
    pub async fn check_store(&self) -> Result<(), ClusterError> {
        self.api.store().current_revision().await?;
        Ok(())
    }

    /// After the store came back: watch again from what the cache has seen, or reload
    /// everything if that history was compacted meanwhile.
    pub async fn recover(&mut self) -> Result<(), ClusterError> {
        match self.api.watch_all(self.cache.revision + 1, UNWATCHED).await {
            Ok(w) => {
                self.watch = w;
                Ok(())
            }
            Err(StoreError::Compacted { .. }) => {
                let rev = self.api.store().current_revision().await?;
                self.watch = self.api.watch_all(rev + 1, UNWATCHED).await?;
                self.cache = Cache::default();
                self.load_existing(rev).await
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Applies watch events until the cache has seen every write this server made.
    async fn sync_cache(&mut self) -> Result<(), ClusterError> {
        let target = self.api.last_write_revision();
        while self.cache.revision < target {
            match self.watch.next().await {
                Some(Ok(WatchItem::Event(ev))) => self.observe(ev),
                Some(Ok(WatchItem::Bookmark(rev))) => {
                    self.cache.revision = self.cache.revision.max(rev);
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ClusterError::WatchEnded),
            }
        }
        Ok(())
    }

    /// Whether `obj` is the version of `key` that this driver's own status write made, in
    /// a sync that wrote nothing else. A controller's informer sees its own status write
    /// come back and syncs the object again. When that sync had nothing to create, scale
    /// or delete and no error to retry (the status was its only write), the next one can
    /// only compute the status it just wrote: its owner's and dependents' changes arrive as
    /// their own events. So it is skipped. Those echoes were half of all the syncs of both
    /// controllers. A sync that also wrote something (a pod create, a refused create's
    /// Event) is echoed as before, which retries what it tried.
    fn is_own_status_echo(&mut self, plural: &'static str, key: &Key, obj: &Value) -> bool {
        let echo = self.own_status_writes.get(key).is_some_and(|(kind, rv)| {
            *kind == plural && str_at(obj, &["metadata", "resourceVersion"]) == Some(rv.as_str())
        });
        if echo {
            self.own_status_writes.remove(key);
        }
        echo
    }

    /// Marks what an event makes dirty and applies it to the cache; the Services a pod's
    /// change concerns are found after, from the version the cache replaced.
    fn observe(&mut self, ev: ObjectEvent) {
        let object = Arc::clone(&ev.object);
        let obj = &*object;
        let key = key_of(obj);
        let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or_default();
        for owner in obj
            .at(&["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let set = match apiserver::json::get(owner, "kind").and_then(Value::as_str) {
                Some("ReplicaSet") => &mut self.dirty.replicasets,
                Some("Deployment") => &mut self.dirty.deployments,
                Some("DaemonSet") => &mut self.dirty.daemonsets,
                Some("StatefulSet") => &mut self.dirty.statefulsets,
                _ => continue,
            };
            let name = apiserver::json::get(owner, "name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut okey = String::with_capacity(ns.len() + 1 + name.len());
            okey.push_str(ns);
            okey.push('/');
            okey.push_str(name);
            set.insert(okey);
        }
        if ev.kind == EventType::Deleted {
            // Gone before its status write came back: nothing will echo it now.
            self.own_status_writes.remove(&key);
            if let Some(uid) = str_at(obj, &["metadata", "uid"]) {
                self.dirty.deleted_uids.insert(uid.to_owned());
                if ev.resource.plural == "deployments" {
                    self.template_hashes.retain(|(owner, _, _), _| owner != uid);
                }
                if ev.resource.plural == "pods" {
                    self.kubelet.forget(uid);
                }
            }
            // A terminating namespace finishes once its last object is gone.
            if self
                .cache
                .get("namespaces", ns)
                .is_some_and(|n| n.at(&["metadata", "deletionTimestamp"]).is_some())
            {
                self.dirty.namespaces.insert(ns.to_owned());
            }
        }
        match ev.resource.plural {
            "deployments" if !self.is_own_status_echo("deployments", &key, obj) => {
                self.dirty.deployments.insert(key.clone());
            }
            "replicasets" if !self.is_own_status_echo("replicasets", &key, obj) => {
                self.dirty.replicasets.insert(key.clone());
            }
            "daemonsets" => {
                self.dirty.daemonsets.insert(key.clone());
            }
            "statefulsets" => {
                self.dirty.statefulsets.insert(key.clone());
            }
            "services" => {
                self.dirty.services.insert(key.clone());
            }
            "nodes" => {
                let ds: Vec<Key> = self.cache.all("daemonsets").map(key_of).collect();
                self.dirty.daemonsets.extend(ds);
                let pending: Vec<Key> = self
                    .cache
                    .all("pods")
                    .filter(|p| str_at(p, &["spec", "nodeName"]).is_none())
                    .map(key_of)
                    .collect();
                self.dirty.unscheduled.extend(pending);
            }
            "namespaces" if obj.at(&["metadata", "deletionTimestamp"]).is_some() => {
                self.dirty.namespaces.insert(key.clone());
            }
            "namespaces" if ev.kind != EventType::Deleted => {
                self.dirty.ns_defaults.insert(key.clone());
            }
            "serviceaccounts"
                if ev.kind == EventType::Deleted
                    && str_at(obj, &["metadata", "name"]) == Some("default") =>
            {
                self.dirty.ns_defaults.insert(ns.to_owned());
            }
            "configmaps"
                if str_at(obj, &["metadata", "name"])
                    == Some(serviceaccounts::ROOT_CA_CONFIGMAP) =>
            {
                self.dirty.ns_defaults.insert(ns.to_owned());
            }
            "pods" if ev.kind != EventType::Deleted => {
                if str_at(obj, &["spec", "nodeName"]).is_none() {
                    self.dirty.unscheduled.insert(key.clone());
                } else {
                    self.dirty.kubelet.insert(key.clone());
                }
            }
            "ingresses" => {
                self.dirty.ingresses.insert(key.clone());
            }
            "ingressclasses" => self
                .dirty
                .ingresses
                .extend(self.cache.all("ingresses").map(key_of)),
            _ => {}
        }
        let (is_pod, deleted) = (ev.resource.plural == "pods", ev.kind == EventType::Deleted);
        let old = self.cache.apply(ev, key);
        if is_pod {
            // Only what Endpoints show matters to the endpoints controllers.
            let (old, new) = (old.as_deref(), (!deleted).then_some(obj));
            if shows_differently(old, new) {
                // The Services selecting a pod depend on its labels alone: the old
                // version is asked only when its labels were different.
                let relabelled = old.filter(|o| {
                    new.is_none_or(|n| {
                        o.at(&["metadata", "labels"]) != n.at(&["metadata", "labels"])
                    })
                });
                for p in [new, relabelled].into_iter().flatten() {
                    let svcs = self.cache.services_selecting(ns, p);
                    self.dirty.services.extend(svcs);
                }
            }
        }
    }

    /// Runs controllers until no more writes happen.
    pub async fn settle(&mut self) -> Result<(), ClusterError> {
        const MAX_ROUNDS: usize = 10_000;
        for _ in 0..MAX_ROUNDS {
            self.sync_cache().await?;
            if self.dirty.is_empty() {
                return Ok(());
            }
            let d = std::mem::take(&mut self.dirty);
            self.run_gc(d.deleted_uids).await?;
            self.run_namespaces(d.namespaces).await?;
            self.run_namespace_defaults(d.ns_defaults).await?;
            self.run_deployments(d.deployments).await?;
            self.run_replicasets(d.replicasets).await?;
            self.run_daemonsets(d.daemonsets).await?;
            self.run_statefulsets(d.statefulsets).await?;
            self.run_scheduler(d.unscheduled).await?;
            self.run_kubelets(d.kubelet).await?;
            self.run_loadbalancers(&d.services).await?;
            self.run_ingress_status(d.ingresses).await?;
            self.run_endpoints(d.services).await?;
        }
        Err(ClusterError::NoFixpoint(MAX_ROUNDS))
    }

    /// Moves virtual time to `target_ms`, firing timers in order and settling after each.
    pub async fn advance_to(&mut self, target_ms: i64) -> Result<(), ClusterError> {
        self.settle().await?;
        while let Some((&(at, seq), _)) = self.timers.first_key_value() {
            if at > target_ms {
                break;
            }
            let Some(timer) = self.timers.remove(&(at, seq)) else {
                break;
            };
            self.clock.advance_to(at);
            self.fire(timer).await?;
            self.settle().await?;
        }
        self.clock.advance_to(target_ms);
        self.settle().await
    }

    /// When the next timer fires, if any.
    pub fn next_timer_ms(&self) -> Option<i64> {
        self.timers.first_key_value().map(|(&(at, _), _)| at)
    }

    fn schedule(&mut self, at_ms: i64, t: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at_ms, self.timer_seq), t);
    }

    /// Records a core/v1 Event about `obj`, as `kubectl describe` shows them.
    async fn record_event(
        &mut self,
        obj: &Value,
        kind: &'static str,
        reason: &'static str,
        message: String,
        component: &'static str,
        host: Option<&str>,
    ) -> Result<(), ClusterError> {
        // Four metadata fields: `metadata` is found once (this runs for every Event).
        let meta = apiserver::json::get(obj, "metadata");
        let meta_str = |field| apiserver::json::get_in(meta, field).and_then(Value::as_str);
        let ns = meta_str("namespace").unwrap_or("default").to_owned();
        let name = meta_str("name").unwrap_or_default();
        let uid = meta_str("uid");
        let res = apiserver::resources::find("events")
            .ok_or_else(|| ApiError::internal("no events resource"))?;
        // The recorder's correlator drops what its spam filter refuses (getSpamKey: the
        // source and the involved object).
        let source_object = [
            component,
            host.unwrap_or_default(),
            obj.get("kind").and_then(Value::as_str).unwrap_or_default(),
            ns.as_str(),
            name,
            uid.unwrap_or_default(),
        ];
        if !self.events.allow(&source_object, self.clock.now_ms()) {
            return Ok(());
        }
        let same = [
            ns.as_str(),
            uid.unwrap_or(name),
            kind,
            reason,
            &message,
            component,
            host.unwrap_or_default(),
        ]
        .join("\u{0}");
        if let Some((ev_name, count)) = self.events.get(&same) {
            let patch =
                serde_json::json!({"count": count + 1, "lastTimestamp": self.clock.now_rfc3339()});
            let bumped = self
                .api
                .patch_internal(res, Some(&ns), &ev_name, &patch, PatchType::Merge)
                .await;
            match bumped {
                Ok(_) => {
                    self.events.bump(&same, count + 1);
                    return Ok(());
                }
                // Gone (deleted with its namespace, say): record it afresh.
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.event_seq += 1;
        let nanos = self.clock.now_ms() as u128 * 1_000_000 + u128::from(self.event_seq);
        let text = |s: Option<&Value>| s.and_then(Value::as_str).map(str::to_owned);
        let ev_name = format!("{name}.{nanos:x}");
        let event = apiserver::EventRecord {
            name: ev_name.clone(),
            namespace: ns.clone(),
            involved: apiserver::ObjectRef {
                api_version: text(obj.get("apiVersion")),
                kind: text(obj.get("kind")),
                name: name.to_owned(),
                namespace: ns,
                resource_version: meta_str("resourceVersion").map(str::to_owned),
                uid: uid.map(str::to_owned),
            },
            type_: kind,
            reason,
            message,
            component,
            host: host.map(str::to_owned),
            time: self.clock.now_rfc3339(),
        };
        match self.api.create_event(event).await {
            Ok(()) => {
                self.events.remember(same, ev_name);
                Ok(())
            }
            // An event for an object in a vanishing namespace is not worth failing over.
            Err(e) if e.code == 403 || e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Garbage collector: dependents of deleted owners go too (background propagation).
    async fn run_gc(&mut self, uids: BTreeSet<String>) -> Result<(), ClusterError> {
        for uid in uids {
            for (plural, key) in self.cache.dependents(&uid) {
                let Some(obj) = self.cache.get(plural, &key) else {
                    continue;
                };
                if obj.at(&["metadata", "deletionTimestamp"]).is_some() {
                    continue;
                }
                let res = apiserver::resources::find(plural)
                    .ok_or_else(|| ApiError::internal("unknown resource"))?;
                let (ns, name) = split_key(&key);
                ignore_not_found(self.api.delete(res, ns, name, None).await)?;
            }
        }
        Ok(())
    }

    /// Namespace controller: a terminating namespace loses its content, then itself.
    async fn run_namespaces(&mut self, keys: BTreeSet<Key>) -> Result<(), ClusterError> {
        for ns in keys {
            let mut remaining = 0;
            for res in apiserver::resources::RESOURCES
                .iter()
                .filter(|r| r.namespaced)
            {
                let entry = |o: &Value| {
                    (
                        str_at(o, &["metadata", "name"])
                            .unwrap_or_default()
                            .to_owned(),
                        o.at(&["metadata", "deletionTimestamp"]).is_some(),
                    )
                };
                let unwatched = UNWATCHED.contains(&res.plural);
                let names: Vec<(String, bool)> = if unwatched {
                    // Not in the cache (Events): ask the apiserver. They have no
                    // finalizers, so they are gone once deleted: nothing to wait for (and
                    // their deletions would not come back through the informer).
                    let q = apiserver::ListQuery::default();
                    let (items, _, _) = self.api.list_objects(res, Some(&ns), &q).await?;
                    items.iter().map(entry).collect()
                } else {
                    self.cache.in_ns(res.plural, &ns).map(entry).collect()
                };
                for (name, terminating) in names {
                    remaining += usize::from(!unwatched);
                    if !terminating {
                        ignore_not_found(self.api.delete(res, Some(&ns), &name, None).await)?;
                    }
                }
            }
            if remaining == 0 {
                let res = apiserver::resources::find("namespaces")
                    .ok_or_else(|| ApiError::internal("no namespaces"))?;
                ignore_not_found(self.api.delete(res, None, &ns, Some(0)).await)?;
            }
        }
        Ok(())
    }
}

/// Whether a pod's two versions (either may be absent) differ in what makes the
/// Endpoints/EndpointSlice controllers look at its Services again, as upstream's
/// `podEndpointsChanged` decides it: labels, hostname and subdomain, deletion, readiness
/// and the pod's IPs. Not the node (set once, before the pod has an IP) nor every status
/// write: a pod's other conditions and its phase change far more often than what
/// Endpoints show (a pod that ends is no longer Ready). Readiness, the dearest to read,
/// is compared last.
fn shows_differently(old: Option<&Value>, new: Option<&Value>) -> bool {
    fn fields(p: &Value) -> [Option<&Value>; 6] {
        let part = |k: &str| apiserver::json::get(p, k);
        let (meta, status, spec) = (part("metadata"), part("status"), part("spec"));
        let field = apiserver::json::get_in;
        [
            field(meta, "labels"),
            field(meta, "deletionTimestamp"),
            field(status, "podIPs"),
            field(status, "podIP"),
            field(spec, "hostname"),
            field(spec, "subdomain"),
        ]
    }
    match (old, new) {
        (Some(o), Some(n)) => {
            fields(o) != fields(n) || workloads::is_ready(o) != workloads::is_ready(n)
        }
        (o, n) => o.is_some() != n.is_some(),
    }
}

pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

fn ignore_not_found<T>(r: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == 404 || e.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::EventLog;

    #[test]
    fn the_spam_filter_lets_25_events_through_then_one_per_five_minutes() {
        let mut log = EventLog::default();
        let pod = ["kubelet", "node-1", "Pod", "default", "crashy", "uid-1"];
        let other = ["kubelet", "node-1", "Pod", "default", "napper", "uid-2"];
        let through = (0..30).filter(|i| log.allow(&pod, i * 1_000)).count();
        assert_eq!(through, 25, "a burst of 25");
        // Another object has its own bucket.
        assert!(log.allow(&other, 30_000));
        // The bucket refills one event per five minutes, counted from its first event.
        assert!(!log.allow(&pod, 299_000));
        assert!(log.allow(&pod, 300_000));
        assert!(!log.allow(&pod, 301_000));
    }
}
