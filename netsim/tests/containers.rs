//! Containers that exit, across a restart of netsim on a kept store: the new kubelets pick
//! up where the old ones were (a crash-looping container keeps crashing and counting).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use apiserver::store::{MemStore, Store};
use netsim::cluster::{Cluster, ClusterConfig};
use serde_json::{json, Value};

fn restarts(cluster: &Cluster) -> i64 {
    cluster
        .cache()
        .get("pods", "default/crashy")
        .and_then(|p| p.pointer("/status/containerStatuses/0/restartCount"))
        .and_then(Value::as_i64)
        .unwrap_or(-1)
}

#[tokio::test]
async fn a_crash_loop_goes_on_after_netsim_restarts() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let config = ClusterConfig::default();
    let mut first = Cluster::new(config.clone(), store.clone()).await.unwrap();
    let pods = apiserver::resources::find("pods").unwrap();
    first
        .api
        .create(
            pods,
            Some("default"),
            json!({"metadata": {"name": "crashy"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await
        .unwrap();
    let t = first.now_ms() + 60_000;
    first.advance_to(t).await.unwrap();
    let before = restarts(&first);
    assert!(
        before >= 2,
        "crash-looping after a minute: {before} restarts"
    );
    drop(first);

    // netsim restarts on the same store a minute later (virtual time follows on).
    let later = ClusterConfig {
        epoch_ms: t + 60_000,
        ..config
    };
    let mut second = Cluster::new(later, store).await.unwrap();
    assert_eq!(restarts(&second), before, "adopted as it was");
    let t2 = second.now_ms() + 120_000;
    second.advance_to(t2).await.unwrap();
    let after = restarts(&second);
    assert!(after > before, "still crash-looping: {before} -> {after}");
    let pod = second.cache().get("pods", "default/crashy").unwrap();
    let state = &pod["status"]["containerStatuses"][0];
    assert!(
        state.pointer("/state/waiting/reason") == Some(&json!("CrashLoopBackOff"))
            || state.pointer("/state/terminated").is_some()
            || state.pointer("/state/running").is_some(),
        "{state}"
    );
    assert_eq!(
        state.pointer("/lastState/terminated/reason"),
        Some(&json!("Completed"))
    );
}
