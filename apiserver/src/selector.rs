//! Label and field selectors (`-l app=web,tier!=db,env in (a,b),!canary`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::json::At;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Req>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let bad = || {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found '{part}', expected: identifier"
                ))
            };
            if let Some(key) = part.strip_prefix('!') {
                reqs.push(Req::NotExists(key.trim().to_owned()));
            } else if let Some((k, v)) = part.split_once("!=") {
                reqs.push(Req::NotEq(k.trim().to_owned(), v.trim().to_owned()));
            } else if let Some((k, v)) = part.split_once("==") {
                reqs.push(Req::Eq(k.trim().to_owned(), v.trim().to_owned()));
            } else if let Some((k, v)) = part.split_once('=') {
                reqs.push(Req::Eq(k.trim().to_owned(), v.trim().to_owned()));
            } else if let Some(idx) = part.find(" notin ") {
                let (k, rest) = part.split_at(idx);
                reqs.push(Req::NotIn(
                    k.trim().to_owned(),
                    parse_set(&rest[7..]).ok_or_else(bad)?,
                ));
            } else if let Some(idx) = part.find(" in ") {
                let (k, rest) = part.split_at(idx);
                reqs.push(Req::In(
                    k.trim().to_owned(),
                    parse_set(&rest[4..]).ok_or_else(bad)?,
                ));
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                reqs.push(Req::Exists(part.to_owned()));
            } else {
                return Err(bad());
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// A selector from a `matchLabels` map (Service `spec.selector`).
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        LabelSelector(
            m.iter()
                .map(|(k, v)| Req::Eq(k.clone(), v.clone()))
                .collect(),
        )
    }

    /// A selector from a metav1.LabelSelector JSON (`matchLabels` + `matchExpressions`).
    pub fn from_json(v: &Value) -> Self {
        let mut reqs = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                reqs.push(Req::Eq(
                    k.to_string(),
                    val.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                match e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "In" => reqs.push(Req::In(key, values)),
                    "NotIn" => reqs.push(Req::NotIn(key, values)),
                    "Exists" => reqs.push(Req::Exists(key)),
                    "DoesNotExist" => reqs.push(Req::NotExists(key)),
                    _ => {}
                }
            }
        }
        LabelSelector(reqs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches_labels(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches(&self, obj: &Value) -> bool {
        self.matches_labels(obj.at("/metadata/labels").and_then(Value::as_object))
    }
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let s = s.trim();
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect(),
    )
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A field selector: `metadata.name=web,spec.nodeName!=n1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let k = k.trim();
            if !SUPPORTED_FIELDS.contains(&k) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
            reqs.push((k.to_owned(), eq, v.trim().to_owned()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            // An Event's `source` field is its source's component.
            let ptr = match k.as_str() {
                "source" => "/source/component".to_owned(),
                _ => format!("/{}", k.replace('.', "/")),
            };
            let actual = obj.at(&ptr).and_then(Value::as_str).unwrap_or("");
            (actual == v) == *eq
        })
    }
}

const SUPPORTED_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "spec.type",
    "involvedObject.name",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    // Events' other selectable fields (the event registry's ToSelectableFields).
    "reason",
    "type",
    "source",
    "reportingComponent",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": labels}, "spec": {"nodeName": "n1"}})
    }

    #[test]
    fn label_selector_forms() {
        let p = pod(json!({"app": "web", "tier": "fe"}));
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!canary", true),
            ("app=web,tier=fe", true),
            ("app=web,tier=be", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&p),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn field_selector_by_name_and_node() {
        let p = pod(json!({}));
        assert!(FieldSelector::parse("metadata.name=p").unwrap().matches(&p));
        assert!(!FieldSelector::parse("metadata.name=q").unwrap().matches(&p));
        assert!(FieldSelector::parse("spec.nodeName!=n2")
            .unwrap()
            .matches(&p));
        assert!(FieldSelector::parse("spec.bogus=x").is_err());
    }

    #[test]
    fn event_field_selectors() {
        let ev = json!({"reason": "FailedCreate", "type": "Warning",
            "source": {"component": "replicaset-controller"},
            "involvedObject": {"kind": "ReplicaSet", "name": "web-1"}});
        for sel in [
            "reason=FailedCreate",
            "type=Warning,involvedObject.kind=ReplicaSet",
            "source=replicaset-controller",
            "reason!=Pulled",
        ] {
            assert!(FieldSelector::parse(sel).unwrap().matches(&ev), "{sel}");
        }
        assert!(!FieldSelector::parse("source=kubelet").unwrap().matches(&ev));
    }
}
