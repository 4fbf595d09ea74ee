//! The embedded default Store: a BTreeMap plus an append-only change log, with etcd's
//! revision semantics (modelled on madsim's in-memory etcd).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_trait::async_trait;
use futures::channel::mpsc;
use futures::StreamExt;

use crate::reaper::Garbage;

use super::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, StoredValue, WatchEvent,
    WatchStream,
};

type WatchSender = mpsc::UnboundedSender<Result<WatchEvent, StoreError>>;

struct Inner {
    data: BTreeMap<String, KeyValue>,
    revision: Revision,
    /// Every change since `compacted`, in revision order (one change per revision).
    log: VecDeque<WatchEvent>,
    /// History before this revision is gone.
    compacted: Revision,
    /// Live watches: prefix, first revision wanted (a start in the future waits for it,
    /// as in etcd), and the channel.
    watchers: Vec<(String, Revision, WatchSender)>,
    /// How many revisions of history to keep (see [`MemStore::DEFAULT_RETENTION`]).
    retention: usize,
    /// History that fell off the log, freed off the writer's thread.
    compacted_away: Garbage<WatchEvent>,
}

/// In-memory Store. Cheap to create; one per cluster.
pub struct MemStore {
    inner: Mutex<Inner>,
    /// Events' store, made when first asked for ([`Store::events_store`]).
    events: OnceLock<Arc<MemStore>>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::with_retention(Self::DEFAULT_RETENTION)
    }
}

impl MemStore {
    /// History kept, in revisions: etcd's `--auto-compaction-mode=revision
    /// --auto-compaction-retention=10000`. A real cluster's history is bounded too
    /// (kube-apiserver compacts etcd every 5 minutes); without a bound, every version of
    /// every object would stay in memory for the life of the cluster. Older
    /// resourceVersions get "too old resource version" (410), as on a real cluster.
    pub const DEFAULT_RETENTION: usize = 10_000;

    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps the last `revisions` changes of history (at least one).
    pub fn with_retention(revisions: usize) -> Self {
        MemStore {
            inner: Mutex::new(Inner {
                data: BTreeMap::new(),
                revision: 0,
                log: VecDeque::new(),
                compacted: 0,
                watchers: Vec::new(),
                retention: revisions.max(1),
                compacted_away: Garbage::default(),
            }),
            events: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere already failed the run; the data is
        // still consistent because every mutation below completes before it can panic.
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

impl Inner {
    fn record(&mut self, ev: WatchEvent) {
        let (key, rev) = (ev.key(), ev.revision());
        self.watchers.retain(|(prefix, from, tx)| {
            if key.starts_with(prefix.as_str()) && rev >= *from {
                tx.unbounded_send(Ok(ev.clone())).is_ok()
            } else {
                !tx.is_closed()
            }
        });
        self.log.push_back(ev);
        while self.log.len() > self.retention {
            if let Some(old) = self.log.pop_front() {
                self.compacted = old.revision() + 1;
                self.compacted_away.push(old);
            }
        }
    }

    /// The value of `key` as it was at `rev`, undoing newer changes from the log.
    fn list_at(&self, prefix: &str, rev: Revision) -> BTreeMap<String, KeyValue> {
        let mut view: BTreeMap<String, KeyValue> = self
            .data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ev in self.log.iter().rev() {
            if ev.revision() <= rev {
                break;
            }
            if !ev.key().starts_with(prefix) {
                continue;
            }
            match ev {
                WatchEvent::Put { kv, prev } => match prev {
                    Some(p) => {
                        view.insert(kv.key.to_string(), p.clone());
                    }
                    None => {
                        view.remove(&*kv.key);
                    }
                },
                WatchEvent::Delete { prev, .. } => {
                    view.insert(prev.key.to_string(), prev.clone());
                }
            }
        }
        view
    }
}

#[async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.lock().data.get(key).cloned())
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListPage, StoreError> {
        let inner = self.lock();
        let rev = match opts.revision {
            Some(r) if r > 0 => {
                if r < inner.compacted {
                    return Err(StoreError::Compacted {
                        requested: r,
                        oldest: inner.compacted,
                    });
                }
                if r > inner.revision {
                    return Err(StoreError::Internal(format!(
                        "required revision {r} is a future revision"
                    )));
                }
                r
            }
            _ => inner.revision,
        };
        // As etcd (and Kubernetes' `?limit=0`): a zero limit means no limit.
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut more = false;
        let mut push = |kv: &KeyValue| {
            if let Some(after) = &opts.start_after {
                if *kv.key <= *after.as_str() {
                    return true;
                }
            }
            if items.len() == limit {
                more = true;
                return false;
            }
            items.push(kv.clone());
            true
        };
        if rev == inner.revision {
            for (_, kv) in inner
                .data
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                if !push(kv) {
                    break;
                }
            }
        } else {
            for kv in inner.list_at(prefix, rev).values() {
                if !push(kv) {
                    break;
                }
            }
        }
        Ok(ListPage {
            items,
            revision: rev,
            more,
        })
    }

    async fn create(&self, key: &str, value: StoredValue) -> Result<KeyValue, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        // One search of the map for the check and the insert.
        let std::collections::btree_map::Entry::Vacant(slot) = inner.data.entry(key.to_owned())
        else {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        };
        inner.revision += 1;
        let kv = KeyValue {
            key: slot.key().as_str().into(),
            value,
            create_revision: inner.revision,
            mod_revision: inner.revision,
        };
        slot.insert(kv.clone());
        inner.record(WatchEvent::Put {
            kv: kv.clone(),
            prev: None,
        });
        Ok(kv)
    }

    async fn update(
        &self,
        key: &str,
        value: StoredValue,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(slot) = inner.data.get_mut(key) else {
            return Err(StoreError::NotFound(key.to_owned()));
        };
        if slot.mod_revision != expected {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                expected,
                current: slot.mod_revision,
            });
        }
        inner.revision += 1;
        let kv = KeyValue {
            key: slot.key.clone(),
            value,
            create_revision: slot.create_revision,
            mod_revision: inner.revision,
        };
        // Replaced in place: the previous value moves into the change log, uncopied.
        let prev = std::mem::replace(slot, kv.clone());
        inner.record(WatchEvent::Put {
            kv: kv.clone(),
            prev: Some(prev),
        });
        Ok(kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        let mut inner = self.lock();
        let prev = match inner.data.get(key) {
            None => return Err(StoreError::NotFound(key.to_owned())),
            Some(p) => p.clone(),
        };
        if let Some(expected) = expected {
            if prev.mod_revision != expected {
                return Err(StoreError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: prev.mod_revision,
                });
            }
        }
        inner.revision += 1;
        let rev = inner.revision;
        inner.data.remove(key);
        inner.record(WatchEvent::Delete {
            prev: prev.clone(),
            revision: rev,
        });
        Ok((prev, rev))
    }

    async fn watch(&self, prefix: &str, start: Revision) -> Result<WatchStream, StoreError> {
        let mut inner = self.lock();
        // `<=`: replaying the change at `start` needs the value before it, which compaction
        // at `start` dropped (etcd would deliver that event without its previous value).
        if start > 0 && start <= inner.compacted {
            return Err(StoreError::Compacted {
                requested: start,
                oldest: inner.compacted,
            });
        }
        let (tx, rx) = mpsc::unbounded();
        // As etcd: a start of 0 (or below) means "from now on", with no replay.
        for ev in inner.log.iter().filter(|_| start > 0) {
            if ev.revision() >= start && ev.key().starts_with(prefix) {
                // The receiver is alive: we hold it.
                let _ = tx.unbounded_send(Ok(ev.clone()));
            }
        }
        inner.watchers.push((prefix.to_owned(), start, tx));
        Ok(rx.boxed())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if revision <= inner.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                oldest: inner.compacted,
            });
        }
        if revision > inner.revision {
            return Err(StoreError::Internal(format!(
                "cannot compact to future revision {revision}"
            )));
        }
        while inner.log.front().is_some_and(|ev| ev.revision() < revision) {
            inner.log.pop_front();
        }
        inner.compacted = revision;
        Ok(())
    }

    fn returns_written_values(&self) -> bool {
        true
    }

    /// A sibling store with the same retention, kept as long as this one: a second
    /// apiserver over this store finds the Events the first one recorded.
    fn events_store(&self) -> Option<Arc<dyn Store>> {
        let retention = self.lock().retention;
        let events = self
            .events
            .get_or_init(|| Arc::new(MemStore::with_retention(retention)));
        Some(Arc::clone(events) as Arc<dyn Store>)
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_beyond_the_retention_is_compacted_away() {
        let s = MemStore::with_retention(3);
        let mut kv = s.create("k", "1".into()).await.unwrap();
        for v in 2..=5 {
            kv = s
                .update(
                    "k",
                    bytes::Bytes::from(v.to_string()).into(),
                    kv.mod_revision,
                )
                .await
                .unwrap();
        }
        // Revisions 3, 4 and 5 are kept; 1 and 2 are gone.
        let old = s.watch("k", 2).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(old, StoreError::Compacted { oldest: 3, .. }),
            "{old:?}"
        );
        let listed = s
            .list(
                "k",
                &ListOptions {
                    revision: Some(2),
                    ..Default::default()
                },
            )
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(listed, StoreError::Compacted { .. }), "{listed:?}");
        // The kept window still replays, with the values written.
        let mut w = s.watch("k", 4).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            match w.next().await {
                Some(Ok(WatchEvent::Put { kv, .. })) => seen.push(kv.value),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, [StoredValue::from("4"), StoredValue::from("5")]);
        // The current value is untouched by compaction.
        let now = s.get("k").await.unwrap().unwrap();
        assert_eq!(now.value, StoredValue::from("5"));
    }
}
