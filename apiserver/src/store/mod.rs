//! The Store: an etcd-shaped, revisioned key-value store under the apiserver.
//!
//! Shaped like etcd v3 so that the in-memory default and the real etcd backend are two
//! implementations of one contract: one global revision that every write bumps, per-key
//! `create_revision`/`mod_revision`, create-if-absent, compare-and-swap on `mod_revision`,
//! ranges read at one revision, and watches that replay history from a revision.
//! The apiserver maps `resourceVersion` to `mod_revision` (lists: the range's revision).
//!
//! Keys passed in are relative (`pods/default/web`); a backend roots them under its own
//! prefix (`/registry/` by default), so that several clusters can share one etcd.

mod etcd;
mod memory;
mod value;

pub use etcd::{parse_store_url, EtcdConfig, EtcdStore};
pub use memory::MemStore;
pub use value::StoredValue;

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

/// etcd's revision: a cluster-wide counter bumped by every write.
pub type Revision = i64;

/// One stored value with its revisions, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// Relative key (prefix stripped). Shared: a write's value is copied into the store, its
    /// change log and every watch, and a `String` key was an allocation for each copy.
    pub key: Arc<str>,
    pub value: StoredValue,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// A change seen by a watch. `Put` with `prev == None` is a creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    Delete {
        prev: KeyValue,
        revision: Revision,
    },
}

impl WatchEvent {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete { prev, .. } => &prev.key,
        }
    }
}

/// How to read a range.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Read at this revision; `None` reads the newest.
    pub revision: Option<Revision>,
    /// At most this many items; `None` = all.
    pub limit: Option<usize>,
    /// Continue strictly after this key (relative), as a `continue` token resumes a list.
    pub start_after: Option<String>,
}

/// A page of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub items: Vec<KeyValue>,
    /// The revision the range was read at.
    pub revision: Revision,
    /// True when `limit` cut the range short.
    pub more: bool,
}

/// What can go wrong in a store; the apiserver maps each to a Kubernetes `Status`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    #[error("key {0:?} not found")]
    NotFound(String),
    #[error("the object has been modified: {key:?} is at revision {current}, not {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Revision,
    },
    #[error("required revision {requested} has been compacted (oldest {oldest})")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    #[error("etcd unavailable at {endpoint}: {message}")]
    Unavailable { endpoint: String, message: String },
    #[error("store error: {0}")]
    Internal(String),
}

/// A stream of watch events; ends with an error (e.g. `Compacted`) or when the store goes away.
pub type WatchStream = BoxStream<'static, Result<WatchEvent, StoreError>>;

/// The contract both backends meet (see `tests/store_conformance.rs`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Newest value of one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Keys starting with `prefix`, in key order, read at one revision.
    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListPage, StoreError>;
    /// Create `key` only if absent (etcd txn `create_revision == 0`).
    async fn create(&self, key: &str, value: StoredValue) -> Result<KeyValue, StoreError>;
    /// Replace `key` only if its `mod_revision` is still `expected` (compare-and-swap).
    async fn update(
        &self,
        key: &str,
        value: StoredValue,
        expected: Revision,
    ) -> Result<KeyValue, StoreError>;
    /// Delete `key`, optionally only at `expected` mod revision. Returns the deleted value
    /// and the revision of the delete.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError>;
    /// Changes to keys under `prefix` at revisions `>= start` (etcd semantics), in revision
    /// order. `start` at or before the compaction point fails with `Compacted` (a replay
    /// needs each change's previous value, so history must reach back to `start - 1`).
    async fn watch(&self, prefix: &str, start: Revision) -> Result<WatchStream, StoreError>;
    /// The store's newest revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;
    /// Forget history before `revision`.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
    /// Where the data lives, for messages (`memory`, `etcd://127.0.0.1:2379`).
    fn describe(&self) -> String;
    /// True when what `get`, `list` and `watch` return are the very values written (an
    /// in-process store): a value written as an object comes back as that object, so its
    /// reader needs no decoded copy of its own.
    fn returns_written_values(&self) -> bool {
        false
    }
    /// A store of its own for Events, written in this process without waiting on I/O, when
    /// this store has one to give (`MemStore`); the apiserver then writes Events on a
    /// thread of their own (`events.rs`), as `--etcd-servers-overrides=/events#…` gives a
    /// cluster an etcd for them. `None` keeps Events here (`EtcdStore`).
    fn events_store(&self) -> Option<Arc<dyn Store>> {
        None
    }
}
