//! Strict decoding: every object is decoded into its k8s-openapi type, and fields the type
//! does not know are rejected as kube-apiserver does with `fieldValidation=Strict`
//! (`strict decoding error: unknown field "spec.replica"`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use k8s_openapi::api::{
    apps::v1 as apps, core::v1 as core, discovery::v1 as discovery, networking::v1 as networking,
    rbac::v1 as rbac,
};

use crate::error::ApiError;
use crate::resources::Resource;

/// Decodes `obj` as `res`'s type; returns a 400 like the real apiserver on type errors or
/// unknown fields.
pub fn strict_decode(res: &Resource, obj: &Value) -> Result<(), ApiError> {
    let r = match res.plural {
        "namespaces" => check::<core::Namespace>(obj),
        "nodes" => check::<core::Node>(obj),
        "pods" => check::<core::Pod>(obj),
        "services" => check::<core::Service>(obj),
        "endpoints" => check::<core::Endpoints>(obj),
        "events" => check::<core::Event>(obj),
        "configmaps" => check::<core::ConfigMap>(obj),
        "serviceaccounts" => check::<core::ServiceAccount>(obj),
        "secrets" => check::<core::Secret>(obj),
        "deployments" => check::<apps::Deployment>(obj),
        "replicasets" => check::<apps::ReplicaSet>(obj),
        "daemonsets" => check::<apps::DaemonSet>(obj),
        "statefulsets" => check::<apps::StatefulSet>(obj),
        "endpointslices" => check::<discovery::EndpointSlice>(obj),
        "ingresses" => check::<networking::Ingress>(obj),
        "ingressclasses" => check::<networking::IngressClass>(obj),
        "clusterroles" => check::<rbac::ClusterRole>(obj),
        "clusterrolebindings" => check::<rbac::ClusterRoleBinding>(obj),
        "roles" => check::<rbac::Role>(obj),
        "rolebindings" => check::<rbac::RoleBinding>(obj),
        _ => Ok(()),
    };
    r.map_err(|why| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {why}",
            kind = res.kind,
            v = res.version
        ))
    })
}

fn check<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_fields(obj, &back, "", &mut unknown);
    match unknown.len() {
        0 => Ok(()),
        1 => Err(format!(
            "strict decoding error: unknown field \"{}\"",
            unknown[0]
        )),
        _ => Err(format!(
            "strict decoding error: {}",
            unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Keys present in the input but absent after a typed round trip were not understood.
/// Nulls and empty values may be dropped by the round trip, so they do not count.
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(tv) => unknown_fields(v, tv, &p, out),
                    None if is_empty(v) => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        // A free-form map (labels, data): nothing to check below.
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replica": 3, "selector": {"matchLabels": {"a": "b"}}, "template": {}}});
        let e = strict_decode(find("deploy").unwrap(), &d).unwrap_err();
        assert_eq!(e.message, "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\"");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn known_fields_and_free_maps_pass() {
        let s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "labels": {"any.key/x": "y"}},
            "spec": {"type": "NodePort", "selector": {"app": "myapp"}, "ports": [{"name": "http", "port": 80, "targetPort": 80}]}});
        strict_decode(find("svc").unwrap(), &s).unwrap();
    }
}
