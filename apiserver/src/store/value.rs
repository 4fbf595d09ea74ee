//! What a key holds: the bytes etcd stores, or the object those bytes would encode.
//!
//! A real etcd can only hold bytes, so everything written to it is encoded. The in-memory
//! store, though, is read only by this process's apiserver, which wants the object back
//! (kube-apiserver's watch cache keeps decoded objects for the same reason). Encoding
//! every write there — a third of a status write's cost — produced bytes that nobody read
//! in a simulation run. So a value written by the apiserver carries its object, and its
//! bytes are made the first time something asks for them (etcd's put, a test, a
//! benchmark), once: the bytes are a pure function of an immutable object, so when they
//! are made changes nothing anyone can see.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

/// A stored value. Equality and `Debug` are those of its bytes.
#[derive(Clone)]
pub struct StoredValue(Repr);

#[derive(Clone)]
enum Repr {
    Bytes(Bytes),
    Object(Arc<Encodable>),
}

struct Encodable {
    obj: Arc<Value>,
    bytes: OnceLock<Bytes>,
}

impl StoredValue {
    /// The stored form of a Kubernetes object: its JSON without `metadata.resourceVersion`
    /// (the store's revision is the truth), encoded only when first asked for.
    pub fn object(obj: Arc<Value>) -> StoredValue {
        StoredValue(Repr::Object(Arc::new(Encodable {
            obj,
            bytes: OnceLock::new(),
        })))
    }

    /// The stored form of `obj`, encoded now: for values written by the ten thousand and
    /// read rarely (Events), whose bytes are smaller than their objects.
    pub fn encoded(obj: &Value) -> StoredValue {
        StoredValue(Repr::Bytes(encode(obj)))
    }

    /// The object this value was written from, when it was written by this process (a
    /// value read back from etcd has only bytes). Its `metadata.resourceVersion` may be
    /// anything: the stored form leaves it out.
    pub fn as_object(&self) -> Option<&Arc<Value>> {
        match &self.0 {
            Repr::Bytes(_) => None,
            Repr::Object(e) => Some(&e.obj),
        }
    }

    /// The bytes etcd holds for this value.
    pub fn bytes(&self) -> &Bytes {
        match &self.0 {
            Repr::Bytes(b) => b,
            Repr::Object(e) => e.bytes.get_or_init(|| encode(&e.obj)),
        }
    }
}

/// The stored form, as [`crate::json::write_compact`] writes it. Writing JSON into a
/// `Vec` cannot fail (serde_json only fails on I/O or on map keys that are not strings,
/// and a `Value`'s keys are strings), so there is no error to carry.
fn encode(obj: &Value) -> Bytes {
    let mut out = Vec::with_capacity(1024);
    match crate::json::write_compact(obj, &mut out, true) {
        Ok(()) => Bytes::from(out),
        Err(_) => Bytes::new(),
    }
}

impl From<Bytes> for StoredValue {
    fn from(b: Bytes) -> Self {
        StoredValue(Repr::Bytes(b))
    }
}

impl From<&'static str> for StoredValue {
    fn from(s: &'static str) -> Self {
        StoredValue(Repr::Bytes(Bytes::from_static(s.as_bytes())))
    }
}

impl PartialEq for StoredValue {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for StoredValue {}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.bytes(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_value_encodes_as_its_stored_form() {
        let obj = json!({"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "7"}});
        let v = StoredValue::object(Arc::new(obj.clone()));
        assert_eq!(
            v.bytes().as_ref(),
            br#"{"kind":"Pod","metadata":{"name":"a"}}"#
        );
        // Equal to the same bytes written eagerly, and the object is still there.
        assert_eq!(
            v,
            StoredValue::from(Bytes::from_static(
                br#"{"kind":"Pod","metadata":{"name":"a"}}"#
            ))
        );
        assert_eq!(v.as_object().map(|o| &**o), Some(&obj));
        assert_eq!(StoredValue::from("x").as_object(), None);
    }
}
