//! The REST surface as a client sees it: status codes, Status bodies, optimistic
//! concurrency, merge patch, generateName, selectors, server-side tables, watch streams.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use apiserver::sim::{Clock, SimRng, DEFAULT_EPOCH_MS};
use apiserver::store::MemStore;
use apiserver::{ApiConfig, ApiServer};
use axum::body::Body;
use futures::StreamExt;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// An apiserver over `store`, with the test clock and seed.
async fn api_over(store: Arc<MemStore>) -> ApiServer {
    ApiServer::new(
        store,
        Clock::new(DEFAULT_EPOCH_MS),
        SimRng::new(0, "t"),
        ApiConfig::default(),
    )
    .await
    .unwrap()
}

/// What the serviceaccount controller would have made for the `default` namespace.
async fn default_service_account(api: &ApiServer) {
    let sa = apiserver::resources::find("sa").unwrap();
    api.create(
        sa,
        Some("default"),
        json!({"metadata": {"name": "default"}}),
    )
    .await
    .unwrap();
}

async fn server() -> axum::Router {
    apiserver::http::router(Arc::new(api_over(Arc::new(MemStore::new())).await))
}

async fn call(
    r: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut b = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| *k == "content-type") {
        b = b.header("content-type", "application/json");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b
        .body(body.map(|v| Body::from(v.to_string())).unwrap_or_default())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `call` with a POST of `body` and no extra headers.
async fn post(r: &axum::Router, path: &str, body: Value) -> (u16, Value) {
    call(r, "POST", path, Some(body), &[]).await
}

#[tokio::test]
async fn crud_with_real_status_objects() {
    let r = server().await;
    let (c, _) = post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    assert_eq!(c, 201);
    let (c, body) = call(&r, "GET", "/api/v1/namespaces/default/pods/web", None, &[]).await;
    assert_eq!(c, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "pods \"web\" not found", "reason": "NotFound", "details": {"name": "web", "kind": "pods"}, "code": 404})
    );

    let pod = json!({"metadata": {"generateName": "web-", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    // No controller manager here, so the namespace has no `default` ServiceAccount yet:
    // ServiceAccount admission refuses the pod, naming it by its generateName.
    let (c, body) = post(&r, "/api/v1/namespaces/default/pods", pod.clone()).await;
    assert_eq!((c, body["reason"].as_str()), (403, Some("Forbidden")));
    assert_eq!(
        body["message"],
        "pods \"web-\" is forbidden: error looking up service account default/default: serviceaccount \"default\" not found"
    );
    let (c, _) = post(
        &r,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    assert_eq!(c, 201);
    let (c, created) = post(&r, "/api/v1/namespaces/default/pods", pod).await;
    assert_eq!(c, 201);
    let name = created["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    // Admission ran the pod as `default` and mounted its API-access volume.
    assert_eq!(created["spec"]["serviceAccountName"], "default");
    assert_eq!(created["spec"]["serviceAccount"], "default");
    let volume = created["spec"]["volumes"][0]["name"].as_str().unwrap();
    assert!(
        volume.starts_with("kube-api-access-") && volume.len() == 21,
        "{volume}"
    );
    assert_eq!(
        created["spec"]["volumes"][0]["projected"]["sources"][0],
        json!({"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}),
        "the token source of a real cluster's kube-api-access volume"
    );
    assert_eq!(
        created["spec"]["tolerations"][1],
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}),
        "DefaultTolerationSeconds"
    );
    assert_eq!(
        created["spec"]["containers"][0]["volumeMounts"],
        json!([{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": volume, "readOnly": true}])
    );
    assert_eq!(
        created["metadata"]["creationTimestamp"],
        "2020-10-27T10:00:00Z"
    );
    assert_eq!(
        created["spec"]["containers"][0]["imagePullPolicy"], "Always",
        "untagged image defaults to Always"
    );
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // A stale resourceVersion is a 409 Conflict.
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["metadata"]["labels"]["x"] = json!("y");
    let (c, body) = call(
        &r,
        "PUT",
        &format!("/api/v1/namespaces/default/pods/{name}"),
        Some(stale),
        &[],
    )
    .await;
    assert_eq!(c, 409);
    assert_eq!(body["reason"], "Conflict");
    assert!(body["message"].as_str().unwrap().starts_with(&format!(
        "Operation cannot be fulfilled on pods \"{name}\": the object has been modified"
    )));

    let (c, patched) = call(
        &r,
        "PATCH",
        &format!("/api/v1/namespaces/default/pods/{name}"),
        Some(json!({"metadata": {"labels": {"tier": "fe"}}})),
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        patched["metadata"]["labels"],
        json!({"app": "web", "tier": "fe"})
    );
    assert_ne!(patched["metadata"]["resourceVersion"].as_str().unwrap(), rv);

    // A client's patch is decoded strictly, like a created object: a misspelt field is
    // refused, not stored.
    let (c, body) = call(
        &r,
        "PATCH",
        &format!("/api/v1/namespaces/default/pods/{name}"),
        Some(json!({"spec": {"nodeNmae": "k8s-node1"}})),
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_eq!(c, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("strict decoding error: unknown field \"spec.nodeNmae\""),
        "{body}"
    );

    let (_, list) = call(
        &r,
        "GET",
        "/api/v1/namespaces/default/pods?labelSelector=tier%3Dfe",
        None,
        &[],
    )
    .await;
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind"
    );
    let (_, list) = call(
        &r,
        "GET",
        "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dnope",
        None,
        &[],
    )
    .await;
    assert_eq!(list["items"], json!([]));

    let (c, table) = call(
        &r,
        "GET",
        "/api/v1/namespaces/default/pods",
        None,
        &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], &["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(table["rows"][0]["cells"][2], "Pending");
}

#[tokio::test]
async fn invalid_objects_get_422_with_causes() {
    let r = server().await;
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let (c, body) = post(&r, "/apis/apps/v1/namespaces/default/deployments", d).await;
    assert_eq!(c, 422);
    assert_eq!(body["message"], "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.template.metadata.labels"
    );
    let (c, body) = post(
        &r,
        "/api/v1/namespaces/nosuch/services",
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(
        (c, body["message"].as_str().unwrap()),
        (404, "namespaces \"nosuch\" not found")
    );
}

/// NamespaceLifecycle: a namespace that was fine for one create refuses the next once it
/// is terminating, and once it is gone (the lookup it passed is not reused stale).
#[tokio::test]
async fn creates_follow_the_namespace_lifecycle() {
    let r = server().await;
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "lab"}}),
    )
    .await;
    let svc = |name: &str| json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}});
    let (c, _) = post(&r, "/api/v1/namespaces/lab/services", svc("a")).await;
    assert_eq!(c, 201);
    let (c, _) = call(&r, "DELETE", "/api/v1/namespaces/lab", None, &[]).await;
    assert_eq!(c, 200);
    let (c, body) = post(&r, "/api/v1/namespaces/lab/services", svc("b")).await;
    assert_eq!(
        (c, body["reason"].as_str(), body["message"].as_str()),
        (
            403,
            Some("Forbidden"),
            Some("unable to create new content in namespace lab because it is being terminated")
        )
    );
    let (c, _) = call(
        &r,
        "DELETE",
        "/api/v1/namespaces/lab?gracePeriodSeconds=0",
        None,
        &[],
    )
    .await;
    assert_eq!(c, 200);
    let (c, body) = post(&r, "/api/v1/namespaces/lab/services", svc("c")).await;
    assert_eq!(
        (c, body["message"].as_str()),
        (404, Some("namespaces \"lab\" not found"))
    );
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "lab"}}),
    )
    .await;
    let (c, _) = post(&r, "/api/v1/namespaces/lab/services", svc("d")).await;
    assert_eq!(c, 201, "a namespace made again takes content again");
}

#[tokio::test]
async fn watch_streams_changes_from_a_resource_version() {
    let r = server().await;
    let (_, ns) = post(&r, "/api/v1/namespaces", json!({"metadata": {"name": "a"}})).await;
    let rv = ns["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&r, "/api/v1/namespaces", json!({"metadata": {"name": "b"}})).await;
    call(
        &r,
        "DELETE",
        "/api/v1/namespaces/b?gracePeriodSeconds=0",
        None,
        &[],
    )
    .await;
    let req = Request::builder()
        .uri(format!("/api/v1/namespaces?watch=1&resourceVersion={rv}"))
        .body(Body::empty())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let mut body = resp.into_body().into_data_stream();
    let mut lines = Vec::new();
    let mut buf = String::new();
    while lines.len() < 2 {
        let chunk = body.next().await.unwrap().unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(i) = buf.find('\n') {
            lines.push(serde_json::from_str::<Value>(&buf[..i]).unwrap());
            buf.drain(..=i);
        }
    }
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[0]["object"]["metadata"]["name"], "b");
    assert_eq!(
        lines[1]["type"], "MODIFIED",
        "namespace deletion first marks it Terminating"
    );
    assert_eq!(lines[1]["object"]["status"]["phase"], "Terminating");
}

#[tokio::test]
async fn controller_status_writes_are_compare_and_swap() {
    let api = api_over(Arc::new(MemStore::new())).await;
    let ns = apiserver::resources::find("ns").unwrap();
    let pods = apiserver::resources::find("po").unwrap();
    api.create(ns, None, json!({"metadata": {"name": "default"}}))
        .await
        .unwrap();
    default_service_account(&api).await;
    let pod = api
        .create(pods, Some("default"), json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))
        .await
        .unwrap();
    let mut running = pod.clone();
    running["status"]["phase"] = json!("Running");
    let written = api
        .update_status(pods, Some("default"), "p", running.clone())
        .await
        .unwrap();
    assert_eq!(written["status"]["phase"], "Running");
    assert_eq!(
        api.get(pods, Some("default"), "p").await.unwrap()["status"]["phase"],
        "Running"
    );
    // The same stale copy again: somebody else wrote in between, so it is a 409.
    let err = api
        .update_status(pods, Some("default"), "p", running)
        .await
        .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "Conflict"));
}

/// The apiserver keeps objects it decoded (or wrote) to skip decoding them again; the store's
/// bytes must stay the truth: a write made by someone else (another apiserver on the same
/// etcd) is what reads, updates and the watch see — never the kept copy.
#[tokio::test]
async fn writes_made_behind_the_apiservers_back_are_seen() {
    use apiserver::store::Store;
    let store = Arc::new(MemStore::new());
    let api = api_over(store.clone()).await;
    let ns = apiserver::resources::find("ns").unwrap();
    let cms = apiserver::resources::find("configmaps").unwrap();
    api.create(ns, None, json!({"metadata": {"name": "default"}}))
        .await
        .unwrap();
    let start = store.current_revision().await.unwrap() + 1;
    let mut watch = api.watch_all(start, &[]).await.unwrap();
    let cm = api
        .create(
            cms,
            Some("default"),
            json!({"metadata": {"name": "c"}, "data": {"k": "ours"}}),
        )
        .await
        .unwrap();
    assert_eq!(cm["data"]["k"], "ours");
    // Someone else rewrites the stored bytes.
    let key = cms.key(Some("default"), "c");
    let kv = store.get(&key).await.unwrap().unwrap();
    let mut theirs: Value = serde_json::from_slice(kv.value.bytes()).unwrap();
    // What the store holds is the object as the API showed it, less its resourceVersion.
    let mut shown = cm.clone();
    shown["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(theirs, shown);
    theirs["data"]["k"] = json!("theirs");
    let written = store
        .update(
            &key,
            bytes::Bytes::from(theirs.to_string()).into(),
            kv.mod_revision,
        )
        .await
        .unwrap();
    let got = api.get(cms, Some("default"), "c").await.unwrap();
    assert_eq!(got["data"]["k"], "theirs");
    assert_eq!(
        got["metadata"]["resourceVersion"],
        written.mod_revision.to_string()
    );
    let listed = api
        .list(cms, Some("default"), &Default::default())
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["data"]["k"], "theirs");
    // The watch reports our write with our object, then theirs with theirs.
    let mut seen = Vec::new();
    for _ in 0..2 {
        match watch.next().await {
            Some(Ok(apiserver::WatchItem::Event(e))) => seen.push(
                e.object["data"]["k"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ours", "theirs"]);
    // An update based on their version works; one based on ours is stale.
    let mut stale = cm.clone();
    stale["data"]["k"] = json!("late");
    let err = api
        .update(cms, Some("default"), "c", stale, false)
        .await
        .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    // This server's next write gets a revision it did not expect (theirs came in between):
    // what it returns, and what is read after, carry the revision the store gave.
    let mut next = got.clone();
    next["data"]["k"] = json!("after");
    let updated = api
        .update(cms, Some("default"), "c", next, false)
        .await
        .unwrap();
    let stored = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        updated["metadata"]["resourceVersion"],
        stored.mod_revision.to_string()
    );
    let reread = api.get(cms, Some("default"), "c").await.unwrap();
    assert_eq!(reread, updated);
}

/// Watches for resources an informer skips arrive as bookmarks: the revision moves on, the
/// object is not decoded. (The cluster skips Events; in memory they do not even pass
/// through this watch, being apart — see `recorded_events_are_all_readable_at_once_and_apart`.)
#[tokio::test]
async fn skipped_resources_arrive_as_bookmarks() {
    use apiserver::store::Store;
    let store = Arc::new(MemStore::new());
    let api = api_over(store.clone()).await;
    let ns = apiserver::resources::find("ns").unwrap();
    let cm = apiserver::resources::find("configmaps").unwrap();
    let start = store.current_revision().await.unwrap() + 1;
    let mut watch = api.watch_all(start, &["configmaps"]).await.unwrap();
    api.create(ns, None, json!({"metadata": {"name": "default"}}))
        .await
        .unwrap();
    let ev = api
        .create(
            cm,
            Some("default"),
            json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        )
        .await
        .unwrap();
    let rev: i64 = ev["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(matches!(
        watch.next().await,
        Some(Ok(apiserver::WatchItem::Event(e))) if e.resource.plural == "namespaces"
    ));
    match watch.next().await {
        Some(Ok(apiserver::WatchItem::Bookmark(r))) => assert_eq!(r, rev),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

/// RBAC objects are served (discovery, CRUD, tables) but only stored: nothing reads them.
#[tokio::test]
async fn rbac_objects_are_stored_and_tabled() {
    let r = server().await;
    let table = [("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")];
    let (c, _) = post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "ingress-nginx"}}),
    )
    .await;
    assert_eq!(c, 201);

    let (c, disc) = call(&r, "GET", "/apis/rbac.authorization.k8s.io/v1", None, &[]).await;
    assert_eq!(c, 200);
    let names: Vec<&str> = disc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "clusterroles",
            "clusterrolebindings",
            "roles",
            "rolebindings"
        ]
    );

    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    let (c, _) = post(&r, &format!("{rbac}/clusterroles"), json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ingress-nginx"},
        "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}]})).await;
    assert_eq!(c, 201);
    let (c, t) = call(&r, "GET", &format!("{rbac}/clusterroles"), None, &table).await;
    assert_eq!(c, 200);
    assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["ingress-nginx", "2020-10-27T10:00:00Z"])
    );

    let (c, _) = post(&r, &format!("{rbac}/namespaces/ingress-nginx/rolebindings"), json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "ingress-nginx"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ingress-nginx"},
        "subjects": [{"kind": "ServiceAccount", "name": "ingress-nginx", "namespace": "ingress-nginx"},
                     {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
                     {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
                     {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "joe"}]})).await;
    assert_eq!(c, 201);
    let (_, t) = call(
        &r,
        "GET",
        &format!("{rbac}/namespaces/ingress-nginx/rolebindings"),
        None,
        &table,
    )
    .await;
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "ingress-nginx",
            "Role/ingress-nginx",
            "0s",
            "jane, joe",
            "devs",
            "ingress-nginx/ingress-nginx"
        ])
    );

    // Strict decoding knows the RBAC types.
    let (c, body) = post(&r, &format!("{rbac}/clusterrolebindings"), json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x"},
        "subject": "jane"})).await;
    assert_eq!(c, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .ends_with("strict decoding error: unknown field \"subject\""));
}

/// kube-apiserver's ValidateIngressCreate: the class annotation and ingressClassName may
/// not disagree on create; an update of a stored Ingress is not checked for it.
#[tokio::test]
async fn ingress_class_annotation_must_match_class_name_on_create() {
    let r = server().await;
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    let ing = |ann: &str, class: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.class": ann}},
            "spec": {"ingressClassName": class, "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}})
    };
    let path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
    let (c, body) = post(&r, path, ing("traefik", "nginx")).await;
    assert_eq!(c, 422, "{body}");
    assert_eq!(
        body["message"],
        "Ingress.networking.k8s.io \"web\" is invalid: annotations.kubernetes.io/ingress.class: Invalid value: \"traefik\": must match `ingressClassName` when both are specified"
    );
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "annotations.kubernetes.io/ingress.class"
    );
    let (c, _) = post(&r, path, ing("nginx", "nginx")).await;
    assert_eq!(c, 201);
    let (c, body) = call(
        &r,
        "PUT",
        &format!("{path}/web"),
        Some(ing("traefik", "nginx")),
        &[],
    )
    .await;
    assert_eq!(c, 200, "{body}");
}

#[tokio::test]
async fn service_account_admission_mounts_tokens_as_kube_apiserver_does() {
    let api = api_over(Arc::new(MemStore::new())).await;
    let res = |n: &str| apiserver::resources::find(n).unwrap();
    api.create(res("ns"), None, json!({"metadata": {"name": "default"}}))
        .await
        .unwrap();
    default_service_account(&api).await;
    api.create(
        res("sa"),
        Some("default"),
        json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false}),
    )
    .await
    .unwrap();
    let pod = |name: &str, spec: Value| json!({"metadata": {"name": name}, "spec": spec});
    let c = |extra: Value| {
        let mut c = json!({"name": "c", "image": "nginx"});
        if let Value::Object(m) = extra {
            c.as_object_mut().unwrap().extend(m);
        }
        c
    };

    // The ServiceAccount turns automount off; the pod may turn it back on.
    let off = api
        .create(
            res("po"),
            Some("default"),
            pod(
                "off",
                json!({"serviceAccountName": "quiet", "containers": [c(json!({}))]}),
            ),
        )
        .await
        .unwrap();
    assert!(off["spec"].get("volumes").is_none(), "{off}");
    assert_eq!(off["spec"]["serviceAccount"], "quiet");
    let on = api
        .create(res("po"), Some("default"), pod("on", json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true, "containers": [c(json!({}))]})))
        .await
        .unwrap();
    assert_eq!(on["spec"]["volumes"].as_array().unwrap().len(), 1);

    // Init containers are mounted too; one that already mounts the path keeps its own.
    let own = json!({"volumeMounts": [{"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]});
    let mixed = api
        .create(
            res("po"),
            Some("default"),
            pod(
                "mixed",
                json!({
            "initContainers": [c(json!({}))],
            "containers": [c(own), {"name": "d", "image": "nginx"}],
            "volumes": [{"name": "mine", "emptyDir": {}}]}),
            ),
        )
        .await
        .unwrap();
    let vol = mixed["spec"]["volumes"][1].clone();
    let vname = vol["name"].as_str().unwrap();
    assert_eq!(
        vol["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]})
    );
    let mount_names = |list: &str, i: usize| -> Vec<String> {
        mixed["spec"][list][i]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(mount_names("initContainers", 0), [vname]);
    assert_eq!(mount_names("containers", 0), ["mine"]);
    assert_eq!(mount_names("containers", 1), [vname]);

    // The kubelet's mirror pods get nothing, and may not name a ServiceAccount.
    let mirror = |spec: Value| json!({"metadata": {"name": "etcd-cp", "annotations": {"kubernetes.io/config.mirror": "abc"}}, "spec": spec});
    let err = api
        .create(
            res("po"),
            Some("default"),
            mirror(json!({"serviceAccountName": "default", "containers": [c(json!({}))]})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"etcd-cp\" is forbidden: a mirror pod may not reference service accounts"
    );
    let static_pod = api
        .create(
            res("po"),
            Some("default"),
            mirror(json!({"containers": [c(json!({}))]})),
        )
        .await
        .unwrap();
    assert!(static_pod["spec"].get("serviceAccountName").is_none());
    assert!(static_pod["spec"].get("volumes").is_none());
}

#[tokio::test]
async fn secrets_fold_string_data_into_base64_data() {
    let r = server().await;
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    let (c, s) = post(&r, "/api/v1/namespaces/default/secrets", json!({"metadata": {"name": "db"}, "data": {"user": "cm9vdA=="}, "stringData": {"password": "s3cr3t", "user": "admin"}})).await;
    assert_eq!(c, 201, "{s}");
    assert_eq!(
        s["data"],
        json!({"password": "czNjcjN0", "user": "YWRtaW4="})
    );
    assert_eq!(s["type"], "Opaque");
    assert!(s.get("stringData").is_none());

    let (c, s) = post(
        &r,
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "bad"}, "data": {"k": "not base64!"}}),
    )
    .await;
    assert_eq!(c, 400, "{s}");

    let (c, s) = call(
        &r,
        "PATCH",
        "/api/v1/namespaces/default/secrets/db",
        Some(json!({"type": "kubernetes.io/tls"})),
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_eq!(c, 422, "{s}");
    assert_eq!(
        s["message"],
        "Secret \"db\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable"
    );

    let (c, table) = call(
        &r,
        "GET",
        "/api/v1/namespaces/default/secrets",
        None,
        &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
    )
    .await;
    assert_eq!(c, 200);
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Type", "Data", "Age"]);
    assert_eq!(table["rows"][0]["cells"], json!(["db", "Opaque", 2, "0s"]));
}

#[tokio::test]
async fn strategic_merge_patches_merge_lists_by_key() {
    let r = server().await;
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    post(
        &r,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    let (c, pod) = post(&r, "/api/v1/namespaces/default/pods", json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.24"}, {"name": "side", "image": "busybox"}]}})).await;
    assert_eq!(c, 201, "{pod}");
    let mounts = pod["spec"]["containers"][0]["volumeMounts"].clone();
    assert_eq!(mounts.as_array().map(Vec::len), Some(1));
    // What kubectl apply sends for a changed image: the container by name, with its key.
    let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
        "containers": [{"name": "web", "image": "nginx:1.25"}]}});
    let smp = [("content-type", "application/strategic-merge-patch+json")];
    let (c, out) = call(
        &r,
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        Some(patch.clone()),
        &smp,
    )
    .await;
    assert_eq!(c, 200, "{out}");
    assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.25");
    assert_eq!(out["spec"]["containers"][0]["volumeMounts"], mounts);
    assert_eq!(out["spec"]["containers"][1]["name"], "side");
    // The same patch as a JSON merge patch replaces the list, which a pod may not do.
    let merge = [("content-type", "application/merge-patch+json")];
    let (c, out) = call(
        &r,
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        Some(patch),
        &merge,
    )
    .await;
    assert_eq!(c, 400, "{out}");
    // An element without its merge key is a 400, as upstream's.
    let (c, out) = call(
        &r,
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        Some(json!({"spec": {"containers": [{"image": "x"}]}})),
        &smp,
    )
    .await;
    assert_eq!(c, 400, "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("does not contain declared merge key: name"),
        "{out}"
    );
}

fn event(name: &str, ns: &str, n: usize) -> apiserver::EventRecord {
    apiserver::EventRecord {
        name: name.to_owned(),
        namespace: ns.to_owned(),
        involved: apiserver::ObjectRef {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: "web".into(),
            namespace: ns.to_owned(),
            resource_version: None,
            uid: Some("u-1".into()),
        },
        type_: "Normal",
        reason: "Pulled",
        message: format!("message {n}"),
        component: "kubelet",
        host: Some("node-1".into()),
        time: "2020-10-27T10:00:00Z".into(),
    }
}

/// In memory, Events are written by a thread of their own (more than one batch of them
/// here), yet a read right after sees every one, in order, as a POST would have made it;
/// and they take no revision of the store the other objects live in.
#[tokio::test]
async fn recorded_events_are_all_readable_at_once_and_apart() {
    let api = Arc::new(api_over(Arc::new(MemStore::new())).await);
    let r = apiserver::http::router(Arc::clone(&api));
    let (c, out) = call(
        &r,
        "POST",
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "default"}})),
        &[],
    )
    .await;
    assert_eq!(c, 201, "{out}");
    let before = api.store().current_revision().await.unwrap();
    for i in 0..600 {
        api.create_event(event(&format!("web.{i:04}"), "default", i))
            .await
            .unwrap();
    }
    assert_eq!(api.store().current_revision().await.unwrap(), before);
    let (c, list) = call(&r, "GET", "/api/v1/namespaces/default/events", None, &[]).await;
    assert_eq!(c, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 600);
    for (i, ev) in items.iter().enumerate() {
        assert_eq!(ev["metadata"]["name"], format!("web.{i:04}"));
        assert_eq!(ev["message"], format!("message {i}"));
        assert_eq!(ev["count"], 1);
        assert_eq!(
            ev["source"],
            json!({"component": "kubelet", "host": "node-1"})
        );
        assert_eq!(ev["metadata"]["creationTimestamp"], "2020-10-27T10:00:00Z");
        assert!(ev["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36));
    }
    // Their own revisions: one per event, counted from the start of their store.
    assert_eq!(items[599]["metadata"]["resourceVersion"], "600");
    assert_eq!(api.write_counts()[&("events", "create")], 600);
    // A count bump (a PATCH) waits for the writer too and lands on the stored event.
    let (c, out) = call(
        &r,
        "PATCH",
        "/api/v1/namespaces/default/events/web.0599",
        Some(json!({"count": 2})),
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_eq!(c, 200, "{out}");
    assert_eq!(out["count"], 2);
    api.flush_events().unwrap();
}

/// What is checked when an event is recorded fails at once; what the writer finds wrong
/// later is not lost: the next call reports it.
#[tokio::test]
async fn a_refused_event_is_reported() {
    let api = api_over(Arc::new(MemStore::new())).await;
    let err = api
        .create_event(event("web.1", "nowhere", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code, 404, "{err:?}");
    let ns = apiserver::resources::find("namespaces").unwrap();
    api.create(ns, None, json!({"metadata": {"name": "default"}}))
        .await
        .unwrap();
    api.create_event(event("Not_A_Name", "default", 0))
        .await
        .unwrap();
    let err = api.flush_events().unwrap_err();
    assert!(
        err.message.contains("recording an event failed") && err.message.contains("Not_A_Name"),
        "{err:?}"
    );
    // Reported once; the writer goes on.
    api.flush_events().unwrap();
    api.create_event(event("web.2", "default", 0))
        .await
        .unwrap();
    api.flush_events().unwrap();
}

/// Events apart belong to the store, not to one apiserver: a second apiserver over the
/// same MemStore (a restart) serves the Events the first one recorded.
#[tokio::test]
async fn events_apart_outlive_their_apiserver() {
    let store = Arc::new(MemStore::new());
    let first = api_over(Arc::clone(&store)).await;
    let ns = apiserver::resources::find("namespaces").unwrap();
    first
        .create(ns, None, json!({"metadata": {"name": "default"}}))
        .await
        .unwrap();
    first
        .create_event(event("web.1", "default", 7))
        .await
        .unwrap();
    drop(first);
    let r = apiserver::http::router(Arc::new(api_over(store).await));
    let (c, ev) = call(
        &r,
        "GET",
        "/api/v1/namespaces/default/events/web.1",
        None,
        &[],
    )
    .await;
    assert_eq!(c, 200, "{ev}");
    assert_eq!(ev["message"], "message 7");
}
