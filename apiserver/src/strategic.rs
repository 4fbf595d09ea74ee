//! Strategic merge patch, as apimachinery's `strategicpatch` applies it to the built-in
//! types: maps merge as in a JSON merge patch, but a list whose field has a patch merge key
//! (a pod's `containers` by `name`, `volumeMounts` by `mountPath`, a Service's `ports` by
//! `port`…) merges element by element, so an element keeps the fields the patch does not
//! name — fields the server added, such as the ServiceAccount volume mount. Lists without a
//! merge key are replaced. The directives `kubectl apply` sends are understood:
//! `$patch: delete|replace`, `$setElementOrder/<field>`, `$retainKeys` and
//! `$deleteFromPrimitiveList/<field>`.
//!
//! The merge keys come from one table keyed by field name (and, for `ports`, by where the
//! list sits), not from the OpenAPI schema: the built-in types use each field name with
//! one meaning, and a field not in the table is replaced, as an unknown list would be.

use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const ORDER: &str = "$setElementOrder/";
const RETAIN: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// A list field's patch merge key (`patchMergeKey` in the types' Go tags), where `parent`
/// is the field the list's object sits under (`containers` for a container's `ports`).
pub fn merge_key(parent: &str, field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => match parent {
            "containers" | "initContainers" | "ephemeralContainers" => "containerPort",
            // A Service's spec.ports.
            "spec" => "port",
            _ => return None,
        },
        _ => return None,
    })
}

/// Lists of scalars that merge (as a set) rather than being replaced.
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Applies `patch` to `target` in place.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), String> {
    merge_value(target, patch, "")
}

fn merge_value(target: &mut Value, patch: &Value, parent: &str) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = strip(patch);
        return Ok(());
    };
    match p.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            *target = strip(patch);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) => return Err(format!("unknown patch type: {other} in map: {patch}")),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    merge_map(t, p, parent)
}

fn merge_map(
    t: &mut Map<String, Value>,
    p: &Map<String, Value>,
    parent: &str,
) -> Result<(), String> {
    for (k, v) in p {
        if k == PATCH || k == RETAIN || k.starts_with(ORDER) {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(live)), Value::Array(items)) => {
                if let Some(key) = merge_key(parent, k) {
                    merge_list(live, items, key, k)?;
                } else if merges_primitives(k) {
                    for x in items {
                        if !live.contains(x) {
                            live.push(x.clone());
                        }
                    }
                } else {
                    *live = items.iter().map(strip).collect();
                }
            }
            (Some(live @ Value::Object(_)), Value::Object(_)) => merge_value(live, v, k)?,
            _ => {
                let fresh = if v.is_object() {
                    let mut fresh = Value::Object(Map::new());
                    merge_value(&mut fresh, v, k)?;
                    fresh
                } else {
                    strip(v)
                };
                if !fresh.is_null() {
                    t.insert(k.clone(), fresh);
                }
            }
        }
    }
    if let Some(Value::Array(keep)) = p.get(RETAIN) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, order) in p {
        if let (Some(field), Value::Array(order)) = (k.strip_prefix(ORDER), order) {
            if let Some(Value::Array(list)) = t.get_mut(field) {
                reorder(list, order, merge_key(parent, field));
            }
        }
    }
    Ok(())
}

fn merge_list(
    live: &mut Vec<Value>,
    items: &[Value],
    key: &str,
    field: &str,
) -> Result<(), String> {
    if items
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"))
    {
        *live = items
            .iter()
            .filter(|i| i.get(PATCH).is_none())
            .map(strip)
            .collect();
        return Ok(());
    }
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(format!(
                "map: {item} does not contain declared merge key: {key}"
            ));
        };
        let at = live.iter().position(|l| l.get(key) == Some(id));
        match (item.get(PATCH).and_then(Value::as_str), at) {
            (Some("delete"), Some(i)) => {
                live.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => merge_value(&mut live[i], item, field)?,
            (_, None) => {
                let mut fresh = Value::Object(Map::new());
                merge_value(&mut fresh, item, field)?;
                live.push(fresh);
            }
        }
    }
    Ok(())
}

/// `$setElementOrder`: the listed elements first, in that order; the others after, as they
/// were.
fn reorder(list: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| -> Option<Value> {
        match key {
            Some(k) => v.get(k).cloned(),
            None => Some(v.clone()),
        }
    };
    let wanted: Vec<Value> = order.iter().filter_map(id).collect();
    let mut rest = std::mem::take(list);
    for w in &wanted {
        if let Some(i) = rest.iter().position(|v| id(v).as_ref() == Some(w)) {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

/// The strategic patch that turns `from` into `to`, as `kubectl apply` computes it from the
/// last-applied configuration: changed and new fields, `null` for removed ones, and for a
/// list with a merge key only the elements that changed (with their key), `$patch: delete`
/// for removed ones and `$setElementOrder/<field>` for the new order, so that fields the
/// server added to an element survive.
pub fn diff(from: &Value, to: &Value) -> Value {
    diff_in(from, to, "")
}

fn diff_in(from: &Value, to: &Value, parent: &str) -> Value {
    let (Value::Object(a), Value::Object(b)) = (from, to) else {
        return to.clone();
    };
    let mut out = Map::new();
    for (k, v) in b {
        match a.get(k) {
            Some(old) if old == v => {}
            Some(Value::Array(old)) => match (merge_key(parent, k), v) {
                (Some(key), Value::Array(new)) => {
                    let mut items = Vec::new();
                    for n in new {
                        let id = n.get(key);
                        match old.iter().find(|o| id.is_some() && o.get(key) == id) {
                            Some(o) if o == n => {}
                            Some(o) => {
                                let mut d = diff_in(o, n, k);
                                if let (Value::Object(m), Some(id)) = (&mut d, id) {
                                    m.insert(key.to_owned(), id.clone());
                                }
                                items.push(d);
                            }
                            None => items.push(n.clone()),
                        }
                    }
                    for o in old {
                        let id = o.get(key);
                        if id.is_some() && !new.iter().any(|n| n.get(key) == id) {
                            let mut gone = Map::new();
                            if let Some(id) = id {
                                gone.insert(key.to_owned(), id.clone());
                            }
                            gone.insert(PATCH.to_owned(), Value::String("delete".into()));
                            items.push(Value::Object(gone));
                        }
                    }
                    let order: Vec<Value> = new
                        .iter()
                        .filter_map(|n| n.get(key))
                        .map(|id| {
                            let mut m = Map::new();
                            m.insert(key.to_owned(), id.clone());
                            Value::Object(m)
                        })
                        .collect();
                    out.insert(format!("{ORDER}{k}"), Value::Array(order));
                    out.insert(k.clone(), Value::Array(items));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            },
            Some(old) => {
                out.insert(k.clone(), diff_in(old, v, k));
            }
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// A patch value as stored: directives removed at every level.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !(k.as_str() == PATCH
                        || k.as_str() == RETAIN
                        || k.starts_with(ORDER)
                        || k.starts_with(DELETE_PRIMITIVE))
                })
                .map(|(k, x)| (k.clone(), strip(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| x.get(PATCH).and_then(Value::as_str) != Some("delete"))
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(target: Value, patch: Value) -> Value {
        let mut t = target;
        apply(&mut t, &patch).unwrap();
        t
    }

    #[test]
    fn containers_merge_by_name_and_keep_server_fields() {
        let pod = json!({"spec": {"containers": [
            {"name": "web", "image": "v1", "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
            {"name": "side", "image": "s1"}]}});
        let out = patched(
            pod,
            json!({"spec": {"containers": [{"name": "web", "image": "v2"}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "web", "image": "v2", "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
                {"name": "side", "image": "s1"}]}})
        );
    }

    #[test]
    fn kubectl_apply_directives() {
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b1"}]}}}});
        let out = patched(
            d,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                "containers": [
                    {"name": "a", "env": [{"name": "Y", "$patch": "delete"}, {"name": "Z", "value": "3"}]},
                    {"name": "b", "$patch": "delete"},
                    {"name": "c", "image": "c1"}]}}}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "c1"},
                {"name": "a", "image": "a1", "env": [{"name": "X", "value": "1"}, {"name": "Z", "value": "3"}]}]}}}})
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_other_lists_are_replaced() {
        let svc = json!({"spec": {"ports": [{"port": 80, "nodePort": 30080, "targetPort": 80}],
            "externalIPs": ["1.1.1.1"]},
            "metadata": {"finalizers": ["a"]}});
        let out = patched(
            svc,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "externalIPs": ["2.2.2.2"]},
                "metadata": {"finalizers": ["b"]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"ports": [{"port": 80, "nodePort": 30080, "targetPort": 8080}],
                "externalIPs": ["2.2.2.2"]},
                "metadata": {"finalizers": ["a", "b"]}})
        );
    }

    #[test]
    fn replace_retain_and_primitive_delete() {
        let obj = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "volumes": [{"name": "v", "emptyDir": {}}]},
            "metadata": {"finalizers": ["a", "b"]}});
        let out = patched(
            obj,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "volumes": [{"$patch": "replace"}, {"name": "w", "hostPath": {"path": "/x"}}]},
                "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"strategy": {"type": "Recreate"},
                "volumes": [{"name": "w", "hostPath": {"path": "/x"}}]},
                "metadata": {"finalizers": ["b"]}})
        );
    }

    #[test]
    fn diff_then_apply_reaches_the_new_manifest_and_keeps_server_fields() {
        let prev = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "a", "image": "a1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b1"}]}}}});
        let new = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "c1"},
            {"name": "a", "image": "a2"}]}}}});
        let d = diff(&prev, &new);
        assert_eq!(
            d,
            json!({"spec": {"replicas": null, "template": {"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "c1"}, {"name": "a", "image": "a2", "env": null},
                    {"name": "b", "$patch": "delete"}]}}}})
        );
        // The live object has what the server added to container a.
        let mut live = prev.clone();
        live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            json!("/dev/termination-log");
        apply(&mut live, &d).unwrap();
        assert_eq!(
            live,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "c1"},
                {"name": "a", "image": "a2", "terminationMessagePath": "/dev/termination-log"}]}}}})
        );
        assert_eq!(diff(&new, &new), json!({}));
    }

    #[test]
    fn an_element_without_its_merge_key_is_an_error() {
        let mut pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let err = apply(&mut pod, &json!({"spec": {"containers": [{"image": "x"}]}})).unwrap_err();
        assert!(
            err.contains("does not contain declared merge key: name"),
            "{err}"
        );
    }
}
