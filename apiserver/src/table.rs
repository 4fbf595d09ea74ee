//! Server-side Table rendering (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
//! TEMPORARY stub: replaced by the full printers.
use crate::resources::Resource;
use serde_json::{json, Value};

pub fn table(_res: &Resource, objects: &[Value], _now_ms: i64, resource_version: &str) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": [o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)], "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(Value::Null)}}))
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}], "rows": rows})
}
