//! One Store conformance suite, run against every backend: the in-memory store always, and
//! a real etcd when `NETSIM_ETCD_ENDPOINTS` is set (`scripts/test` starts one and sets it).
//!
//! Revisions are compared relative to each other, never as absolute numbers: a fresh
//! MemStore starts at 0, an etcd at wherever it is. The global revision is only ever
//! checked from below (`>=`), because tests sharing one etcd write concurrently.

// Test code: a failed unwrap is a failed test. (clippy's allow-unwrap-in-tests does not
// reach the shared async helpers, which are not `#[test]` functions themselves.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use apiserver::store::{
    EtcdConfig, EtcdStore, KeyValue, ListOptions, MemStore, Revision, Store, StoreError,
    StoredValue, WatchEvent, WatchStream,
};
use bytes::Bytes;
use futures::StreamExt;

/// Compaction is global to an etcd, so a test that compacts must not run while another
/// reads old revisions: history readers share this lock, compacting tests take it alone.
static HISTORY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn b(s: &str) -> StoredValue {
    Bytes::copy_from_slice(s.as_bytes()).into()
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| &*kv.key).collect()
}

async fn next_event(stream: &mut WatchStream) -> Result<WatchEvent, StoreError> {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("watch stream ended"),
        Err(_) => panic!("no watch event within 10s"),
    }
}

/// Asserts nothing arrives for a short while (etcd delivers within milliseconds).
async fn assert_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

fn opts(revision: Option<Revision>, limit: Option<usize>, after: Option<&str>) -> ListOptions {
    ListOptions {
        revision,
        limit,
        start_after: after.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------------------
// The suite: each function takes a fresh, empty store.
// ---------------------------------------------------------------------------------------

async fn create_and_get(s: Arc<dyn Store>) {
    let before = s.current_revision().await.unwrap();
    let kv = s.create("pods/default/web", b("v1")).await.unwrap();
    assert_eq!(&*kv.key, "pods/default/web");
    assert_eq!(kv.value, b("v1"));
    assert!(kv.mod_revision > before);
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert!(s.current_revision().await.unwrap() >= kv.mod_revision);

    assert_eq!(s.get("pods/default/web").await.unwrap(), Some(kv.clone()));
    assert_eq!(s.get("pods/default/nope").await.unwrap(), None);
    // A key is not a prefix: `get` is exact.
    assert_eq!(s.get("pods/default/we").await.unwrap(), None);

    let err = s.create("pods/default/web", b("v2")).await.unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists("pods/default/web".into()));
    // A failed create changes nothing.
    assert_eq!(s.get("pods/default/web").await.unwrap(), Some(kv));
}

async fn list_by_prefix(s: Arc<dyn Store>) {
    for k in [
        "pods/b/z",
        "pods/a/y",
        "pods/a/x",
        "pods/ab/q",
        "services/a/s",
    ] {
        s.create(k, b(k)).await.unwrap();
    }
    let now = s.current_revision().await.unwrap();

    let page = s.list("pods/", &ListOptions::default()).await.unwrap();
    assert_eq!(
        keys(&page.items),
        ["pods/a/x", "pods/a/y", "pods/ab/q", "pods/b/z"]
    );
    assert!(page.revision >= now);
    assert!(!page.more);
    assert_eq!(page.items[0].value, b("pods/a/x"));

    let page = s.list("pods/a/", &ListOptions::default()).await.unwrap();
    assert_eq!(keys(&page.items), ["pods/a/x", "pods/a/y"]);

    let page = s.list("", &ListOptions::default()).await.unwrap();
    assert_eq!(page.items.len(), 5);

    let page = s.list("nodes/", &ListOptions::default()).await.unwrap();
    assert!(page.items.is_empty());
    assert!(page.revision >= now);
    assert!(!page.more);
}

async fn list_at_old_revision(s: Arc<dyn Store>) {
    let _history = HISTORY.read().await;
    let a1 = s.create("cm/ns/a", b("a1")).await.unwrap();
    let b1 = s.create("cm/ns/b", b("b1")).await.unwrap();
    let then = s.current_revision().await.unwrap();

    let a2 = s.update("cm/ns/a", b("a2"), a1.mod_revision).await.unwrap();
    s.delete("cm/ns/b", None).await.unwrap();
    let c1 = s.create("cm/ns/c", b("c1")).await.unwrap();

    let old = s.list("cm/", &opts(Some(then), None, None)).await.unwrap();
    assert_eq!(old.items, vec![a1.clone(), b1.clone()]);
    assert_eq!(old.revision, then);
    assert!(!old.more);

    let first = s
        .list("cm/", &opts(Some(a1.mod_revision), None, None))
        .await
        .unwrap();
    assert_eq!(first.items, vec![a1.clone()]);

    let new = s.list("cm/", &ListOptions::default()).await.unwrap();
    assert_eq!(new.items, vec![a2, c1.clone()]);
    assert!(new.revision >= c1.mod_revision);

    // Revision 0 means "newest", as in etcd.
    let zero = s.list("cm/", &opts(Some(0), None, None)).await.unwrap();
    assert_eq!(zero.items, new.items);

    let future = s
        .list("cm/", &opts(Some(c1.mod_revision + 1000), None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&future, StoreError::Internal(m) if m.contains("future revision")),
        "{future:?}"
    );
}

async fn list_paging(s: Arc<dyn Store>) {
    let _history = HISTORY.read().await;
    for i in 0..5 {
        s.create(&format!("pods/ns/p{i}"), b("x")).await.unwrap();
    }
    s.create("pods/other/p9", b("x")).await.unwrap();

    let p1 = s
        .list("pods/ns/", &opts(None, Some(2), None))
        .await
        .unwrap();
    assert_eq!(keys(&p1.items), ["pods/ns/p0", "pods/ns/p1"]);
    assert!(p1.more);

    // Writes between pages are invisible to a list continued at the first page's revision.
    s.create("pods/ns/p10", b("x")).await.unwrap();
    s.delete("pods/ns/p3", None).await.unwrap();

    let p2 = s
        .list(
            "pods/ns/",
            &opts(Some(p1.revision), Some(2), Some("pods/ns/p1")),
        )
        .await
        .unwrap();
    assert_eq!(keys(&p2.items), ["pods/ns/p2", "pods/ns/p3"]);
    assert!(p2.more);
    assert_eq!(p2.revision, p1.revision);

    let p3 = s
        .list(
            "pods/ns/",
            &opts(Some(p1.revision), Some(2), Some("pods/ns/p3")),
        )
        .await
        .unwrap();
    assert_eq!(keys(&p3.items), ["pods/ns/p4"]);
    assert!(!p3.more);

    // A limit equal to what is left is not "more".
    let exact = s
        .list("pods/ns/", &opts(Some(p1.revision), Some(5), None))
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 5);
    assert!(!exact.more);

    // Limit 0 means no limit, as in etcd and Kubernetes.
    let all = s
        .list("pods/ns/", &opts(None, Some(0), None))
        .await
        .unwrap();
    assert_eq!(
        keys(&all.items),
        [
            "pods/ns/p0",
            "pods/ns/p1",
            "pods/ns/p10",
            "pods/ns/p2",
            "pods/ns/p4"
        ]
    );

    // start_after sorting before the prefix starts at the prefix; past it, nothing.
    let before = s
        .list("pods/ns/", &opts(None, Some(1), Some("a")))
        .await
        .unwrap();
    assert_eq!(keys(&before.items), ["pods/ns/p0"]);
    assert!(before.more);
    let past = s
        .list("pods/ns/", &opts(None, None, Some("pods/ns/zzz")))
        .await
        .unwrap();
    assert!(past.items.is_empty());
    assert!(!past.more);

    // start_after a key that does not exist resumes at the next one.
    let gap = s
        .list("pods/ns/", &opts(None, None, Some("pods/ns/p3")))
        .await
        .unwrap();
    assert_eq!(keys(&gap.items), ["pods/ns/p4"]);
}

async fn update_compare_and_swap(s: Arc<dyn Store>) {
    let v1 = s.create("svc/ns/a", b("1")).await.unwrap();
    let v2 = s.update("svc/ns/a", b("2"), v1.mod_revision).await.unwrap();
    assert_eq!(v2.value, b("2"));
    assert_eq!(v2.create_revision, v1.create_revision);
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(s.get("svc/ns/a").await.unwrap(), Some(v2.clone()));

    let stale = s
        .update("svc/ns/a", b("3"), v1.mod_revision)
        .await
        .unwrap_err();
    assert_eq!(
        stale,
        StoreError::Conflict {
            key: "svc/ns/a".into(),
            expected: v1.mod_revision,
            current: v2.mod_revision,
        }
    );
    assert_eq!(s.get("svc/ns/a").await.unwrap(), Some(v2.clone()));

    let missing = s.update("svc/ns/b", b("1"), 5).await.unwrap_err();
    assert_eq!(missing, StoreError::NotFound("svc/ns/b".into()));
    // Expecting revision 0 must not create an absent key.
    let zero = s.update("svc/ns/b", b("1"), 0).await.unwrap_err();
    assert_eq!(zero, StoreError::NotFound("svc/ns/b".into()));
    assert_eq!(s.get("svc/ns/b").await.unwrap(), None);
}

async fn concurrent_updates_one_wins(s: Arc<dyn Store>) {
    let v1 = s.create("deploy/ns/d", b("0")).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.update("deploy/ns/d", b(&i.to_string()), v1.mod_revision)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);

    let creates: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create("deploy/ns/new", b(&i.to_string())).await })
        })
        .collect();
    let mut created = 0;
    for t in creates {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(created, 1);
}

async fn delete_and_compare_and_delete(s: Arc<dyn Store>) {
    let a = s.create("ep/ns/a", b("a")).await.unwrap();
    let (prev, rev) = s.delete("ep/ns/a", None).await.unwrap();
    assert_eq!(prev, a);
    assert!(rev > a.mod_revision);
    assert!(s.current_revision().await.unwrap() >= rev);
    assert_eq!(s.get("ep/ns/a").await.unwrap(), None);
    assert_eq!(
        s.delete("ep/ns/a", None).await.unwrap_err(),
        StoreError::NotFound("ep/ns/a".into())
    );

    let b1 = s.create("ep/ns/b", b("1")).await.unwrap();
    let b2 = s.update("ep/ns/b", b("2"), b1.mod_revision).await.unwrap();
    assert_eq!(
        s.delete("ep/ns/b", Some(b1.mod_revision))
            .await
            .unwrap_err(),
        StoreError::Conflict {
            key: "ep/ns/b".into(),
            expected: b1.mod_revision,
            current: b2.mod_revision,
        }
    );
    assert_eq!(s.get("ep/ns/b").await.unwrap(), Some(b2.clone()));
    let (prev, _) = s.delete("ep/ns/b", Some(b2.mod_revision)).await.unwrap();
    assert_eq!(prev, b2);
    assert_eq!(
        s.delete("ep/ns/b", Some(0)).await.unwrap_err(),
        StoreError::NotFound("ep/ns/b".into())
    );
    assert_eq!(
        s.delete("ep/ns/b", Some(b2.mod_revision))
            .await
            .unwrap_err(),
        StoreError::NotFound("ep/ns/b".into())
    );

    // Re-creating a deleted key starts a new life: a new create revision.
    let again = s.create("ep/ns/a", b("again")).await.unwrap();
    assert!(again.create_revision > a.create_revision);
}

async fn watch_replay_and_live(s: Arc<dyn Store>) {
    let _history = HISTORY.read().await;
    let base = s.current_revision().await.unwrap();
    let a1 = s.create("pods/ns/a", b("1")).await.unwrap();
    let a2 = s
        .update("pods/ns/a", b("2"), a1.mod_revision)
        .await
        .unwrap();
    s.create("services/ns/x", b("x")).await.unwrap();
    let (_, del) = s.delete("pods/ns/a", None).await.unwrap();

    // Replay everything since `base`, in order, with previous values.
    let mut w = s.watch("pods/", base + 1).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.unwrap(),
        WatchEvent::Put {
            kv: a1.clone(),
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut w).await.unwrap(),
        WatchEvent::Put {
            kv: a2.clone(),
            prev: Some(a1.clone())
        }
    );
    let ev = next_event(&mut w).await.unwrap();
    assert_eq!(
        ev,
        WatchEvent::Delete {
            prev: a2.clone(),
            revision: del
        }
    );
    assert_eq!(ev.revision(), del);
    assert_eq!(ev.key(), "pods/ns/a");

    // Then live changes, only under the prefix.
    s.create("services/ns/y", b("y")).await.unwrap();
    let b1 = s.create("pods/ns/b", b("1")).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.unwrap(),
        WatchEvent::Put { kv: b1, prev: None }
    );
    assert_quiet(&mut w).await;

    // From the middle of history: only changes at or after `start`.
    let mut mid = s.watch("pods/ns/", a2.mod_revision).await.unwrap();
    assert_eq!(
        next_event(&mut mid).await.unwrap().revision(),
        a2.mod_revision
    );
    assert_eq!(next_event(&mut mid).await.unwrap().revision(), del);

    // Start 0 means "from now on": no replay, but every later write.
    let mut now = s.watch("pods/", 0).await.unwrap();
    let c1 = s.create("pods/ns/c", b("1")).await.unwrap();
    assert_eq!(
        next_event(&mut now).await.unwrap(),
        WatchEvent::Put { kv: c1, prev: None }
    );
    assert_quiet(&mut now).await;

    // A start in the future waits for that revision.
    let cur = s.current_revision().await.unwrap();
    let mut later = s.watch("pods/", cur + 2).await.unwrap();
    s.create("pods/ns/d", b("1")).await.unwrap();
    let e1 = s.create("pods/ns/e", b("1")).await.unwrap();
    assert_eq!(
        next_event(&mut later).await.unwrap().revision(),
        e1.mod_revision
    );
}

async fn compaction(s: Arc<dyn Store>) {
    let _history = HISTORY.write().await;
    let a1 = s.create("rs/ns/a", b("1")).await.unwrap();
    let a2 = s.update("rs/ns/a", b("2"), a1.mod_revision).await.unwrap();
    let a3 = s.update("rs/ns/a", b("3"), a2.mod_revision).await.unwrap();
    let a4 = s.update("rs/ns/a", b("4"), a3.mod_revision).await.unwrap();
    let point = a3.mod_revision;
    s.compact(point).await.unwrap();

    // Reads at or after the compaction point still work.
    let at = s.list("rs/", &opts(Some(point), None, None)).await.unwrap();
    assert_eq!(at.items, vec![a3.clone()]);
    let newest = s.list("rs/", &ListOptions::default()).await.unwrap();
    assert_eq!(newest.items, vec![a4.clone()]);
    // Reads before it are gone.
    assert_eq!(
        s.list("rs/", &opts(Some(a2.mod_revision), None, None))
            .await
            .unwrap_err(),
        StoreError::Compacted {
            requested: a2.mod_revision,
            oldest: point,
        }
    );

    // A watch replaying from before the compaction point fails…
    match s.watch("rs/", a2.mod_revision).await {
        Err(e) => assert_eq!(
            e,
            StoreError::Compacted {
                requested: a2.mod_revision,
                oldest: point,
            }
        ),
        Ok(_) => panic!("watch from a compacted revision succeeded"),
    }
    // …and so does one from the point itself, whose change lost its previous value.
    match s.watch("rs/", point).await {
        Err(e) => assert_eq!(
            e,
            StoreError::Compacted {
                requested: point,
                oldest: point,
            }
        ),
        Ok(_) => panic!("watch from the compaction point succeeded"),
    }
    // Just after it, the replay is complete.
    let mut w = s.watch("rs/", point + 1).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.unwrap(),
        WatchEvent::Put {
            kv: a4.clone(),
            prev: Some(a3.clone())
        }
    );

    // Compacting again to the same point, or to the future, is refused.
    assert_eq!(
        s.compact(point).await.unwrap_err(),
        StoreError::Compacted {
            requested: point,
            oldest: point,
        }
    );
    let cur = s.current_revision().await.unwrap();
    let future = s.compact(cur + 100).await.unwrap_err();
    assert!(
        matches!(&future, StoreError::Internal(m) if m.contains("future revision")),
        "{future:?}"
    );

    // Writes go on as before; live watchers keep working.
    let a5 = s.update("rs/ns/a", b("5"), a4.mod_revision).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.unwrap(),
        WatchEvent::Put {
            kv: a5,
            prev: Some(a4)
        }
    );
}

async fn describes_itself(s: Arc<dyn Store>) {
    let d = s.describe();
    assert!(d == "memory" || d.starts_with("etcd://"), "{d}");
}

// ---------------------------------------------------------------------------------------
// Backends.
// ---------------------------------------------------------------------------------------

fn memory() -> Arc<dyn Store> {
    Arc::new(MemStore::new())
}

/// A store under a prefix of its own (`/netsim-test/<test>-<pid>`), so tests and runs
/// sharing one etcd never see each other's keys; `None` (with a notice) without etcd.
async fn etcd(test: &str) -> Option<Arc<dyn Store>> {
    let Ok(endpoints) = std::env::var("NETSIM_ETCD_ENDPOINTS") else {
        eprintln!(
            "SKIPPED {test} on etcd: NETSIM_ETCD_ENDPOINTS is not set \
             (scripts/test starts an etcd and sets it)"
        );
        return None;
    };
    let endpoints: Vec<String> = endpoints.split(',').map(str::to_owned).collect();
    let prefix = format!("/netsim-test/{test}-{}", std::process::id());
    match EtcdStore::connect(&endpoints, &prefix).await {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => panic!("NETSIM_ETCD_ENDPOINTS is set but etcd is not usable: {e}"),
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::memory()).await
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(s) = super::etcd(stringify!($name)).await {
                        super::$name(s).await
                    }
                }
            )*
        }
    };
}

conformance!(
    create_and_get,
    list_by_prefix,
    list_at_old_revision,
    list_paging,
    update_compare_and_swap,
    concurrent_updates_one_wins,
    delete_and_compare_and_delete,
    watch_replay_and_live,
    compaction,
    describes_itself,
);

// ---------------------------------------------------------------------------------------
// etcd-only behaviour.
// ---------------------------------------------------------------------------------------

/// A dead etcd is reported promptly, naming the address, so a run fails with a clear message.
#[tokio::test]
async fn etcd_unreachable_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("127.0.0.1:{port}");
    let mut config = EtcdConfig::new(std::slice::from_ref(&endpoint));
    config.request_timeout = Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let err = match EtcdStore::connect_with(config).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    let StoreError::Unavailable {
        endpoint: ref reported,
        ..
    } = err
    else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(reported, &endpoint);
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with(&format!("etcd unavailable at 127.0.0.1:{port}: ")),
        "{msg}"
    );
}

#[tokio::test]
async fn etcd_describe_names_every_endpoint() {
    let Some(s) = etcd("describe").await else {
        return;
    };
    let endpoints = std::env::var("NETSIM_ETCD_ENDPOINTS").unwrap();
    assert_eq!(s.describe(), format!("etcd://{endpoints}"));
}

/// The request timeout bounds unary calls only: a watch stays open past it.
#[tokio::test]
async fn etcd_watch_outlives_request_timeout() {
    if std::env::var("NETSIM_ETCD_ENDPOINTS").is_err() {
        eprintln!("SKIPPED etcd_watch_outlives_request_timeout: NETSIM_ETCD_ENDPOINTS is not set");
        return;
    }
    let endpoints: Vec<String> = std::env::var("NETSIM_ETCD_ENDPOINTS")
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut config = EtcdConfig::new(&endpoints);
    config.prefix = format!("/netsim-test/watch-timeout-{}", std::process::id());
    config.request_timeout = Duration::from_millis(500);
    let s = EtcdStore::connect_with(config).await.unwrap();
    let mut w = s.watch("pods/", 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let kv = s.create("pods/ns/late", b("1")).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.unwrap(),
        WatchEvent::Put { kv, prev: None }
    );
}
