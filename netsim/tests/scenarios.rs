//! Every scenario in `scenarios/` runs twice (identical bytes required) and is compared with
//! its reviewed snapshot in `snapshots/`. With `NETSIM_ETCD_ENDPOINTS` set (scripts/test sets
//! it) each also runs on the real etcd and must print the same transcript.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use apiserver::store::{EtcdStore, MemStore, Store};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no scenarios found");
    v
}

async fn transcript(path: &Path, store: Arc<dyn Store>) -> String {
    let loaded = netsim::scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let r = netsim::runner::run(&loaded, None, store)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(f) = r.failure {
        panic!("{}: {f}\n{}", path.display(), r.transcript);
    }
    r.transcript
}

#[tokio::test]
async fn every_scenario_is_deterministic_and_matches_its_snapshot() {
    for path in scenarios() {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        let a = transcript(&path, Arc::new(MemStore::new())).await;
        let b = transcript(&path, Arc::new(MemStore::new())).await;
        assert_eq!(a, b, "{name}: two runs with the same seed differ");
        insta::with_settings!({
            snapshot_path => Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name.clone(), a);
        });
    }
}

#[tokio::test]
async fn every_scenario_prints_the_same_on_etcd() {
    let Ok(endpoints) = std::env::var("NETSIM_ETCD_ENDPOINTS") else {
        eprintln!("SKIPPED: NETSIM_ETCD_ENDPOINTS is not set (scripts/test sets it)");
        return;
    };
    let endpoints: Vec<String> = endpoints.split(',').map(str::to_owned).collect();
    let rv = regex::Regex::new(r#"resourceVersion: "\d+""#).expect("regex");
    for path in scenarios() {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        let prefix = format!("/netsim-scenario/{name}-{}", std::process::id());
        let etcd = EtcdStore::connect(&endpoints, &prefix)
            .await
            .expect("etcd reachable");
        let on_etcd = transcript(&path, Arc::new(etcd)).await;
        let in_memory = transcript(&path, Arc::new(MemStore::new())).await;
        // resourceVersion is etcd's global revision, which other tenants of the etcd move.
        let on_etcd = rv.replace_all(&on_etcd, "resourceVersion: RV").into_owned();
        let in_memory = rv
            .replace_all(&in_memory, "resourceVersion: RV")
            .into_owned();
        assert_eq!(
            on_etcd, in_memory,
            "{name}: etcd and memory transcripts differ"
        );
    }
}

#[tokio::test]
async fn a_different_seed_changes_names_but_not_the_shape() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/deployment.yaml");
    let loaded = netsim::scenario::load(&path).expect("loads");
    let a = netsim::runner::run(&loaded, Some(1), Arc::new(MemStore::new()))
        .await
        .expect("runs");
    let b = netsim::runner::run(&loaded, Some(2), Arc::new(MemStore::new()))
        .await
        .expect("runs");
    assert!(a.failure.is_none() && b.failure.is_none());
    assert_ne!(a.transcript, b.transcript);
    assert_eq!(a.transcript.lines().count(), b.transcript.lines().count());
}
