//! JSON helpers for code that walks objects on every change.

use serde_json::Value;

/// RFC 6901 JSON Pointer lookup without allocating. `Value::pointer` unescapes every
/// token through `str::replace` (two allocations per token); controllers and admission
/// look up pointers on every object change, so this matters at scale.
pub trait At {
    fn at(&self, ptr: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, ptr: &str) -> Option<&Value> {
        if ptr.is_empty() {
            return Some(self);
        }
        let mut cur = self;
        for raw in ptr.strip_prefix('/')?.split('/') {
            let unescaped: String;
            let tok = if raw.contains('~') {
                unescaped = raw.replace("~1", "/").replace("~0", "~");
                unescaped.as_str()
            } else {
                raw
            };
            cur = match cur {
                Value::Object(m) => m.get(tok)?,
                Value::Array(a) => a.get(array_index(tok)?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// An array index token as RFC 6901 allows it: digits, no sign, no leading zero.
fn array_index(tok: &str) -> Option<usize> {
    if tok.starts_with('+') || (tok.len() > 1 && tok.starts_with('0')) {
        return None;
    }
    tok.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agrees_with_serde_json_pointer() {
        let v = json!({
            "metadata": {"labels": {"kubernetes.io/service-name": "web", "a~b": 1}},
            "spec": {"containers": [{"name": "c0"}, {"name": "c1"}]},
            "": {"empty": true}
        });
        for ptr in [
            "",
            "/metadata",
            "/metadata/labels/kubernetes.io~1service-name",
            "/metadata/labels/a~0b",
            "/spec/containers/1/name",
            "/spec/containers/01/name",
            "/spec/containers/+1/name",
            "/spec/containers/2",
            "/spec/containers/x",
            "/missing/deeper",
            "//empty",
            "metadata",
            "/metadata/labels/kubernetes.io/service-name",
        ] {
            assert_eq!(v.at(ptr), v.pointer(ptr), "pointer {ptr:?}");
        }
    }
}
