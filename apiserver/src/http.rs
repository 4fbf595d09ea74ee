//! The REST surface over HTTP (axum): Kubernetes paths, verbs, content negotiation
//! (JSON, YAML bodies; `as=Table` responses), chunked watch streams, discovery.
//! The built-in kubectl uses this same router in-process, so it sees what real clients see.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::api::{ApiServer, ListQuery, PatchType};
use crate::error::ApiError;
use crate::resources::{by_path, Resource, RESOURCES};

/// The Kubernetes version this server claims (matches the pinned k8s-openapi feature).
pub const KUBE_VERSION: (&str, &str) = ("1", "34");

pub fn router(api: Arc<ApiServer>) -> Router {
    Router::new().fallback(handle).with_state(api)
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (code, [("content-type", "application/json")], body).into_response()
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

struct Target {
    res: &'static Resource,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(path: &str) -> Result<Option<Target>, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let namespaced =
        rest[0] == "namespaces" && rest.len() >= 3 && by_path(group, version, rest[2]).is_some();
    let (ns, rest) = if namespaced {
        (Some(rest[1].to_owned()), &rest[2..])
    } else {
        (None, rest)
    };
    let res = by_path(group, version, rest[0]).ok_or_else(|| ApiError::path_not_found(path))?;
    if rest.len() > 3 {
        return Err(ApiError::path_not_found(path));
    }
    Ok(Some(Target {
        res,
        ns,
        name: rest.get(1).map(|s| (*s).to_owned()),
        sub: rest.get(2).map(|s| (*s).to_owned()),
    }))
}

fn query_map(uri: &Uri) -> std::collections::BTreeMap<String, String> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") || ct.contains("cbor") {
        // Typed clients (e.g. `kubectl create deployment`) send protobuf; netsim speaks the
        // JSON and YAML encodings only, and says so as kube-apiserver would.
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct:?})"
        )));
    }
    if ct.contains("yaml") {
        serde_norway::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

async fn handle(
    State(api): State<Arc<ApiServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&api, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => {
            // The deprecation warning wraps the resource's whole route, so a failed request
            // (a 404, an invalid object) carries it too.
            let mut resp = error_response(&e);
            let deprecated = parse_target(uri.path())
                .ok()
                .flatten()
                .and_then(|t| deprecation_warning(t.res));
            if let Some(v) = deprecated.and_then(|w| w.parse().ok()) {
                resp.headers_mut().append("warning", v);
            }
            resp
        }
    }
}

/// The `Warning` header kube-apiserver adds to every request for a deprecated resource.
fn deprecation_warning(res: &Resource) -> Option<&'static str> {
    (res.plural == "endpoints" && res.group.is_empty()).then_some(
        "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"",
    )
}

async fn route(
    api: &Arc<ApiServer>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path();
    if let Some(r) = discovery(path) {
        return Ok(r);
    }
    let t = parse_target(path)?.ok_or_else(|| ApiError::path_not_found(path))?;
    let q = query_map(uri);
    let ns = t.ns.as_deref();
    let status_only = match t.sub.as_deref() {
        None => false,
        Some("status") => true,
        Some(other) => return Err(ApiError::path_not_found(&format!("{path} ({other})"))),
    };
    let mut warnings: Vec<&'static str> = deprecation_warning(t.res).into_iter().collect();
    let resp = match (method.clone(), t.name.as_deref()) {
        (Method::GET, None) => {
            let lq = ListQuery {
                label_selector: q.get("labelSelector").cloned(),
                field_selector: q.get("fieldSelector").cloned(),
                limit: q.get("limit").and_then(|l| l.parse().ok()),
                continue_token: q.get("continue").cloned().filter(|c| !c.is_empty()),
                resource_version: q.get("resourceVersion").cloned(),
            };
            if q.get("watch").is_some_and(|w| w == "1" || w == "true") {
                let stream = api.watch(t.res, ns, &lq).await?;
                let body = Body::from_stream(stream.map(|v| {
                    let mut line = serde_json::to_vec(&v).unwrap_or_default();
                    line.push(b'\n');
                    Ok::<_, Infallible>(Bytes::from(line))
                }));
                return Ok(
                    (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
                );
            }
            if wants_table(headers) {
                let (items, rev, _) = api.list_objects(t.res, ns, &lq).await?;
                json_response(
                    StatusCode::OK,
                    &crate::table::table(t.res, &items, api.clock().now_ms(), &rev.to_string()),
                )
            } else {
                json_response(StatusCode::OK, &api.list(t.res, ns, &lq).await?)
            }
        }
        (Method::GET, Some(name)) => {
            let obj = api.get(t.res, ns, name).await?;
            if wants_table(headers) {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                json_response(
                    StatusCode::OK,
                    &crate::table::table(t.res, &[obj], api.clock().now_ms(), &rv),
                )
            } else {
                json_response(StatusCode::OK, &obj)
            }
        }
        (Method::POST, None) => {
            let obj = decode_body(headers, body)?;
            crate::decode::strict_decode(t.res, &obj)?;
            warnings.extend(ingress_warning(t.res, &obj));
            json_response(StatusCode::CREATED, &api.create(t.res, ns, obj).await?)
        }
        (Method::PUT, Some(name)) => {
            let obj = decode_body(headers, body)?;
            crate::decode::strict_decode(t.res, &obj)?;
            if !status_only {
                warnings.extend(ingress_warning(t.res, &obj));
            }
            json_response(
                StatusCode::OK,
                &api.update(t.res, ns, name, obj, status_only).await?,
            )
        }
        (Method::PATCH, Some(name)) => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ptype = if ct.starts_with("application/json-patch+json") {
                PatchType::Json
            } else if ct.starts_with("application/merge-patch+json") {
                PatchType::Merge
            } else if ct.starts_with("application/strategic-merge-patch+json") {
                PatchType::Strategic
            } else {
                return Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ct:?})"
                )));
            };
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let patched = api
                .patch(t.res, ns, name, &patch, ptype, status_only)
                .await?;
            if !status_only {
                warnings.extend(ingress_warning(t.res, &patched));
            }
            json_response(StatusCode::OK, &patched)
        }
        (Method::DELETE, Some(name)) => {
            let opts: Value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(body).unwrap_or(Value::Null)
            };
            let grace = q
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse().ok())
                .or_else(|| opts.get("gracePeriodSeconds").and_then(Value::as_i64));
            json_response(StatusCode::OK, &api.delete(t.res, ns, name, grace).await?)
        }
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m})"
            )))
        }
    };
    let mut resp = resp;
    for w in warnings {
        if let Ok(v) = w.parse() {
            resp.headers_mut().append("warning", v);
        }
    }
    Ok(resp)
}

/// kube-apiserver's warning on writing an Ingress that still uses the legacy class
/// annotation (pkg/api/networking `GetWarningsForIngress`), as a `Warning` header value.
fn ingress_warning(res: &Resource, obj: &Value) -> Option<&'static str> {
    (res.plural == "ingresses"
        && obj
            .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
            .is_some())
    .then_some(
        "299 - \"annotation \\\"kubernetes.io/ingress.class\\\" is deprecated, please use 'spec.ingressClassName' instead\"",
    )
}

/// A minimal OpenAPI v3: an index of group-versions, and per group-version the write
/// operations with their `x-kubernetes-group-version-kind` and the `fieldValidation`
/// parameter. That is what kubectl's `--validate=strict` (the default) looks for before it
/// relies on server-side validation, which this server does (strict decoding). Schemas are
/// not published.
fn openapi_v3(p: &str) -> Option<Value> {
    let gvs = || {
        let mut v: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
        v.dedup();
        v
    };
    let gv_path = |g: &str, v: &str| {
        if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        }
    };
    if p == "/openapi/v3" {
        let mut paths = serde_json::Map::new();
        for (g, v) in gvs() {
            let gp = gv_path(g, v);
            paths.insert(gp.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gp}?hash=netsim-{}", KUBE_VERSION.1)}));
        }
        return Some(json!({"paths": paths}));
    }
    let rest = p.strip_prefix("/openapi/v3/")?;
    let (g, v) = gvs().into_iter().find(|(g, v)| gv_path(g, v) == rest)?;
    let param = json!([{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}]);
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == g && r.version == v) {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let op = |verb: &str| json!({"operationId": format!("{verb}{}", r.kind), "x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": verb, "parameters": param, "responses": {"200": {"description": "OK"}}});
        let coll = r.collection_path(if r.namespaced {
            Some("{namespace}")
        } else {
            None
        });
        paths.insert(coll.clone(), json!({"post": op("post"), "get": op("list")}));
        paths.insert(format!("{coll}/{{name}}"), json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1)}, "paths": paths, "components": {"schemas": {}}}),
    )
}

fn discovery(path: &str) -> Option<Response> {
    let p = path.trim_end_matches('/');
    if p.starts_with("/openapi/v3") {
        return openapi_v3(p).map(|v| json_response(StatusCode::OK, &v));
    }
    let body = match p {
        "/api" => {
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
        }
        "/apis" => {
            let mut groups: Vec<&str> = RESOURCES
                .iter()
                .map(|r| r.group)
                .filter(|g| !g.is_empty())
                .collect();
            groups.dedup();
            let groups: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        "/version" => json!({
            "major": KUBE_VERSION.0, "minor": KUBE_VERSION.1, "gitVersion": format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1),
            "gitCommit": "netsim", "gitTreeState": "clean", "buildDate": "2020-10-27T10:00:00Z",
            "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"
        }),
        "/healthz" | "/readyz" | "/livez" => return Some((StatusCode::OK, "ok").into_response()),
        _ => {
            let gv = p
                .strip_prefix("/api/")
                .map(|v| ("", v))
                .or_else(|| p.strip_prefix("/apis/").and_then(|r| r.split_once('/')))?;
            if gv.1.contains('/') {
                return None;
            }
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == gv.0 && r.version == gv.1)
                .flat_map(|r| {
                    let mut v = vec![json!({
                        "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                        "shortNames": r.short_names, "categories": r.categories
                    })];
                    if matches!(r.plural, "pods" | "services" | "nodes" | "namespaces" | "deployments" | "replicasets" | "daemonsets" | "statefulsets") {
                        v.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
                    }
                    v
                })
                .collect();
            if resources.is_empty() {
                return None;
            }
            let group_version = if gv.0.is_empty() {
                gv.1.to_owned()
            } else {
                format!("{}/{}", gv.0, gv.1)
            };
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
        }
    };
    Some(json_response(StatusCode::OK, &body))
}
