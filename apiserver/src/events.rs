//! Events apart. In memory, Events live in a store of their own and are written on a
//! thread of their own, as clusters that give Events their own etcd do
//! (`kube-apiserver --etcd-servers-overrides=/events#…`, kops' `etcd-events`).
//!
//! Why: Events are two in five of a cluster's writes, and nothing in the cluster waits for
//! one (client-go's recorder sends them from a goroutine of its own). On a machine with a
//! second core, their writes then cost the simulation next to nothing.
//!
//! Determinism is kept by doing every choice on the caller's side, in the caller's order:
//! the namespace check, the uid and the timestamps are taken when the event is recorded;
//! the writer only builds, encodes and stores, first in, first out. Anything that reads or
//! writes Events otherwise (a `kubectl get events`, a count bump, a namespace's cleanup)
//! first waits until the writer is idle ([`EventWriter::wait`], called by
//! [`SplitStore`]), so it sees every event recorded before it, and no other.
//!
//! What the split changes that a user can see, as a separate etcd does: Events'
//! `resourceVersion`s count on their own, and other objects' no longer skip the revisions
//! Events took. Over etcd (`--store etcd://…`) Events stay in the one store, written in
//! line: the transcripts are the same but for `resourceVersion`s.

use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::ApiError;
use crate::json::object;
use crate::resources::Resource;
use crate::store::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, StoredValue, WatchStream,
};

/// The object an Event is about (`involvedObject`); a field missing from the object is
/// `null`, as client-go's `ObjectReference` leaves it empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: String,
    pub resource_version: Option<String>,
    pub uid: Option<String>,
}

/// One Event as a component's recorder makes it (core/v1 Event, count 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// `<object>.<hex nanoseconds>`, as client-go names them.
    pub name: String,
    pub namespace: String,
    pub involved: ObjectRef,
    /// `Normal` or `Warning`. This, the reason and the component are constants of the code
    /// recording the Event: static, not copied on the recorder's thread for every Event.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// `source.component` and `reportingComponent`.
    pub component: &'static str,
    /// `source.host` (a kubelet's node), and `reportingInstance`.
    pub host: Option<String>,
    /// `firstTimestamp` and `lastTimestamp`.
    pub time: String,
}

impl EventRecord {
    /// The object a client would POST. Built field by field, in key order, so the map takes
    /// the fields without sorting (`json!` would serialize each embedded value into a copy).
    pub fn to_object(self) -> Value {
        let text = |s: &str| Value::String(s.to_owned());
        let opt = |s: Option<String>| s.map_or(Value::Null, Value::String);
        let reporting_instance = text(self.host.as_deref().unwrap_or_default());
        let source = match self.host {
            Some(h) => object([
                ("component", text(self.component)),
                ("host", Value::String(h)),
            ]),
            None => object([("component", text(self.component))]),
        };
        let i = self.involved;
        let involved = object([
            ("apiVersion", opt(i.api_version)),
            ("kind", opt(i.kind)),
            ("name", Value::String(i.name)),
            ("namespace", Value::String(i.namespace)),
            ("resourceVersion", opt(i.resource_version)),
            ("uid", opt(i.uid)),
        ]);
        let metadata = object([
            ("name", Value::String(self.name)),
            ("namespace", Value::String(self.namespace)),
        ]);
        object([
            ("apiVersion", text("v1")),
            ("count", Value::from(1)),
            ("firstTimestamp", text(&self.time)),
            ("involvedObject", involved),
            ("kind", text("Event")),
            ("lastTimestamp", Value::String(self.time)),
            ("message", Value::String(self.message)),
            ("metadata", metadata),
            ("reason", text(self.reason)),
            ("reportingComponent", text(self.component)),
            ("reportingInstance", reporting_instance),
            ("source", source),
            ("type", text(self.type_)),
        ])
    }
}

/// An Event whose checks, uid and creation time were taken by the caller.
pub(crate) struct Admitted {
    pub event: EventRecord,
    pub uid: String,
    pub created: String,
}

impl Admitted {
    /// The object as the create path would store it: what `create_shared` adds to an
    /// Event's metadata, added here.
    fn into_object(self, res: &Resource) -> (String, Value) {
        let key = res.key(Some(&self.event.namespace), &self.event.name);
        let mut obj = self.event.to_object();
        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
            meta.insert("uid", Value::String(self.uid));
            meta.insert("creationTimestamp", Value::String(self.created));
        }
        (key, obj)
    }
}

fn events_resource() -> Option<&'static Resource> {
    crate::resources::find("events")
}

#[derive(Default)]
struct State {
    sent: u64,
    done: u64,
    /// Creates the writer made, for [`crate::ApiServer::write_counts`].
    created: u64,
    /// The first write that failed, kept until someone asks ([`EventWriter::take_error`]).
    error: Option<String>,
    /// The writer thread is gone (it never is while the sender lives, unless it panicked).
    gone: bool,
    /// Someone is in [`EventWriter::wait`] (only then is there anyone to wake).
    waiting: bool,
}

#[derive(Default)]
struct Progress {
    state: Mutex<State>,
    idle: Condvar,
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Marks the writer gone when its thread ends, however it ends, so no one waits forever.
struct Finished(Arc<Progress>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.lock().gone = true;
        self.0.idle.notify_all();
    }
}

/// Events handed to the writer at once. Waking a sleeping thread is a system call on each
/// side; one per event cost about what the writer saved.
const BATCH: usize = 256;

/// The thread that writes Events into their store, in the order they were recorded.
pub(crate) struct EventWriter {
    store: Arc<dyn Store>,
    /// Recorded, not yet handed over (a batch fills here).
    pending: Mutex<Vec<Admitted>>,
    tx: Mutex<Option<mpsc::Sender<Vec<Admitted>>>>,
    progress: Arc<Progress>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl EventWriter {
    /// Starts the writer over Events' own `store` (an in-process one: the writer blocks on
    /// its futures). Falls back to no thread (each event is written in line by the caller,
    /// see [`Self::submit`]) if the OS refuses one.
    pub(crate) fn start(store: Arc<dyn Store>) -> Arc<Self> {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::channel::<Vec<Admitted>>();
        let thread = {
            let store = Arc::clone(&store);
            let progress = Arc::clone(&progress);
            std::thread::Builder::new()
                .name("events".into())
                .spawn(move || {
                    let _finished = Finished(Arc::clone(&progress));
                    for batch in rx {
                        let n = batch.len() as u64;
                        let mut created = 0;
                        let mut failed = None;
                        for job in batch {
                            match write(&store, job) {
                                Ok(()) => created += 1,
                                Err(e) => {
                                    failed.get_or_insert(e);
                                }
                            }
                        }
                        let mut s = progress.lock();
                        s.done += n;
                        s.created += created;
                        if let Some(e) = failed {
                            s.error.get_or_insert(e);
                        }
                        if s.waiting && s.done == s.sent {
                            progress.idle.notify_all();
                        }
                    }
                })
                .ok()
        };
        let tx = thread.is_some().then_some(tx);
        Arc::new(EventWriter {
            store,
            pending: Mutex::new(Vec::with_capacity(BATCH)),
            tx: Mutex::new(tx),
            progress,
            thread: Mutex::new(thread),
        })
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Queues one event; an earlier event's failure is returned now (its caller is gone).
    pub(crate) fn submit(&self, job: Admitted) -> Result<(), ApiError> {
        self.take_error()?;
        if lock(&self.tx).is_none() {
            // No thread: write in line.
            return write(&self.store, job).map_err(ApiError::internal);
        }
        let full = {
            let mut pending = lock(&self.pending);
            pending.push(job);
            pending.len() >= BATCH
        };
        if full {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Hands the pending events to the writer. If it is gone they stay pending (and
    /// [`Drop`] writes them in line).
    fn hand_over(&self) -> Result<(), ApiError> {
        let tx = lock(&self.tx);
        let mut pending = lock(&self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        let Some(tx) = tx.as_ref() else {
            return Err(ApiError::internal("the event writer has stopped"));
        };
        let batch = std::mem::replace(&mut *pending, Vec::with_capacity(BATCH));
        let n = batch.len() as u64;
        self.progress.lock().sent += n;
        tx.send(batch).map_err(|mpsc::SendError(batch)| {
            self.progress.lock().sent -= n;
            *pending = batch;
            ApiError::internal("the event writer has stopped")
        })
    }

    /// Returns once every event submitted so far is in the store.
    pub(crate) fn wait(&self) {
        if let Err(e) = self.hand_over() {
            self.progress.lock().error.get_or_insert(e.message);
        }
        let mut s = self.progress.lock();
        while s.done < s.sent && !s.gone {
            s.waiting = true;
            s = match self.progress.idle.wait(s) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        s.waiting = false;
        if s.done < s.sent {
            let lost = s.sent - s.done;
            s.error.get_or_insert(format!(
                "the event writer stopped with {lost} events unwritten"
            ));
        }
    }

    /// The first event write that failed since the last call, as an error.
    pub(crate) fn take_error(&self) -> Result<(), ApiError> {
        match self.progress.lock().error.take() {
            Some(e) => Err(ApiError::internal(format!(
                "recording an event failed: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// Events the writer has created (waits for it first).
    pub(crate) fn created(&self) -> u64 {
        self.wait();
        self.progress.lock().created
    }
}

impl Drop for EventWriter {
    /// Stores what is still pending (an apiserver going away loses no Event), then stops.
    fn drop(&mut self) {
        if self.hand_over().is_err() {
            for job in std::mem::take(&mut *lock(&self.pending)) {
                let _ = write(&self.store, job);
            }
        }
        lock(&self.tx).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// What the create path does after its checks: validate the name, finish, encode, store.
fn write(store: &Arc<dyn Store>, job: Admitted) -> Result<(), String> {
    let res = events_resource().ok_or("no events resource")?;
    let errs = crate::validation::name_errors(
        "metadata.name",
        &job.event.name,
        crate::admission::name_rule(res),
    );
    if !errs.is_empty() {
        return Err(ApiError::invalid(res, &job.event.name, errs).message);
    }
    let (key, obj) = job.into_object(res);
    let obj = crate::api::ApiServer::finish(res, obj, 0);
    let value = StoredValue::encoded(&obj);
    drop(obj);
    futures::executor::block_on(store.create(&key, value))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The apiserver's store when Events are apart: keys under `events/` go to the writer's
/// store (once it is idle), everything else to the main store. A list or watch of every
/// key (prefix `""`) covers the main store only: the in-process informer is its one user,
/// and it skips Events.
pub(crate) struct SplitStore {
    main: Arc<dyn Store>,
    events: Arc<EventWriter>,
}

impl SplitStore {
    pub(crate) fn new(main: Arc<dyn Store>, events: Arc<EventWriter>) -> Self {
        SplitStore { main, events }
    }

    /// The store `key` (or prefix) lives in.
    fn route(&self, key: &str) -> &dyn Store {
        if key.starts_with("events/") {
            self.events.wait();
            self.events.store().as_ref()
        } else {
            self.main.as_ref()
        }
    }
}

#[async_trait]
impl Store for SplitStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.route(key).get(key).await
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListPage, StoreError> {
        self.route(prefix).list(prefix, opts).await
    }

    async fn create(&self, key: &str, value: StoredValue) -> Result<KeyValue, StoreError> {
        self.route(key).create(key, value).await
    }

    async fn update(
        &self,
        key: &str,
        value: StoredValue,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.route(key).update(key, value, expected).await
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        self.route(key).delete(key, expected).await
    }

    async fn watch(&self, prefix: &str, start: Revision) -> Result<WatchStream, StoreError> {
        self.route(prefix).watch(prefix, start).await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.main.current_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.main.compact(revision).await
    }

    fn describe(&self) -> String {
        self.main.describe()
    }

    fn returns_written_values(&self) -> bool {
        true
    }
}
