//! The informer cache: a local mirror of every object, fed by one watch on the store, with
//! the indexes controllers need (by owner, by label pair). Read-only to controllers; only
//! the cluster driver applies events (kube-rs reflector: one writer, many readers).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::Included;
use std::sync::Arc;

use apiserver::json::{self, At, Pointer};
use apiserver::{EventType, ObjectEvent};
use serde_json::Value;

/// `namespace/name` (or `name` for cluster-scoped objects).
pub type Key = String;

pub fn key_of(obj: &Value) -> Key {
    let meta = json::get(obj, "metadata");
    let name = meta
        .and_then(|m| json::get(m, "name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match meta
        .and_then(|m| json::get(m, "namespace"))
        .and_then(Value::as_str)
    {
        // Not `format!`: this runs for every watch event, and the formatting machinery
        // cost several times the copy.
        Some(ns) => {
            let mut key = String::with_capacity(ns.len() + 1 + name.len());
            key.push_str(ns);
            key.push('/');
            key.push_str(name);
            key
        }
        None => name.to_owned(),
    }
}

pub use apiserver::json::object;

/// A field's value, or `null` where it is missing (as `json!` writes a `None`).
pub fn or_null(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or(Value::Null)
}

/// `old`'s top-level fields except `skip`, copied: for building the next version of an
/// object whose `skip` fields are about to be replaced (copying those would be wasted).
pub fn without(old: &Value, skip: &[&str]) -> Value {
    Value::Object(
        old.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

pub fn str_at<'a, P: Pointer + ?Sized>(v: &'a Value, ptr: &P) -> Option<&'a str> {
    v.at(ptr).and_then(Value::as_str)
}

/// Which indexes a change touches. Most changes are status writes, which touch none; a
/// pod's binding changes only its node, and re-indexing its labels and owners as well
/// was two label-index removals and insertions per pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parts {
    labels: bool,
    owners: bool,
    /// The pod's node, or its first owner: the per-node counts are kept by both.
    node: bool,
    selector: bool,
}

impl Parts {
    const ALL: Parts = Parts {
        labels: true,
        owners: true,
        node: true,
        selector: true,
    };

    /// Compares the fields the indexes are built from. A status write carries the stored
    /// spec itself (one copy-on-write map), whose fields are not looked up.
    fn changed(old: &Value, new: &Value) -> Parts {
        let (get, field) = (json::get, json::get_in);
        let (old_meta, new_meta) = (get(old, "metadata"), get(new, "metadata"));
        let (old_spec, new_spec) = (get(old, "spec"), get(new, "spec"));
        let differs = |a: Option<&Value>, b: Option<&Value>, k: &str| field(a, k) != field(b, k);
        let same_spec = match (old_spec, new_spec) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => a.ptr_eq(b),
            (a, b) => a.is_none() && b.is_none(),
        };
        let owners = differs(old_meta, new_meta, "ownerReferences");
        Parts {
            labels: differs(old_meta, new_meta, "labels"),
            owners,
            node: owners || (!same_spec && differs(old_spec, new_spec, "nodeName")),
            selector: !same_spec && differs(old_spec, new_spec, "selector"),
        }
    }
}

#[derive(Default)]
pub struct Cache {
    /// plural → key → object, shared with the apiserver's decoded objects.
    objects: BTreeMap<&'static str, BTreeMap<Key, Arc<Value>>>,
    /// owner uid → plural → key → dependent. The objects themselves, kept current on every
    /// change: a controller syncing an owner reads its dependents from here, where a key
    /// would cost a search of the kind's whole map per dependent.
    by_owner: BTreeMap<String, BTreeMap<&'static str, BTreeMap<Key, Dependent>>>,
    /// (namespace, label key, label value) → pod keys.
    pods_by_label: LabelIndex,
    /// (namespace, first selector key, value) → services: a pod can only be selected by a
    /// Service whose first selector pair it carries.
    services_by_selector: LabelIndex,
    /// Each node name's number, given in the order names are first seen (a Node, or a pod
    /// bound to that name): the scheduler's spread counts are indexed by it, where looking
    /// every node up by name for every pod was a string compare per node per count.
    node_numbers: BTreeMap<String, usize>,
    /// Pods bound to each node, by node number, and per (first owner uid, node): the
    /// scheduler's spread counts, kept here so that scheduling one pod does not walk every pod.
    pods_on_node: Vec<usize>,
    /// owner uid → node number → pods.
    owned_pods_on_node: BTreeMap<String, BTreeMap<usize, usize>>,
    pub revision: i64,
}

/// A dependent in the owner index, with what its owner's controller asks of a pod on
/// every sync, read once per change of the pod instead of once per sync of its owner
/// (a ReplicaSet of ten pods is synced about forty times on its way up).
#[derive(Clone, Debug)]
struct Dependent {
    obj: Arc<Value>,
    facts: PodFacts,
}

/// A pod's standing with its controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Neither terminating nor finished (`controller.IsPodActive`).
    pub active: bool,
    /// Its Ready condition is True.
    pub ready: bool,
}

impl PodFacts {
    pub fn of(pod: &Value) -> Self {
        PodFacts {
            active: super::workloads::is_active(pod),
            ready: super::workloads::is_ready(pod),
        }
    }
}

impl Dependent {
    fn new(plural: &str, obj: &Arc<Value>) -> Self {
        let facts = if plural == "pods" {
            PodFacts::of(obj)
        } else {
            PodFacts::default()
        };
        Dependent {
            obj: Arc::clone(obj),
            facts,
        }
    }
}

impl Cache {
    /// Applies a watch event to the object at `key` (the event object's [`key_of`], which
    /// the caller has already made), returning the version it replaced.
    pub fn apply(&mut self, ev: ObjectEvent, key: Key) -> Option<Arc<Value>> {
        self.revision = self.revision.max(ev.revision);
        let plural = ev.resource.plural;
        let deleted = ev.kind == EventType::Deleted;
        // One search of the kind's map: the new object takes the old one's slot.
        let objects = self.objects.entry(plural).or_default();
        let old = if deleted {
            objects.remove(&key)
        } else if let Some(slot) = objects.get_mut(&key) {
            Some(std::mem::replace(slot, Arc::clone(&ev.object)))
        } else {
            objects.insert(key.clone(), Arc::clone(&ev.object));
            None
        };
        let parts = match &old {
            Some(o) if !deleted => Parts::changed(o, &ev.object),
            _ => Parts::ALL,
        };
        if let Some(old) = &old {
            self.unindex(plural, &key, old, parts);
        }
        if !deleted {
            self.index(plural, &key, &ev.object, parts);
        }
        if !deleted && !parts.owners {
            // Same owners: the owner index's copy moves to the new version.
            let mut dependent = None;
            for uid in Self::owner_uids(&ev.object) {
                let slot = self
                    .by_owner
                    .get_mut(uid)
                    .and_then(|kinds| kinds.get_mut(plural))
                    .and_then(|deps| deps.get_mut(&key));
                if let Some(slot) = slot {
                    *slot = dependent
                        .get_or_insert_with(|| Dependent::new(plural, &ev.object))
                        .clone();
                }
            }
        }
        old
    }

    fn owner_uids(obj: &Value) -> impl Iterator<Item = &str> {
        obj.at(&["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| json::get(o, "uid").and_then(Value::as_str))
    }

    fn labels(obj: &Value) -> impl Iterator<Item = (&str, &str)> {
        obj.at(&["metadata", "labels"])
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
    }

    fn first_selector_pair(obj: &Value) -> Option<(&str, &str, &str)> {
        let ns = str_at(obj, &["metadata", "namespace"])?;
        let (k, v) = obj
            .at(&["spec", "selector"])
            .and_then(Value::as_object)?
            .iter()
            .next()?;
        Some((ns, k.as_str(), v.as_str().unwrap_or_default()))
    }

    fn index(&mut self, plural: &'static str, key: &Key, obj: &Arc<Value>, parts: Parts) {
        if plural == "services" && parts.selector {
            if let Some((ns, k, v)) = Self::first_selector_pair(obj) {
                self.services_by_selector.insert(ns, k, v, key);
            }
        }
        if parts.owners {
            for uid in Self::owner_uids(obj) {
                let kinds = match self.by_owner.get_mut(uid) {
                    Some(kinds) => kinds,
                    None => self.by_owner.entry(uid.to_owned()).or_default(),
                };
                kinds
                    .entry(plural)
                    .or_default()
                    .insert(key.clone(), Dependent::new(plural, obj));
            }
        }
        if plural == "nodes" {
            if let Some(name) = str_at(obj, &["metadata", "name"]) {
                self.number_node(name);
            }
        }
        if plural == "pods" {
            if parts.labels {
                let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or_default();
                for (k, v) in Self::labels(obj) {
                    self.pods_by_label.insert(ns, k, v, key);
                }
            }
            if parts.node {
                if let Some(node) = str_at(obj, &["spec", "nodeName"]) {
                    let n = self.number_node(node);
                    self.pods_on_node[n] += 1;
                    if let Some(owner) = Self::first_owner(obj) {
                        *self
                            .owned_pods_on_node
                            .entry(owner.to_owned())
                            .or_default()
                            .entry(n)
                            .or_default() += 1;
                    }
                }
            }
        }
    }

    /// `name`'s node number, given now if it has none yet.
    fn number_node(&mut self, name: &str) -> usize {
        if let Some(&n) = self.node_numbers.get(name) {
            return n;
        }
        let n = self.pods_on_node.len();
        self.node_numbers.insert(name.to_owned(), n);
        self.pods_on_node.push(0);
        n
    }

    fn unindex(&mut self, plural: &'static str, key: &Key, obj: &Value, parts: Parts) {
        if plural == "services" && parts.selector {
            if let Some((ns, k, v)) = Self::first_selector_pair(obj) {
                self.services_by_selector.remove(ns, k, v, key);
            }
        }
        if parts.owners {
            for uid in Self::owner_uids(obj) {
                if let Some(kinds) = self.by_owner.get_mut(uid) {
                    if let Some(deps) = kinds.get_mut(plural) {
                        deps.remove(key);
                        if deps.is_empty() {
                            kinds.remove(plural);
                        }
                    }
                    if kinds.is_empty() {
                        self.by_owner.remove(uid);
                    }
                }
            }
        }
        if plural == "pods" {
            if parts.labels {
                let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or_default();
                for (k, v) in Self::labels(obj) {
                    self.pods_by_label.remove(ns, k, v, key);
                }
            }
            let node = str_at(obj, &["spec", "nodeName"]).filter(|_| parts.node);
            if let Some(&n) = node.and_then(|node| self.node_numbers.get(node)) {
                if let Some(count) = self.pods_on_node.get_mut(n) {
                    *count = count.saturating_sub(1);
                }
                if let Some(owner) = Self::first_owner(obj) {
                    if let Some(per_node) = self.owned_pods_on_node.get_mut(owner) {
                        decrement(per_node, n);
                        if per_node.is_empty() {
                            self.owned_pods_on_node.remove(owner);
                        }
                    }
                }
            }
        }
    }

    fn first_owner(obj: &Value) -> Option<&str> {
        str_at(obj, &["metadata", "ownerReferences", "0", "uid"])
    }

    /// The number the cache gave node `name` (every Node it has seen has one).
    pub fn node_number(&self, name: &str) -> Option<usize> {
        self.node_numbers.get(name).copied()
    }

    /// Pods bound to the node numbered `n`.
    pub fn pods_on_node(&self, n: usize) -> usize {
        self.pods_on_node.get(n).copied().unwrap_or(0)
    }

    /// Pods of `owner_uid` (first owner) bound to each node, by node number.
    pub fn owned_pods_per_node(&self, owner_uid: &str) -> Option<&BTreeMap<usize, usize>> {
        self.owned_pods_on_node.get(owner_uid)
    }

    pub fn get(&self, plural: &str, key: &str) -> Option<&Value> {
        self.get_shared(plural, key).map(|o| &**o)
    }

    /// The object itself, to keep past a write (cloning the `Arc`, not the object).
    pub fn get_shared(&self, plural: &str, key: &str) -> Option<&Arc<Value>> {
        self.objects.get(plural).and_then(|m| m.get(key))
    }

    /// All objects of a kind, in key order.
    pub fn all(&self, plural: &str) -> impl Iterator<Item = &Value> {
        self.objects
            .get(plural)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|o| &**o)
    }

    /// [`Self::all`], as shared objects to keep past a write.
    pub fn all_shared(&self, plural: &str) -> impl Iterator<Item = &Arc<Value>> {
        self.objects
            .get(plural)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Objects of a kind in one namespace, in name order.
    pub fn in_ns<'a>(&'a self, plural: &str, ns: &str) -> impl Iterator<Item = &'a Value> + 'a {
        let prefix = format!("{ns}/");
        self.objects
            .get(plural)
            .into_iter()
            .flat_map(move |m| {
                m.range(prefix.clone()..).take_while({
                    let p = prefix.clone();
                    move |(k, _)| k.starts_with(&p)
                })
            })
            .map(|(_, v)| &**v)
    }

    /// Dependents of an owner uid.
    pub fn owned_by(&self, uid: &str, plural: &str) -> Vec<&Value> {
        self.owned_by_shared(uid, plural)
            .into_iter()
            .map(|o| &**o)
            .collect()
    }

    /// [`Self::owned_by`], as shared objects to keep past a write.
    pub fn owned_by_shared(&self, uid: &str, plural: &str) -> Vec<&Arc<Value>> {
        self.by_owner
            .get(uid)
            .and_then(|kinds| kinds.get(plural))
            .map(|deps| deps.values().map(|d| &d.obj).collect())
            .unwrap_or_default()
    }

    /// The pods `uid` owns, in key order, each with its [`PodFacts`].
    pub fn owned_pods(&self, uid: &str) -> impl Iterator<Item = (&Arc<Value>, PodFacts)> {
        self.by_owner
            .get(uid)
            .and_then(|kinds| kinds.get("pods"))
            .into_iter()
            .flat_map(|deps| deps.values().map(|d| (&d.obj, d.facts)))
    }

    pub fn dependents(&self, uid: &str) -> Vec<(&'static str, Key)> {
        self.by_owner
            .get(uid)
            .into_iter()
            .flatten()
            .flat_map(|(plural, deps)| deps.keys().map(|k| (*plural, k.clone())))
            .collect()
    }

    /// Services in `ns` whose (non-empty) selector matches `pod`'s labels, in key order.
    pub fn services_selecting(&self, ns: &str, pod: &Value) -> BTreeSet<Key> {
        let Some(labels) = pod.at(&["metadata", "labels"]).and_then(Value::as_object) else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            for key in self
                .services_by_selector
                .get(ns, k, v)
                .into_iter()
                .flatten()
            {
                let matches = self
                    .get("services", key)
                    .and_then(|s| s.at(&["spec", "selector"]))
                    .and_then(Value::as_object)
                    .is_some_and(|sel| sel.iter().all(|(sk, sv)| labels.get(sk) == Some(sv)));
                if matches {
                    out.insert(key.clone());
                }
            }
        }
        out
    }

    /// Pods in `ns` whose labels match a `key=value` selector map (all pairs), with their
    /// keys, in key order.
    pub fn pods_matching(
        &self,
        ns: &str,
        selector: &serde_json::Map<String, Value>,
    ) -> Vec<(&Key, &Arc<Value>)> {
        // The pods carrying the rarest pair are the candidates.
        let mut best: Option<(&str, &BTreeSet<Key>)> = None;
        for (k, v) in selector {
            // A label's value is a string: no pod carries any other.
            let Some(v) = v.as_str() else {
                return Vec::new();
            };
            match self.pods_by_label.get(ns, k, v) {
                None => return Vec::new(),
                Some(s) => {
                    if best.is_none_or(|(_, b)| s.len() < b.len()) {
                        best = Some((k.as_str(), s));
                    }
                }
            }
        }
        let Some((found_by, cands)) = best else {
            return Vec::new();
        };
        // Every candidate carries the pair it was found by: only the others are looked at,
        // and a one-pair selector (the common case) does not read the pods at all.
        let others: Vec<(&str, &Value)> = selector
            .iter()
            .filter(|(k, _)| k.as_str() != found_by)
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        self.pods_of(cands)
            .filter(|(_, p)| {
                others.is_empty() || {
                    let labels = json::path(p, &["metadata", "labels"]);
                    others
                        .iter()
                        .all(|&(k, v)| json::get_in(labels, k) == Some(v))
                }
            })
            .collect()
    }
}

impl Cache {
    /// The pods at `keys` (those that exist), in key order. A controller names its pods
    /// alike, so the keys a label finds mostly sit together in the pod map: they are
    /// walked in step with that stretch of it, where searching the whole map for each
    /// (10,000 pods, 14 string compares a search) was most of a Service sync's reads. A
    /// stretch holding too many other pods falls back to searching.
    fn pods_of<'a>(
        &'a self,
        keys: &'a BTreeSet<Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        let pods = self.objects.get("pods");
        let stretch = match (pods, keys.first(), keys.last()) {
            (Some(pods), Some(first), Some(last)) => {
                Some(pods.range::<str, _>((Included(first.as_str()), Included(last.as_str()))))
            }
            _ => None,
        };
        let mut stretch = stretch.into_iter().flatten().peekable();
        // Steps past pods that are not wanted, before searching instead.
        let mut budget = 2 * keys.len() + 8;
        keys.iter().filter_map(move |k| {
            while budget > 0 {
                match stretch.peek() {
                    Some((at, _)) if at.as_str() < k.as_str() => {
                        stretch.next();
                        budget -= 1;
                    }
                    Some((at, pod)) if *at == k => {
                        let pod = *pod;
                        stretch.next();
                        return Some((k, pod));
                    }
                    _ => return None,
                }
            }
            Some((k, pods?.get(k)?))
        })
    }
}

/// (namespace, label key, label value) → object keys. Nested, so that a lookup borrows its
/// three parts instead of building an owned tuple (three allocations) per label per event.
#[derive(Default)]
struct LabelIndex(BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeSet<Key>>>>);

impl LabelIndex {
    fn get(&self, ns: &str, k: &str, v: &str) -> Option<&BTreeSet<Key>> {
        self.0.get(ns)?.get(k)?.get(v)
    }

    /// Each level's key is copied only when that level is new: `entry` takes an owned key,
    /// and most inserts land in a namespace, label and value already indexed.
    fn insert(&mut self, ns: &str, k: &str, v: &str, key: &Key) {
        fn level<'m, T: Default>(m: &'m mut BTreeMap<String, T>, at: &str) -> &'m mut T {
            if !m.contains_key(at) {
                m.insert(at.to_owned(), T::default());
            }
            match m.get_mut(at) {
                Some(t) => t,
                None => unreachable!("inserted above"),
            }
        }
        let by_key = level(&mut self.0, ns);
        let by_value = level(by_key, k);
        level(by_value, v).insert(key.clone());
    }

    /// Removes `key`, and every level it leaves empty.
    fn remove(&mut self, ns: &str, k: &str, v: &str, key: &Key) {
        let Some(by_key) = self.0.get_mut(ns) else {
            return;
        };
        if let Some(by_value) = by_key.get_mut(k) {
            if let Some(keys) = by_value.get_mut(v) {
                keys.remove(key);
                if keys.is_empty() {
                    by_value.remove(v);
                }
            }
            if by_value.is_empty() {
                by_key.remove(k);
            }
        }
        if by_key.is_empty() {
            self.0.remove(ns);
        }
    }
}

fn decrement<K: Ord>(counts: &mut BTreeMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(plural: &str, kind: EventType, object: Value) -> ObjectEvent {
        ObjectEvent {
            resource: apiserver::resources::find(plural).unwrap(),
            kind,
            object: Arc::new(object),
            old: None,
            revision: 1,
        }
    }

    fn pod(name: &str, node: &str, owner: &str) -> Value {
        serde_json::json!({"metadata": {"name": name, "namespace": "default",
            "ownerReferences": [{"uid": owner}]}, "spec": {"nodeName": node}})
    }

    #[test]
    fn spread_counts_follow_pods_by_node_number() {
        let mut c = Cache::default();
        for n in ["node-b", "node-a"] {
            let node = serde_json::json!({"metadata": {"name": n}});
            c.apply(event("nodes", EventType::Added, node), n.to_owned());
        }
        // Numbered in the order first seen, pods or not.
        assert_eq!(c.node_number("node-b"), Some(0));
        assert_eq!(c.node_number("node-a"), Some(1));
        assert_eq!(c.node_number("node-c"), None);
        for (name, node, owner) in [
            ("p1", "node-a", "rs1"),
            ("p2", "node-a", "rs2"),
            ("p3", "node-c", "rs1"),
        ] {
            let key = format!("default/{name}");
            c.apply(event("pods", EventType::Added, pod(name, node, owner)), key);
        }
        // A pod bound to a name no Node has yet gives that name a number too.
        assert_eq!(c.node_number("node-c"), Some(2));
        assert_eq!(
            (c.pods_on_node(0), c.pods_on_node(1), c.pods_on_node(2)),
            (0, 2, 1)
        );
        assert_eq!(c.pods_on_node(9), 0);
        let rs1: Vec<(usize, usize)> = c
            .owned_pods_per_node("rs1")
            .unwrap()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(rs1, [(1, 1), (2, 1)]);
        // Deleting a pod takes it off its node's counts, and an owner with none left goes.
        c.apply(
            event("pods", EventType::Deleted, pod("p2", "node-a", "rs2")),
            "default/p2".to_owned(),
        );
        assert_eq!(c.pods_on_node(1), 1);
        assert!(c.owned_pods_per_node("rs2").is_none());
    }

    #[test]
    fn pods_matching_checks_every_pair_of_a_selector() {
        let mut c = Cache::default();
        for (name, labels) in [
            ("a", serde_json::json!({"app": "web", "tier": "front"})),
            ("b", serde_json::json!({"app": "web"})),
            ("c", serde_json::json!({"app": "db", "tier": "front"})),
        ] {
            let p = serde_json::json!({"metadata": {"name": name, "namespace": "default",
                "labels": labels}});
            c.apply(
                event("pods", EventType::Added, p),
                format!("default/{name}"),
            );
        }
        let names = |sel: Value| -> Vec<String> {
            c.pods_matching("default", sel.as_object().unwrap())
                .into_iter()
                .map(|(k, _)| k.clone())
                .collect()
        };
        assert_eq!(
            names(serde_json::json!({"app": "web"})),
            ["default/a", "default/b"]
        );
        assert_eq!(
            names(serde_json::json!({"app": "web", "tier": "front"})),
            ["default/a"],
            "a pod carrying one pair of two is not selected"
        );
        assert!(names(serde_json::json!({"app": "web", "tier": "back"})).is_empty());
        assert!(
            names(serde_json::json!({"app": 1})).is_empty(),
            "labels are strings"
        );
        assert!(c
            .pods_matching(
                "other",
                serde_json::json!({"app": "web"}).as_object().unwrap()
            )
            .is_empty());
    }

    #[test]
    fn each_index_follows_the_fields_it_is_built_from() {
        let mut c = Cache::default();
        let key = "default/p".to_owned();
        let put = |c: &mut Cache, kind, labels: Value, owner: &str, node: Option<&str>| {
            let mut p = serde_json::json!({"metadata": {"name": "p", "namespace": "default",
                "labels": labels, "ownerReferences": [{"uid": owner}]}, "spec": {}});
            if let Some(n) = node {
                p["spec"]["nodeName"] = n.into();
            }
            let ev = event("pods", kind, p);
            let obj = Arc::clone(&ev.object);
            c.apply(ev, "default/p".to_owned());
            obj
        };
        let web = serde_json::json!({"app": "web"});
        let selecting = |c: &Cache, app: &str| -> Vec<Arc<Value>> {
            let sel = serde_json::json!({ "app": app });
            c.pods_matching("default", sel.as_object().unwrap())
                .into_iter()
                .map(|(_, p)| Arc::clone(p))
                .collect()
        };
        let owned = |c: &Cache, uid: &str| -> Vec<Arc<Value>> {
            c.owned_pods(uid).map(|(p, _)| Arc::clone(p)).collect()
        };
        put(&mut c, EventType::Added, web.clone(), "rs1", None);
        // Bound: only the node changed; the other indexes hold the new version.
        let bound = put(&mut c, EventType::Modified, web.clone(), "rs1", Some("n1"));
        let n1 = c.node_number("n1").unwrap();
        assert_eq!(c.pods_on_node(n1), 1);
        assert_eq!(c.owned_pods_per_node("rs1").unwrap().get(&n1), Some(&1));
        assert!(Arc::ptr_eq(&selecting(&c, "web")[0], &bound));
        assert!(Arc::ptr_eq(&owned(&c, "rs1")[0], &bound));
        // Relabelled: found by its new label only; its node count stays.
        let db = serde_json::json!({"app": "db"});
        let relabelled = put(&mut c, EventType::Modified, db.clone(), "rs1", Some("n1"));
        assert!(selecting(&c, "web").is_empty());
        assert!(Arc::ptr_eq(&selecting(&c, "db")[0], &relabelled));
        assert_eq!(c.pods_on_node(n1), 1);
        // Adopted by another owner: the owner index and the per-owner node counts move.
        let adopted = put(&mut c, EventType::Modified, db.clone(), "rs2", Some("n1"));
        assert!(owned(&c, "rs1").is_empty());
        assert!(Arc::ptr_eq(&owned(&c, "rs2")[0], &adopted));
        assert!(c.owned_pods_per_node("rs1").is_none());
        assert_eq!(c.owned_pods_per_node("rs2").unwrap().get(&n1), Some(&1));
        assert_eq!(c.pods_on_node(n1), 1);
        // A status write leaves every index as it was, pointing at the new version.
        let status = put(&mut c, EventType::Modified, db.clone(), "rs2", Some("n1"));
        assert!(Arc::ptr_eq(&owned(&c, "rs2")[0], &status));
        assert!(Arc::ptr_eq(&selecting(&c, "db")[0], &status));
        assert_eq!(c.pods_on_node(n1), 1);
        // So does one that carries the stored spec itself (a copy-on-write copy).
        let mut copy = (*status).clone();
        copy["status"] = serde_json::json!({"phase": "Running"});
        let ev = event("pods", EventType::Modified, copy);
        let running = Arc::clone(&ev.object);
        c.apply(ev, key.clone());
        assert!(Arc::ptr_eq(&owned(&c, "rs2")[0], &running));
        assert!(Arc::ptr_eq(&selecting(&c, "db")[0], &running));
        assert_eq!(c.pods_on_node(n1), 1);
        put(&mut c, EventType::Deleted, db, "rs2", Some("n1"));
        assert!(selecting(&c, "db").is_empty() && owned(&c, "rs2").is_empty());
        assert_eq!(c.pods_on_node(n1), 0);
        assert!(c.get("pods", &key).is_none());
    }

    #[test]
    fn pods_of_keys_finds_each_existing_pod_walking_or_searching() {
        let mut c = Cache::default();
        // web-0..web-4 together; db-00..db-39 sort before them, zz-1 after.
        let names = (0..5)
            .map(|i| format!("web-{i}"))
            .chain((0..40).map(|i| format!("db-{i:02}")))
            .chain(["zz-1".to_owned()]);
        for name in names {
            let p = serde_json::json!({"metadata": {"name": name, "namespace": "default"}});
            c.apply(
                event("pods", EventType::Added, p),
                format!("default/{name}"),
            );
        }
        let found = |keys: &[&str]| -> Vec<String> {
            let keys: BTreeSet<Key> = keys.iter().map(|k| format!("default/{k}")).collect();
            let found: Vec<String> = c.pods_of(&keys).map(|(k, _)| k.clone()).collect();
            // Each key is paired with its own pod.
            for (k, p) in c.pods_of(&keys) {
                assert_eq!(&key_of(p), k);
            }
            found
                .iter()
                .map(|k| k["default/".len()..].to_owned())
                .collect()
        };
        // Together (walked), with keys no pod has among and after them.
        assert_eq!(
            found(&["web-1", "web-2", "web-22", "web-4", "web-9", "zz-0"]),
            ["web-1", "web-2", "web-4"]
        );
        // Apart: the 43 pods between db-00 and zz-1 are more than the walk steps over.
        assert_eq!(
            found(&["db-00", "db-39", "nope", "zz-1", "zz-2"]),
            ["db-00", "db-39", "zz-1"]
        );
        assert!(found(&[]).is_empty());
        assert!(Cache::default()
            .pods_of(&["default/x".to_owned()].into())
            .next()
            .is_none());
    }

    #[test]
    fn label_index_finds_inserts_and_prunes_what_it_empties() {
        let mut ix = LabelIndex::default();
        let (a, b) = ("default/a".to_owned(), "default/b".to_owned());
        ix.insert("default", "app", "web", &a);
        ix.insert("default", "app", "web", &b);
        ix.insert("default", "tier", "front", &a);
        ix.insert("other", "app", "web", &a);
        assert_eq!(ix.get("default", "app", "web").map(BTreeSet::len), Some(2));
        assert_eq!(ix.get("default", "app", "db"), None);
        assert_eq!(ix.get("nope", "app", "web"), None);
        ix.remove("default", "app", "web", &a);
        assert_eq!(
            ix.get("default", "app", "web")
                .map(|s| s.iter().collect::<Vec<_>>()),
            Some(vec![&b])
        );
        ix.remove("default", "app", "web", &b);
        assert_eq!(ix.get("default", "app", "web"), None);
        assert!(
            !ix.0["default"].contains_key("app"),
            "emptied label key pruned"
        );
        ix.remove("default", "tier", "front", &a);
        assert!(!ix.0.contains_key("default"), "emptied namespace pruned");
        ix.remove("gone", "x", "y", &a);
        assert_eq!(ix.0.len(), 1);
    }
}
