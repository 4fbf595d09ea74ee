//! The registry: Kubernetes object semantics over the Store. Both the HTTP surface and
//! in-process controllers call this, so every write gets the same admission.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::admission::{self, ensure_object, Allocators, Ctx, Taken};
use crate::alloc::{IpAllocator, PortAllocator};
use crate::decode::strict_decode;
use crate::error::{ApiError, FieldError};
use crate::events::{Admitted, EventRecord, EventWriter, SplitStore};
use crate::json::{field, At};
use crate::resources::{Resource, RESOURCES};
use crate::selector::{FieldSelector, LabelSelector};
use crate::sim::{Clock, SimRng};
use crate::store::{KeyValue, ListOptions, Revision, Store, StoreError, StoredValue, WatchEvent};
use crate::validation::name_errors;

/// Cluster-wide settings the apiserver enforces (kubeadm defaults).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub service_cidr: (Ipv4Addr, u8),
    pub node_port_base: u16,
    pub node_port_size: u16,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            service_cidr: (Ipv4Addr::new(10, 96, 0, 0), 12),
            node_port_base: 30000,
            node_port_size: 2768,
        }
    }
}

/// Query parameters of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
}

/// Patch flavours (`Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386.
    Merge,
    /// Kubernetes' strategic merge patch: lists with a merge key merge by it (`strategic.rs`).
    Strategic,
    /// RFC 6902.
    Json,
}

/// What happened to an object, as a watch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A decoded store change. Objects are shared (`Arc`): the same decoded object serves the
/// writer, the decoded-object cache and every informer, instead of one copy each.
#[derive(Debug, Clone)]
pub struct ObjectEvent {
    pub resource: &'static Resource,
    pub kind: EventType,
    pub object: Arc<Value>,
    pub old: Option<Arc<Value>>,
    pub revision: Revision,
}

/// What an informer's watch delivers: a change, or only the revision reached (Kubernetes'
/// BOOKMARK) for a change to a resource it does not follow.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(ObjectEvent),
    Bookmark(Revision),
}

/// Decoded objects by storage key, each with the revision it was stored at: kube-apiserver's
/// watch cache in miniature. The store's bytes stay the truth — an entry is used only when
/// its revision is the one the store holds (or the watch reports), so a write made by
/// someone else on a shared etcd is simply decoded. What it saves is decoding, on every
/// read, update and watch event, the JSON this process has just encoded.
///
/// A store that hands back the values written (`MemStore`) hands back the objects too: then
/// nothing is kept here (`keeping` is off) and a read takes the object from the value.
struct Decoded {
    by_key: Mutex<BTreeMap<String, Kept>>,
    keeping: bool,
}

struct Kept {
    rev: Revision,
    obj: Arc<Value>,
}

impl Decoded {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Kept>> {
        match self.by_key.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Events are the most numerous objects, written once and read rarely (by `describe`):
    /// decoding them on demand costs less than holding them decoded.
    fn keeps(res: &Resource) -> bool {
        res.plural != "events"
    }

    fn at(&self, key: &str, rev: Revision) -> Option<Arc<Value>> {
        self.lock()
            .get(key)
            .filter(|k| k.rev == rev)
            .map(|k| Arc::clone(&k.obj))
    }

    /// Keeps `obj` as `key`'s object at `rev`, unless a newer one is already kept.
    fn keep(&self, res: &Resource, key: &str, rev: Revision, obj: &Arc<Value>) {
        if !self.keeping || !Self::keeps(res) {
            return;
        }
        let kept = Kept {
            rev,
            obj: Arc::clone(obj),
        };
        let mut m = self.lock();
        match m.get_mut(key) {
            Some(e) if e.rev >= rev => {}
            Some(e) => *e = kept,
            None => {
                m.insert(key.to_owned(), kept);
            }
        }
    }

    fn forget(&self, key: &str, deleted_at: Revision) {
        let mut m = self.lock();
        if m.get(key).is_some_and(|k| k.rev < deleted_at) {
            m.remove(key);
        }
    }

    /// The object stored in `kv`, from the cache when it holds that revision.
    fn load(&self, res: &Resource, kv: &KeyValue) -> Result<Arc<Value>, ApiError> {
        if let Some(o) = written_object(kv) {
            return Ok(Arc::clone(o));
        }
        if let Some(o) = self.at(&kv.key, kv.mod_revision) {
            return Ok(o);
        }
        let obj = Arc::new(ApiServer::present(res, kv)?);
        self.keep(res, &kv.key, kv.mod_revision, &obj);
        Ok(obj)
    }
}

/// The object `kv` was written from, when that is the object as presented at `kv`'s
/// revision: [`ApiServer::prepare`] finished it for the revision the write got (a guess that
/// missed leaves another revision in it, and the object is then finished afresh).
fn written_object(kv: &KeyValue) -> Option<&Arc<Value>> {
    let obj = kv.value.as_object()?;
    let rv = meta_str(obj, "resourceVersion")?.parse::<Revision>().ok()?;
    (rv == kv.mod_revision).then_some(obj)
}

/// A write about to be made: the object as it will be presented if the write gets the
/// revision this server expects (see [`ApiServer::prepare`]), and what the store is given.
struct Prepared {
    obj: Arc<Value>,
    rev: Revision,
    value: StoredValue,
}

pub struct ApiServer {
    store: Arc<dyn Store>,
    clock: Clock,
    rng: SimRng,
    /// uids have their own stream (`rng.derive("uid")`): objects that only the cluster
    /// creates (a namespace's ServiceAccount, say) then shift no Pod name or ClusterIP.
    uids: SimRng,
    alloc: Mutex<Allocators>,
    last_write: AtomicI64,
    /// Writes made through this server, Events recorded included (see [`Self::writes_made`]).
    writes: AtomicU64,
    config: ApiConfig,
    decoded: Arc<Decoded>,
    write_counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Events' own store and writer thread, over an in-memory store (see `events.rs`).
    events: Option<Arc<EventWriter>>,
    /// Namespaces last seen present and not terminating: NamespaceLifecycle admission's
    /// lister. kube-apiserver reads namespaces from an informer cache, not etcd, on every
    /// create; here every namespace write goes through this server, so the set is exact:
    /// any such write empties it (see [`Self::note_write`]).
    live_namespaces: Mutex<LiveNamespaces>,
}

/// See `ApiServer::live_namespaces`. `generation` counts the emptyings, so that a lookup
/// that raced with a namespace write does not put back what the write made stale.
#[derive(Default)]
struct LiveNamespaces {
    generation: u64,
    names: BTreeSet<String>,
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    crate::json::get_in(crate::json::get(obj, "metadata"), field).and_then(Value::as_str)
}

impl ApiServer {
    /// Opens the API over `store`, rebuilding the allocators from the stored Services (as the
    /// repair controllers do), so a restart on a kept etcd continues where it stopped.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        rng: SimRng,
        config: ApiConfig,
    ) -> Result<Self, ApiError> {
        let mut alloc = Allocators {
            cluster_ips: IpAllocator::new(config.service_cidr.0, config.service_cidr.1),
            node_ports: PortAllocator::new(config.node_port_base, config.node_port_size),
        };
        let svc = crate::resources::find("services")
            .ok_or_else(|| ApiError::internal("no services resource"))?;
        let page = store
            .list(&svc.key_prefix(None), &ListOptions::default())
            .await
            .map_err(|e| ApiError::from_store(e, svc, ""))?;
        for kv in &page.items {
            let obj = Self::present(svc, kv).unwrap_or(Value::Null);
            let t = admission::service_allocations(&obj);
            for ip in t.ips {
                let _ = alloc.cluster_ips.allocate_specific(ip);
            }
            for p in t.ports {
                let _ = alloc.node_ports.allocate_specific(p);
            }
        }
        let (store, events) = if let Some(apart) = store.events_store() {
            let writer = EventWriter::start(apart);
            let split: Arc<dyn Store> = Arc::new(SplitStore::new(store, Arc::clone(&writer)));
            (split, Some(writer))
        } else {
            (store, None)
        };
        Ok(ApiServer {
            events,
            clock,
            uids: rng.derive("uid"),
            rng,
            alloc: Mutex::new(alloc),
            last_write: AtomicI64::new(page.revision),
            writes: AtomicU64::new(0),
            config,
            decoded: Arc::new(Decoded {
                by_key: Mutex::default(),
                keeping: !store.returns_written_values(),
            }),
            store,
            write_counts: Mutex::default(),
            live_namespaces: Mutex::default(),
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The newest revision this server wrote; a cache that has seen it has seen every write.
    pub fn last_write_revision(&self) -> Revision {
        self.last_write.load(Ordering::SeqCst)
    }

    /// How many writes this server has made, Events recorded included. A controller that
    /// wants to know whether a stretch of its work wrote anything but one object compares
    /// this, not revisions: Events apart take no revision of the main store.
    pub fn writes_made(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn note_write(&self, res: &Resource, op: &'static str, rev: Revision) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if res.plural == "namespaces" {
            let mut live = self.live_namespaces();
            live.generation += 1;
            live.names.clear();
        }
        // Events apart count their own revisions: not the main store's.
        if self.events.is_none() || res.plural != "events" {
            self.last_write.fetch_max(rev, Ordering::SeqCst);
        }
        let mut counts = match self.write_counts.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *counts.entry((res.plural, op)).or_insert(0) += 1;
    }

    /// Writes made through this server, by (resource, `create`/`update`/`delete`) — as
    /// kube-apiserver's `apiserver_request_total` counts them; the benchmark reports them.
    pub fn write_counts(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        let mut counts = match self.write_counts.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(w) = &self.events {
            let n = w.created();
            if n > 0 {
                *counts.entry(("events", "create")).or_insert(0) += n;
            }
        }
        counts
    }

    /// Records an Event (a POST of it, as client-go's recorder makes). Over an in-memory
    /// store the checks, uid and creation time are taken now and the write is left to the
    /// events writer (`events.rs`); an error of an earlier such write is returned by a later
    /// call, or by [`Self::flush_events`].
    pub async fn create_event(&self, event: EventRecord) -> Result<(), ApiError> {
        let res = crate::resources::find("events")
            .ok_or_else(|| ApiError::internal("no events resource"))?;
        let Some(writer) = &self.events else {
            let ns = event.namespace.clone();
            return self
                .create_shared(res, Some(&ns), event.to_object())
                .await
                .map(|_| ());
        };
        // What `create_shared` checks and draws before the write, in the same order.
        self.namespace_must_exist(&event.namespace).await?;
        let uid = self.uids.uuid();
        let created = self.clock.now_rfc3339();
        self.writes.fetch_add(1, Ordering::SeqCst);
        writer.submit(Admitted {
            event,
            uid,
            created,
        })
    }

    /// Waits until every recorded Event is stored; fails if one could not be.
    pub fn flush_events(&self) -> Result<(), ApiError> {
        match &self.events {
            Some(w) => {
                w.wait();
                w.take_error()
            }
            None => Ok(()),
        }
    }

    fn alloc(&self) -> MutexGuard<'_, Allocators> {
        match self.alloc.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The object as clients see it: kind, apiVersion and resourceVersion filled in. A value
    /// this process wrote still holds its object: that is a copy-on-write clone, not a decode.
    fn present(res: &Resource, kv: &KeyValue) -> Result<Value, ApiError> {
        let obj = match kv.value.as_object() {
            Some(o) => Value::clone(o),
            None => serde_json::from_slice(kv.value.bytes())
                .map_err(|e| ApiError::internal(format!("decoding {}: {e}", kv.key)))?,
        };
        Ok(Self::finish(res, obj, kv.mod_revision))
    }

    pub(crate) fn finish(res: &Resource, mut obj: Value, rev: Revision) -> Value {
        let m = ensure_object(&mut obj);
        fn text<'a>(m: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
            field(m, k).and_then(Value::as_str)
        }
        // Runs on every write: the (usual) fields already right are left alone.
        if !text(m, "apiVersion").is_some_and(|v| res.is_api_version(v)) {
            m.insert("apiVersion", Value::String(res.api_version()));
        }
        if text(m, "kind") != Some(res.kind) {
            m.insert("kind", Value::String(res.kind.to_owned()));
        }
        if !field(m, "metadata").is_some_and(Value::is_object) {
            m.insert("metadata", Value::Object(serde_json::Map::new()));
        }
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            let rv = rev.to_string();
            match meta.get_mut("resourceVersion") {
                Some(Value::String(v)) if *v == rv => {}
                Some(v) => *v = Value::String(rv),
                None => {
                    meta.insert("resourceVersion", Value::String(rv));
                }
            }
        }
        obj
    }

    /// Readies `obj` for a write: finished for the revision the write should get, the one
    /// after this server's last (a write by someone else in between only means
    /// [`Self::stored`] finishes a copy for the revision it got). The store is given the
    /// object itself, which it encodes only if it needs bytes (etcd) — see [`StoredValue`];
    /// the stored form leaves `resourceVersion` out, so the guess never reaches the bytes.
    /// Events go as bytes: they are not kept decoded (see `Decoded::keeps`), and holding
    /// tens of thousands of them as objects would cost more memory than encoding costs time.
    fn prepare(&self, res: &Resource, obj: Value) -> Prepared {
        let rev = self.last_write_revision() + 1;
        let obj = Arc::new(Self::finish(res, obj, rev));
        let value = if Decoded::keeps(res) {
            StoredValue::object(Arc::clone(&obj))
        } else {
            StoredValue::encoded(&obj)
        };
        Prepared { obj, rev, value }
    }

    /// After a successful write of `obj` (from [`Self::prepare`] for revision `rev`) as
    /// `kv`: the object as `present` would show it, kept for readers, the watch and the
    /// next write.
    fn stored(&self, res: &Resource, kv: &KeyValue, obj: Arc<Value>, rev: Revision) -> Arc<Value> {
        let op = if kv.create_revision == kv.mod_revision {
            "create"
        } else {
            "update"
        };
        self.note_write(res, op, kv.mod_revision);
        let obj = if kv.mod_revision == rev {
            obj
        } else {
            Arc::new(Self::finish(
                res,
                Arc::unwrap_or_clone(obj),
                kv.mod_revision,
            ))
        };
        self.decoded.keep(res, &kv.key, kv.mod_revision, &obj);
        obj
    }

    fn check_ns<'a>(res: &Resource, ns: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
        match (res.namespaced, ns) {
            (true, Some(ns)) => Ok(Some(ns)),
            (true, None) => Err(ApiError::bad_request(
                "the namespace of the object is required",
            )),
            (false, _) => Ok(None),
        }
    }

    fn live_namespaces(&self) -> MutexGuard<'_, LiveNamespaces> {
        match self.live_namespaces.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    async fn namespace_must_exist(&self, ns: &str) -> Result<(), ApiError> {
        let generation = {
            let live = self.live_namespaces();
            if live.names.contains(ns) {
                return Ok(());
            }
            live.generation
        };
        let nsr = crate::resources::find("namespaces")
            .ok_or_else(|| ApiError::internal("no namespaces"))?;
        let got = self
            .store
            .get(&nsr.key(None, ns))
            .await
            .map_err(|e| ApiError::from_store(e, nsr, ns))?;
        match got {
            Some(kv) => {
                let obj = self.decoded.load(nsr, &kv)?;
                if obj.at(&["status", "phase"]).and_then(Value::as_str) == Some("Terminating") {
                    return Err(ApiError {
                        code: 403,
                        reason: "Forbidden",
                        message: format!("unable to create new content in namespace {ns} because it is being terminated"),
                        details: None,
                    });
                }
                let mut live = self.live_namespaces();
                if live.generation == generation {
                    live.names.insert(ns.to_owned());
                }
                Ok(())
            }
            None => Err(ApiError::not_found(nsr, ns)),
        }
    }

    /// POST: create an object (name or generateName), with admission. Strict decoding of
    /// unknown fields is the wire's job (`http.rs`): in-process controllers build their
    /// objects from decoded ones, and skipping the typed round trip keeps them fast.
    pub async fn create(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.create_shared(res, ns, obj)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Self::create`], returning the shared decoded object (no copy for in-process callers).
    pub async fn create_shared(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let ns = Self::check_ns(res, ns)?;
        check_type(res, &obj)?;
        if let (Some(ns), Some(objns)) = (ns, meta_str(&obj, "namespace")) {
            if ns != objns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        if let Some(ns) = ns {
            self.namespace_must_exist(ns).await?;
        }
        let name = meta_str(&obj, "name").unwrap_or("").to_owned();
        let generate = meta_str(&obj, "generateName").unwrap_or("").to_owned();
        if name.is_empty() && generate.is_empty() {
            return Err(ApiError::invalid(
                res,
                "",
                vec![FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        {
            let meta = ensure_object(
                ensure_object(&mut obj)
                    .entry("metadata")
                    .or_insert(Value::Null),
            );
            if let Some(ns) = ns {
                meta.insert("namespace", json!(ns));
            }
            meta.remove("resourceVersion");
            meta.remove("deletionTimestamp");
            meta.insert("uid", json!(self.uids.uuid()));
            meta.insert("creationTimestamp", json!(self.clock.now_rfc3339()));
            if matches!(res.group, "apps") {
                meta.insert("generation", json!(1));
            }
        }
        if res.plural == "pods" {
            if let Some(ns) = ns {
                let shown = if name.is_empty() { &generate } else { &name };
                self.admit_service_account(res, ns, shown, &mut obj).await?;
            }
        }
        // kube-apiserver retries a generated name that collides (RetryGenerateName). A retry
        // reuses the admitted object (defaulting is idempotent; released allocations are
        // taken again as explicit ones) rather than copying the input for every attempt.
        let attempts = if name.is_empty() { 8 } else { 1 };
        let mut last_err = None;
        let mut candidate = obj;
        for _ in 0..attempts {
            let this_name = if name.is_empty() {
                let base: String = generate.chars().take(58).collect();
                format!("{base}{}", self.rng.k8s_suffix(5))
            } else {
                name.clone()
            };
            if let Some(meta) = candidate.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("name", json!(this_name));
            }
            let errs = name_errors("metadata.name", &this_name, admission::name_rule(res));
            if !errs.is_empty() {
                return Err(ApiError::invalid(res, &this_name, errs));
            }
            let taken = {
                let mut alloc = self.alloc();
                let mut ctx = Ctx {
                    alloc: &mut alloc,
                    rng: &self.rng,
                };
                admission::admit_create(res, &mut candidate, &mut ctx)
                    .map_err(|errs| ApiError::invalid(res, &this_name, errs))?
            };
            let Prepared { obj, rev, value } = self.prepare(res, candidate);
            match self.store.create(&res.key(ns, &this_name), value).await {
                Ok(kv) => return Ok(self.stored(res, &kv, obj, rev)),
                Err(e) => {
                    // The store let go of the value: this is the only reference left.
                    candidate = Arc::unwrap_or_clone(obj);
                    taken.release(&mut self.alloc());
                    let retry = matches!(e, StoreError::AlreadyExists(_)) && name.is_empty();
                    last_err = Some(ApiError::from_store(e, res, &this_name));
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| ApiError::internal("create failed")))
    }

    /// ServiceAccount admission (mutating, so before a generated name exists: errors name
    /// the pod by its `generateName`, as kube-apiserver's do): the pod's ServiceAccount must
    /// exist, and unless automount is off its API-access volume is mounted.
    async fn admit_service_account(
        &self,
        res: &'static Resource,
        ns: &str,
        shown: &str,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        if admission::is_mirror_pod(pod) {
            let named = pod
                .get("spec")
                .and_then(Value::as_object)
                .and_then(admission::named_service_account);
            return match named {
                Some(_) => Err(ApiError::forbidden(
                    res,
                    shown,
                    "a mirror pod may not reference service accounts",
                )),
                None => Ok(()),
            };
        }
        let sa_name = admission::pod_service_account(pod);
        let sa_res = crate::resources::find("serviceaccounts")
            .ok_or_else(|| ApiError::internal("no serviceaccounts"))?;
        let kv = self
            .store
            .get(&sa_res.key(Some(ns), &sa_name))
            .await
            .map_err(|e| ApiError::from_store(e, sa_res, &sa_name))?;
        let Some(kv) = kv else {
            return Err(ApiError::forbidden(
                res,
                shown,
                &format!("error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"),
            ));
        };
        let sa = self.decoded.load(sa_res, &kv)?;
        if admission::should_automount(pod, &sa) {
            admission::mount_service_account_token(pod, &self.rng);
        }
        Ok(())
    }

    async fn get_kv(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<KeyValue, ApiError> {
        let ns = Self::check_ns(res, ns)?;
        self.store
            .get(&res.key(ns, name))
            .await
            .map_err(|e| ApiError::from_store(e, res, name))?
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    pub async fn get(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let kv = self.get_kv(res, ns, name).await?;
        self.decoded.load(res, &kv).map(Arc::unwrap_or_clone)
    }

    /// Lists objects; returns the matching objects and the list's resourceVersion and continue token.
    pub async fn list_objects(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<(Vec<Value>, Revision, Option<String>), ApiError> {
        let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))?;
        let fields = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""))?;
        let ns = if res.namespaced { ns } else { None };
        let mut opts = ListOptions::default();
        if let Some(tok) = &q.continue_token {
            let (rev, key) = tok
                .split_once(':')
                .and_then(|(r, k)| Some((r.parse::<Revision>().ok()?, k.to_owned())))
                .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
            opts.revision = Some(rev);
            opts.start_after = Some(key);
        } else if let Some(rv) = q
            .resource_version
            .as_deref()
            .filter(|r| !r.is_empty() && *r != "0")
        {
            opts.revision =
                Some(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })?);
        }
        let limit = q.limit.filter(|l| *l > 0);
        let filtered =
            !labels.is_empty() || q.field_selector.as_deref().is_some_and(|f| !f.is_empty());
        if !filtered {
            opts.limit = limit;
        }
        let page = self
            .store
            .list(&res.key_prefix(ns), &opts)
            .await
            .map_err(|e| ApiError::from_store(e, res, ""))?;
        let mut items = Vec::with_capacity(page.items.len());
        let mut last_key = None;
        let mut more = page.more;
        for kv in &page.items {
            let obj = self.decoded.load(res, kv)?;
            if labels.matches(&obj) && fields.matches(&obj) {
                if filtered && limit.is_some_and(|l| items.len() == l) {
                    more = true;
                    break;
                }
                items.push(Arc::unwrap_or_clone(obj));
                last_key = Some(kv.key.clone());
            }
        }
        let token = match (more, last_key) {
            (true, Some(k)) => Some(format!("{}:{k}", page.revision)),
            _ => None,
        };
        Ok((items, page.revision, token))
    }

    /// GET collection as a `<Kind>List` (items without kind/apiVersion, as kube-apiserver).
    pub async fn list(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<Value, ApiError> {
        let (items, rev, token) = self.list_objects(res, ns, q).await?;
        let items: Vec<Value> = items
            .into_iter()
            .map(|mut o| {
                if let Some(m) = o.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            })
            .collect();
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if let Some(t) = token {
            meta["continue"] = json!(t);
        }
        Ok(
            json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": items}),
        )
    }

    /// PUT (main resource or `status` subresource), with optimistic concurrency.
    pub async fn update(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        self.update_shared(res, ns, name, obj, status_only)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Self::update`], returning the shared decoded object.
    pub async fn update_shared(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        check_type(res, &obj)?;
        if meta_str(&obj, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&obj, "name").unwrap_or_default()
            )));
        }
        let kv = self.get_kv(res, ns, name).await?;
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|r| !r.is_empty()) {
            if rv != kv.mod_revision.to_string() {
                return Err(ApiError::stale(res, name));
            }
        }
        let old = self.decoded.load(res, &kv)?;
        self.write_update(res, name, &kv, old, obj, status_only)
            .await
    }

    /// The status subresource for in-process controllers that hold the object at its current
    /// resourceVersion (from their informer): the write is a compare-and-swap on that version
    /// (a stale copy gets 409, as a real controller's would), without re-reading and
    /// re-decoding the stored object first. Only `status` may differ from what is stored.
    pub async fn update_status(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let Some(expected) =
            meta_str(&obj, "resourceVersion").and_then(|r| r.parse::<Revision>().ok())
        else {
            return self.update_shared(res, ns, name, obj, true).await;
        };
        let nsk = Self::check_ns(res, ns)?;
        let key = res.key(nsk, name);
        let Prepared { obj, rev, value } = self.prepare(res, obj);
        match self.store.update(&key, value, expected).await {
            Ok(kv) => Ok(self.stored(res, &kv, obj, rev)),
            Err(e) => Err(ApiError::from_store(e, res, name)),
        }
    }

    async fn write_update(
        &self,
        res: &'static Resource,
        name: &str,
        kv: &KeyValue,
        old: Arc<Value>,
        obj: Value,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let mut new = if status_only {
            let mut n = (*old).clone();
            n["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            n
        } else {
            let mut n = obj;
            // Identity and system fields are the server's, not the client's. Each is written
            // only where it differs: a controller's update carries them unchanged, and
            // writing them anyway would copy its (shared, copy-on-write) metadata.
            let old_meta = crate::json::get(&old, "metadata");
            // The stored metadata itself (a copy that changed no metadata, as a binding):
            // every identity field is the server's already.
            let same_meta = match (old_meta, crate::json::get(&n, "metadata")) {
                (Some(Value::Object(a)), Some(Value::Object(b))) => a.ptr_eq(b),
                _ => false,
            };
            if !same_meta {
                for f in [
                    "uid",
                    "creationTimestamp",
                    "name",
                    "namespace",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    let want = crate::json::get_in(old_meta, f);
                    if crate::json::get_in(crate::json::get(&n, "metadata"), f) == want
                        && crate::json::get(&n, "metadata").is_some_and(Value::is_object)
                    {
                        continue;
                    }
                    let meta = ensure_object(
                        ensure_object(&mut n)
                            .entry("metadata")
                            .or_insert(Value::Null),
                    );
                    match want {
                        Some(v) => {
                            meta.insert(f, v.clone());
                        }
                        None => {
                            meta.remove(f);
                        }
                    }
                }
            }
            if has_status_subresource(res) {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        ensure_object(&mut n).remove("status");
                    }
                }
            }
            if old.get("spec") != n.get("spec") {
                if let Some(g) = old.at(&["metadata", "generation"]).and_then(Value::as_i64) {
                    n["metadata"]["generation"] = json!(g + 1);
                }
            }
            n
        };
        let (taken, released) = if status_only {
            (Taken::default(), Taken::default())
        } else {
            let mut alloc = self.alloc();
            let mut ctx = Ctx {
                alloc: &mut alloc,
                rng: &self.rng,
            };
            admission::admit_update(res, &old, &mut new, &mut ctx)
                .map_err(|errs| ApiError::invalid(res, name, errs))?
        };
        if new == *old {
            // No-op updates do not bump the revision (kube-apiserver skips the write).
            return Ok(old);
        }
        let Prepared { obj, rev, value } = self.prepare(res, new);
        match self.store.update(&kv.key, value, kv.mod_revision).await {
            Ok(kv) => {
                released.release(&mut self.alloc());
                Ok(self.stored(res, &kv, obj, rev))
            }
            Err(e) => {
                taken.release(&mut self.alloc());
                Err(ApiError::from_store(e, res, name))
            }
        }
    }

    /// PATCH; retried on a concurrent write as kube-apiserver's `GuaranteedUpdate` does.
    pub async fn patch(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        ptype: PatchType,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        self.patch_shared(res, ns, name, patch, ptype, status_only)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Self::patch`], returning the shared decoded object. The patched object is decoded
    /// strictly, as kube-apiserver does: a client's patch may add fields no type has.
    pub async fn patch_shared(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        ptype: PatchType,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        self.patch_with(res, ns, name, status_only, |new| {
            apply_patch(new, patch, ptype)?;
            strict_decode(res, new)
        })
        .await
    }

    /// PATCH from an in-process controller. Its patches set only fields the API types
    /// have, so the result skips the typed round trip, as the controllers' updates do
    /// (that round trip was ~100,000 instructions per Deployment patch); admission runs
    /// as for any write.
    pub async fn patch_internal(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        ptype: PatchType,
    ) -> Result<Arc<Value>, ApiError> {
        self.patch_with(res, ns, name, false, |new| apply_patch(new, patch, ptype))
            .await
    }

    /// Read, `apply`, write; retried on a concurrent write.
    async fn patch_with(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        status_only: bool,
        apply: impl Fn(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        for _ in 0..5 {
            let kv = self.get_kv(res, ns, name).await?;
            let old = self.decoded.load(res, &kv)?;
            let mut new = (*old).clone();
            apply(&mut new)?;
            match self
                .write_update(res, name, &kv, old, new, status_only)
                .await
            {
                Err(e) if e.reason == "Conflict" => continue,
                other => return other,
            }
        }
        Err(ApiError::stale(res, name))
    }

    /// DELETE. Pods on a node are deleted gracefully (deletionTimestamp; the kubelet
    /// finishes), namespaces go Terminating; everything else goes at once.
    pub async fn delete(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        grace_period_seconds: Option<i64>,
    ) -> Result<Value, ApiError> {
        let kv = self.get_kv(res, ns, name).await?;
        let old = Arc::unwrap_or_clone(self.decoded.load(res, &kv)?);
        let graceful = match res.plural {
            "pods" => {
                let on_node = old
                    .at(&["spec", "nodeName"])
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                let terminal = matches!(
                    old.at(&["status", "phase"]).and_then(Value::as_str),
                    Some("Succeeded") | Some("Failed")
                );
                let grace = grace_period_seconds
                    .or_else(|| {
                        old.at(&["spec", "terminationGracePeriodSeconds"])
                            .and_then(Value::as_i64)
                    })
                    .unwrap_or(30);
                (on_node && !terminal && grace > 0).then_some(grace)
            }
            "namespaces" => Some(0),
            _ => None,
        };
        if let Some(grace) = graceful {
            if old.at(&["metadata", "deletionTimestamp"]).is_some() {
                if grace_period_seconds != Some(0) {
                    return Ok(old);
                }
            } else {
                let mut new = old.clone();
                let when = self.clock.now_ms() + grace * 1000;
                new["metadata"]["deletionTimestamp"] = json!(crate::sim::rfc3339(when));
                new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                if res.plural == "namespaces" {
                    new["status"]["phase"] = json!("Terminating");
                }
                let Prepared { obj, rev, value } = self.prepare(res, new);
                let kv = self
                    .store
                    .update(&kv.key, value, kv.mod_revision)
                    .await
                    .map_err(|e| ApiError::from_store(e, res, name))?;
                return Ok(Arc::unwrap_or_clone(self.stored(res, &kv, obj, rev)));
            }
        }
        let nsk = Self::check_ns(res, ns)?;
        let (_, rev) = self
            .store
            .delete(&res.key(nsk, name), None)
            .await
            .map_err(|e| ApiError::from_store(e, res, name))?;
        self.note_write(res, "delete", rev);
        self.decoded.forget(&kv.key, rev);
        if res.plural == "services" {
            admission::service_allocations(&old).release(&mut self.alloc());
        }
        if res.plural == "pods" {
            return Ok(old);
        }
        let mut details = json!({"name": name, "kind": res.plural, "uid": meta_str(&old, "uid").unwrap_or_default()});
        if !res.group.is_empty() {
            details["group"] = json!(res.group);
        }
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        )
    }

    /// Which resource a storage key belongs to, with namespace and name.
    pub fn parse_key(key: &str) -> Option<(&'static Resource, Option<String>, String)> {
        let (r, rest) = Self::resource_of_key(key)?;
        if r.namespaced {
            let (ns, name) = rest.split_once('/')?;
            Some((r, Some(ns.to_owned()), name.to_owned()))
        } else {
            Some((r, None, rest.to_owned()))
        }
    }

    /// The resource a storage key belongs to (the longest matching storage prefix) and the
    /// rest of the key; allocation-free, as it runs for every watch event.
    fn resource_of_key(key: &str) -> Option<(&'static Resource, &str)> {
        /// Storage names by their first segment, longest first within one (so
        /// `services/endpoints` is tried whole): one map search instead of a prefix test
        /// per resource.
        type ByHead = BTreeMap<&'static str, Vec<(&'static str, &'static Resource)>>;
        static BY_HEAD: std::sync::LazyLock<ByHead> = std::sync::LazyLock::new(|| {
            let mut m = ByHead::new();
            for r in RESOURCES {
                let storage = r.storage_name();
                let head = storage.split('/').next().unwrap_or(storage);
                m.entry(head).or_default().push((storage, r));
            }
            for v in m.values_mut() {
                v.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
            }
            m
        });
        let head = key.split('/').next().unwrap_or(key);
        BY_HEAD.get(head)?.iter().find_map(|(storage, r)| {
            let rest = key.strip_prefix(storage)?.strip_prefix('/')?;
            Some((*r, rest))
        })
    }

    /// Decodes a raw store event into an object event.
    pub fn decode_event(ev: &WatchEvent) -> Option<ObjectEvent> {
        Self::decode_event_with(ev, true, None)
    }

    /// `with_old: false` skips decoding the previous value (an informer already has it);
    /// `decoded`, when given, supplies objects this server has already decoded.
    fn decode_event_with(
        ev: &WatchEvent,
        with_old: bool,
        decoded: Option<&Decoded>,
    ) -> Option<ObjectEvent> {
        let (res, _) = Self::resource_of_key(ev.key())?;
        Some(match ev {
            WatchEvent::Put { kv, prev } => ObjectEvent {
                resource: res,
                kind: if prev.is_none() {
                    EventType::Added
                } else {
                    EventType::Modified
                },
                object: match decoded {
                    Some(d) => d.load(res, kv).ok()?,
                    None => Arc::new(Self::present(res, kv).ok()?),
                },
                old: prev
                    .as_ref()
                    .filter(|_| with_old)
                    .and_then(|p| Self::present(res, p).ok())
                    .map(Arc::new),
                revision: kv.mod_revision,
            },
            WatchEvent::Delete { prev, revision } => {
                if let Some(d) = decoded {
                    d.forget(&prev.key, *revision);
                }
                let obj = Self::finish(res, Self::present(res, prev).ok()?, *revision);
                ObjectEvent {
                    resource: res,
                    kind: EventType::Deleted,
                    object: Arc::new(obj),
                    old: None,
                    revision: *revision,
                }
            }
        })
    }

    /// Every change under every resource from `start` on, for in-process informers (which
    /// keep the previous object themselves: `old` is not decoded). Changes to resources in
    /// `skip` arrive as bookmarks: the informer learns the revision without the object.
    pub async fn watch_all(
        &self,
        start: Revision,
        skip: &'static [&'static str],
    ) -> Result<BoxStream<'static, Result<WatchItem, StoreError>>, StoreError> {
        let s = self.store.watch("", start).await?;
        let decoded = Arc::clone(&self.decoded);
        Ok(s.filter_map(move |r| {
            let item = match r {
                Ok(ev) => match Self::resource_of_key(ev.key()) {
                    Some((res, _)) if skip.contains(&res.plural) => {
                        Some(Ok(WatchItem::Bookmark(ev.revision())))
                    }
                    _ => Self::decode_event_with(&ev, false, Some(&decoded))
                        .map(|e| Ok(WatchItem::Event(e))),
                },
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(item)
        })
        .boxed())
    }

    /// GET ?watch=1: `{"type":..., "object":...}` values, filtered by selectors; synthetic
    /// ADDED events first when no resourceVersion is given.
    pub async fn watch(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<BoxStream<'static, Value>, ApiError> {
        let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))?;
        let fields = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""))?;
        let ns = if res.namespaced {
            ns.map(str::to_owned)
        } else {
            None
        };
        let rv = q
            .resource_version
            .as_deref()
            .filter(|r| !r.is_empty() && *r != "0");
        let (initial, start) = match rv {
            Some(rv) => (
                Vec::new(),
                rv.parse::<Revision>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })? + 1,
            ),
            None => {
                let lq = ListQuery {
                    label_selector: q.label_selector.clone(),
                    field_selector: q.field_selector.clone(),
                    ..Default::default()
                };
                let (items, rev, _) = self.list_objects(res, ns.as_deref(), &lq).await?;
                (
                    items
                        .into_iter()
                        .map(|o| json!({"type": "ADDED", "object": o}))
                        .collect(),
                    rev + 1,
                )
            }
        };
        let stream = match self
            .store
            .watch(&res.key_prefix(ns.as_deref()), start)
            .await
        {
            Ok(s) => s,
            Err(StoreError::Compacted { requested, oldest }) => {
                let status = ApiError::expired(format!(
                    "too old resource version: {} ({})",
                    requested - 1,
                    oldest - 1
                ))
                .to_status();
                return Ok(
                    futures::stream::iter(vec![json!({"type": "ERROR", "object": status})]).boxed(),
                );
            }
            Err(e) => return Err(ApiError::from_store(e, res, "")),
        };
        let live = stream
            .filter_map(move |r| {
                let labels = labels.clone();
                let fields = fields.clone();
                async move {
                    let ev = match r {
                        Ok(ev) => ev,
                        Err(e) => {
                            let status = ApiError::from_store(e, res, "").to_status();
                            return Some(json!({"type": "ERROR", "object": status}));
                        }
                    };
                    let oe = Self::decode_event(&ev)?;
                    let now = labels.matches(&oe.object) && fields.matches(&oe.object);
                    let before = oe
                        .old
                        .as_ref()
                        .is_some_and(|o| labels.matches(o) && fields.matches(o));
                    let ty = match (oe.kind, before, now) {
                        (EventType::Deleted, _, true) => "DELETED",
                        (EventType::Added, _, true) => "ADDED",
                        (EventType::Modified, true, true) => "MODIFIED",
                        (EventType::Modified, false, true) => "ADDED",
                        (EventType::Modified, true, false) => "DELETED",
                        _ => return None,
                    };
                    Some(json!({"type": ty, "object": Arc::unwrap_or_clone(oe.object)}))
                }
            })
            .boxed();
        Ok(futures::stream::iter(initial).chain(live).boxed())
    }
}

fn has_status_subresource(res: &Resource) -> bool {
    matches!(
        res.plural,
        "pods"
            | "services"
            | "nodes"
            | "namespaces"
            | "deployments"
            | "replicasets"
            | "daemonsets"
            | "statefulsets"
            | "ingresses"
    )
}

/// A body's kind/apiVersion must name the resource it is sent to.
fn check_type(res: &Resource, obj: &Value) -> Result<(), ApiError> {
    let kind = crate::json::get(obj, "kind").and_then(Value::as_str);
    let av = crate::json::get(obj, "apiVersion").and_then(Value::as_str);
    if kind.is_some_and(|k| k != res.kind) || av.is_some_and(|a| !res.is_api_version(a)) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            av.unwrap_or(""),
            res.api_version()
        )));
    }
    Ok(())
}

/// Applies `patch` (of type `ptype`) to `obj`.
fn apply_patch(obj: &mut Value, patch: &Value, ptype: PatchType) -> Result<(), ApiError> {
    match ptype {
        PatchType::Merge => json_patch::merge(obj, patch),
        PatchType::Strategic => {
            crate::strategic::apply(obj, patch).map_err(ApiError::bad_request)?
        }
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(obj, &p).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: e.to_string(),
                details: None,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every resource's storage key names that resource again, including the ones stored
    /// under another resource's prefix (`services/endpoints/...` is not a Service).
    #[test]
    fn storage_keys_parse_back_to_their_resource() {
        for r in RESOURCES {
            let ns = r.namespaced.then_some("default");
            let key = r.key(ns, "web.v1");
            let parsed = ApiServer::parse_key(&key).map(|(p, n, name)| (p.plural, n, name));
            assert_eq!(
                parsed,
                Some((r.plural, ns.map(str::to_owned), "web.v1".to_owned())),
                "{key}"
            );
        }
        assert!(ApiServer::parse_key("services").is_none());
        assert!(ApiServer::parse_key("nosuchthing/default/x").is_none());
    }

    #[test]
    fn api_versions_match_without_building_them() {
        for r in RESOURCES {
            assert!(r.is_api_version(&r.api_version()), "{}", r.plural);
            assert!(!r.is_api_version("v2"), "{}", r.plural);
            assert!(!r.is_api_version(&format!("x{}", r.api_version())));
        }
    }
}
