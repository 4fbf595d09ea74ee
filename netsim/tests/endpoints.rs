//! The Endpoints and EndpointSlice controllers keep each pod's entry between syncs
//! (`endpoints.rs`): what they publish must still follow every change of the Service and
//! of its pods.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use apiserver::api::PatchType;
use apiserver::store::{MemStore, Store};
use netsim::cluster::{Cluster, ClusterConfig};
use serde_json::{json, Value};

/// What the Service's Endpoints and EndpointSlice say.
struct Published {
    ready: Vec<String>,
    not_ready: Vec<String>,
    ports: Value,
    /// (IP, ready) per slice endpoint.
    slice: Vec<(String, bool)>,
    slice_ports: Value,
}

fn published(cluster: &Cluster) -> Published {
    let ep = cluster
        .cache()
        .get("endpoints", "default/web")
        .expect("endpoints");
    let ips = |field: &str| -> Vec<String> {
        let mut v: Vec<String> = ep
            .pointer(&format!("/subsets/0/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a["ip"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    let slice = cluster
        .cache()
        .all("endpointslices")
        .find(|s| s.pointer("/metadata/labels/kubernetes.io~1service-name") == Some(&json!("web")))
        .expect("slice");
    let mut eps: Vec<(String, bool)> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap_or_default().to_owned(),
                e["conditions"]["ready"] == json!(true),
            )
        })
        .collect();
    eps.sort();
    Published {
        ready: ips("addresses"),
        not_ready: ips("notReadyAddresses"),
        ports: ep
            .pointer("/subsets/0/ports")
            .cloned()
            .unwrap_or(Value::Null),
        slice: eps,
        slice_ports: slice["ports"].clone(),
    }
}

fn pod_ips(cluster: &Cluster, running_only: bool) -> Vec<String> {
    let mut v: Vec<String> = cluster
        .cache()
        .all("pods")
        .filter(|p| p.pointer("/metadata/labels/app") == Some(&json!("web")))
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|p| !running_only || p.pointer("/status/phase") == Some(&json!("Running")))
        .filter_map(|p| p.pointer("/status/podIP").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// Sets pod `name`'s `app` label and lets the cluster settle for a second; the patched pod.
async fn relabel(cluster: &mut Cluster, name: &str, app: &str) -> Value {
    let pods = apiserver::resources::find("pods").unwrap();
    let patch = json!({"metadata": {"labels": {"app": app}}});
    let pod = cluster
        .api
        .patch(pods, Some("default"), name, &patch, PatchType::Merge, false)
        .await
        .unwrap();
    let t = cluster.now_ms() + 1_000;
    cluster.advance_to(t).await.unwrap();
    pod
}

#[tokio::test]
async fn endpoints_follow_service_and_pod_changes() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let mut cluster = Cluster::new(ClusterConfig::default(), store).await.unwrap();
    let pods = apiserver::resources::find("pods").unwrap();
    let services = apiserver::resources::find("services").unwrap();
    for i in 0..3 {
        let pod = json!({"metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "wangyanglinux/myapp:v2",
                "ports": [{"name": "http", "containerPort": 80}]}]}});
        cluster
            .api
            .create(pods, Some("default"), pod)
            .await
            .unwrap();
    }
    let svc = json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}});
    cluster
        .api
        .create(services, Some("default"), svc)
        .await
        .unwrap();
    let t = cluster.now_ms() + 60_000;
    cluster.advance_to(t).await.unwrap();
    let ips = pod_ips(&cluster, true);
    assert_eq!(ips.len(), 3, "three running pods");
    let Published {
        ready,
        not_ready,
        ports,
        slice,
        slice_ports,
    } = published(&cluster);
    assert_eq!(ready, ips);
    assert!(not_ready.is_empty());
    assert_eq!(
        ports,
        json!([{"port": 80, "protocol": "TCP"}]),
        "named port resolved"
    );
    assert_eq!(
        slice,
        ips.iter().map(|ip| (ip.clone(), true)).collect::<Vec<_>>()
    );
    assert_eq!(
        slice_ports,
        json!([{"name": "", "port": 80, "protocol": "TCP"}])
    );

    // The Service changes, its pods do not: every entry is rebuilt with the new port.
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    cluster
        .api
        .patch(
            services,
            Some("default"),
            "web",
            &patch,
            PatchType::Merge,
            false,
        )
        .await
        .unwrap();
    let t = cluster.now_ms() + 1_000;
    cluster.advance_to(t).await.unwrap();
    let Published {
        ready,
        ports,
        slice_ports,
        ..
    } = published(&cluster);
    assert_eq!(ready, ips);
    assert_eq!(ports, json!([{"port": 8080, "protocol": "TCP"}]));
    assert_eq!(
        slice_ports,
        json!([{"name": "", "port": 8080, "protocol": "TCP"}])
    );

    // A pod leaves the selector: its address goes, the others stay as they were.
    let gone = relabel(&mut cluster, "web-1", "other").await;
    let gone_ip = gone["status"]["podIP"].as_str().unwrap().to_owned();
    let left: Vec<String> = ips.iter().filter(|ip| **ip != gone_ip).cloned().collect();
    let p = published(&cluster);
    assert_eq!(p.ready, left);
    assert_eq!(p.slice.len(), 2);

    // Back in the selector: back in the Endpoints.
    relabel(&mut cluster, "web-1", "web").await;
    assert_eq!(published(&cluster).ready, ips);
}
