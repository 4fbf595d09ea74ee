//! JSON helpers for code that walks objects on every change.

use std::cell::Cell;

use serde_json::Value;

/// Lookup by an RFC 6901 JSON Pointer, or by its tokens (see [`Pointer`]), without
/// allocating. `Value::pointer` unescapes every token through `str::replace` (two
/// allocations per token); controllers and admission look up paths on every object change,
/// so this matters at scale.
pub trait At {
    fn at<P: Pointer + ?Sized>(&self, ptr: &P) -> Option<&Value>;
}

impl At for Value {
    #[inline]
    fn at<P: Pointer + ?Sized>(&self, ptr: &P) -> Option<&Value> {
        ptr.walk(self)
    }
}

/// A path into a JSON value: a JSON pointer (`"/spec/containers/0/image"`), parsed as it is
/// walked, or its tokens already split (`["spec", "containers", "0", "image"]`, unescaped:
/// a key with a `/` is written as it is). The controllers' lookups on every object change
/// give tokens: splitting the pointer cost more than finding the fields.
pub trait Pointer {
    fn walk<'a>(&self, v: &'a Value) -> Option<&'a Value>;
}

/// One pass over the pointer's bytes finds each token and whether it needs unescaping, and
/// a token is found in an object by [`field`], which compares lengths before bytes.
impl Pointer for str {
    fn walk<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        let ptr = self;
        if ptr.is_empty() {
            return Some(v);
        }
        let rest = ptr.strip_prefix('/')?;
        let bytes = rest.as_bytes();
        let mut cur = v;
        let mut start = 0;
        loop {
            let (end, escaped) = token_end(bytes, start);
            let raw = &rest[start..end];
            cur = match cur {
                // An escaped token (a label or annotation key with a `/`) is compared with
                // each key as it is unescaped, rather than unescaped into a new String.
                Value::Object(m) if escaped => m
                    .iter()
                    .find(|(k, _)| is_unescaped(k, raw))
                    .map(|(_, found)| found)?,
                Value::Object(m) => field(m, raw)?,
                // An index has no escapes; an escaped token is not an index.
                Value::Array(a) if !escaped => a.get(array_index(raw)?)?,
                _ => return None,
            };
            if end == bytes.len() {
                return Some(cur);
            }
            start = end + 1;
        }
    }
}

impl Pointer for String {
    fn walk<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.as_str().walk(v)
    }
}

impl Pointer for [&str] {
    #[inline]
    fn walk<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.iter().try_fold(v, |cur, token| match cur {
            Value::Object(m) => field(m, token),
            Value::Array(a) => a.get(array_index(token)?),
            _ => None,
        })
    }
}

impl<const N: usize> Pointer for [&str; N] {
    #[inline]
    fn walk<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.as_slice().walk(v)
    }
}

/// Whether `key` is the JSON-pointer token `raw` unescaped (`~1` is `/`, `~0` is `~`).
fn is_unescaped(key: &str, raw: &str) -> bool {
    let (mut k, mut r) = (key.as_bytes(), raw.as_bytes());
    while let Some((&c, rest)) = r.split_first() {
        let (want, rest) = match (c, rest.split_first()) {
            (b'~', Some((b'1', more))) => (b'/', more),
            (b'~', Some((b'0', more))) => (b'~', more),
            // Not an escape: taken as it stands, as `Value::pointer` does.
            (b'~', _) => (b'~', rest),
            _ => (c, rest),
        };
        match k.split_first() {
            Some((&have, krest)) if have == want => k = krest,
            _ => return false,
        }
        r = rest;
    }
    k.is_empty()
}

/// Where the pointer token starting at `start` ends (the next `/`, or the end), and whether
/// it holds a `~` (an escape). Eight bytes at a time: a byte loop here was a tenth of all
/// the simulator's instructions. In a `zero_bytes` mask the lowest set bit marks the first
/// zero byte exactly (higher ones may be borrows), which is all this reads of it.
#[inline]
fn token_end(bytes: &[u8], start: usize) -> (usize, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let first = |mask: u64| (mask.trailing_zeros() / 8) as usize;
    let len = bytes.len();
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let mut at = start;
    let mut escaped = false;
    while at < len {
        // The next 8 bytes; at the end, the last word shifted past what precedes `at`
        // (its top bytes become zeros, which are neither `/` nor `~`).
        let (x, n) = if at + 8 <= len {
            (word(at), 8)
        } else if len >= 8 {
            (word(len - 8) >> (8 * (at + 8 - len)), len - at)
        } else {
            let x = bytes[at..]
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            (x, len - at)
        };
        let slash = zero_bytes(x ^ (ONES * u64::from(b'/')));
        let tilde = zero_bytes(x ^ (ONES * u64::from(b'~')));
        if slash != 0 && first(slash) < n {
            let end = first(slash);
            return (at + end, escaped || (tilde != 0 && first(tilde) < end));
        }
        escaped |= tilde != 0 && first(tilde) < n;
        at += n;
    }
    (len, escaped)
}

/// Maps with at most this many fields are searched linearly (see [`field`]). A pod's
/// defaulted `spec` has 14–16 fields; at 12 its lookups were binary searches.
const LINEAR_FIELDS: usize = 24;

/// `m.get(key)`, faster for the small maps Kubernetes objects are made of: a binary search
/// orders keys with a `memcmp` call per step, while a scan compares lengths first and
/// touches bytes only for keys of the same length. Large maps keep the binary search.
/// Either way the position the name was last found at is tried first (see [`HINTS`]).
#[inline]
pub fn field<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    let slot = hint_slot(key);
    let hinted = HINTS.with(|h| h[slot].get());
    if hinted.0 == key.as_ptr() as usize {
        if let Some((k, v)) = m.get_index(hinted.1) {
            if same_bytes(k.as_bytes(), key.as_bytes()) {
                return Some(v);
            }
        }
    }
    field_by_scan(m, key, slot)
}

/// [`field`] when the remembered position is not the name's: inlined, [`field`]'s hit path
/// is a few instructions; this part is a call.
#[inline(never)]
fn field_by_scan<'a>(
    m: &'a serde_json::Map<String, Value>,
    key: &str,
    slot: usize,
) -> Option<&'a Value> {
    if m.len() > LINEAR_FIELDS {
        // A large map (an annotation set, say) is rare: its position is not remembered.
        return m.get(key);
    }
    let (i, (_, v)) = m
        .iter()
        .enumerate()
        .find(|(_, (k, _))| same_bytes(k.as_bytes(), key.as_bytes()))?;
    HINTS.with(|h| h[slot].set((key.as_ptr() as usize, i)));
    Some(v)
}

/// Slots of [`HINTS`]: more than the distinct field names the controllers look up.
const HINT_SLOTS: usize = 2048;

thread_local! {
    /// Where a field name was last found, by the name's address (field names are mostly
    /// string literals: one address per name): objects of one kind lay out their fields
    /// alike — a pod's `status` is its fifth field, whichever pod — so a lookup that tries
    /// that position first mostly compares one key instead of scanning. A hint is a guess,
    /// checked before it is used: a stale one, or another name's, costs only the scan.
    static HINTS: [Cell<(usize, usize)>; HINT_SLOTS] =
        const { [const { Cell::new((0, 0)) }; HINT_SLOTS] };
}

/// Fibonacci hashing: the top bits of the address times 2^64/φ.
#[inline]
fn hint_slot(key: &str) -> usize {
    const BITS: u32 = HINT_SLOTS.trailing_zeros();
    let hash = (key.as_ptr() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS);
    hash as usize
}

/// `a == b`, without a `memcmp` call for the short keys of Kubernetes objects: lengths
/// first, then bytes as words (two overlapping ones for a key of 4–8 bytes).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |s: &[u8], at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_le_bytes(w)
    };
    if n < 4 {
        return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
    }
    if n <= 8 {
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    // Whole words, then the last (overlapping) one: keys that differ mostly differ early.
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// A JSON object from owned parts. (`json!` serializes every embedded `Value` into a new
/// one, a deep copy per field; code that writes on every change builds with this.)
/// Pairs given in key order are taken as they are; any other order is sorted.
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().collect())
}

/// [`get`] on a value that may be missing.
pub fn get_in<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| get(v, key))
}

/// `v`'s value at `keys`, one object field per key: a JSON pointer's walk without parsing
/// the pointer, for the lookups made on every object change.
pub fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |cur, k| get(cur, k))
}

/// `v.get(key)` for an object `v` (None for anything else), through [`field`].
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => field(m, key),
        _ => None,
    }
}

/// An array index token as RFC 6901 allows it: digits, no sign, no leading zero.
fn array_index(tok: &str) -> Option<usize> {
    if tok.starts_with('+') || (tok.len() > 1 && tok.starts_with('0')) {
        return None;
    }
    tok.parse().ok()
}

/// Writes `v` as compact JSON, byte for byte what `serde_json::to_vec` writes, with
/// `metadata.resourceVersion` left out when `without_rv` (the stored form of an object:
/// the store's revision is the truth). Every write encodes its object, and serde_json's
/// string escaping (a table look-up per byte) was a tenth of a write's cost: strings with
/// nothing to escape — nearly all of them — are copied whole here.
pub fn write_compact(
    v: &Value,
    out: &mut Vec<u8>,
    without_rv: bool,
) -> Result<(), serde_json::Error> {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            let mut first = true;
            for (k, x) in m {
                if !first {
                    out.push(b',');
                }
                first = false;
                write_str(k, out)?;
                out.push(b':');
                if without_rv && k == "metadata" {
                    write_metadata(x, out)?;
                } else {
                    write_compact(x, out, false)?;
                }
            }
            out.push(b'}');
            Ok(())
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(x, out, false)?;
            }
            out.push(b']');
            Ok(())
        }
        Value::String(s) => write_str(s, out),
        Value::Null => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        Value::Bool(b) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            Ok(())
        }
        Value::Number(n) => serde_json::to_writer(&mut *out, n),
    }
}

/// `metadata` without `resourceVersion`.
fn write_metadata(v: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let Value::Object(m) = v else {
        return write_compact(v, out, false);
    };
    out.push(b'{');
    let mut first = true;
    for (k, x) in m.iter().filter(|(k, _)| *k != "resourceVersion") {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(k, out)?;
        out.push(b':');
        write_compact(x, out, false)?;
    }
    out.push(b'}');
    Ok(())
}

/// True if JSON must escape a byte of `s`: a control character, `"` or `\\`. Eight bytes
/// at a time (the classic has-zero-byte bit trick), as most strings need no escaping.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        // A byte below 0x20 has no bit of 0xE0 set: x & 0xE0.. has a zero byte there.
        if has_zero(x & 0xE0E0_E0E0_E0E0_E0E0)
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn write_str(s: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// serde_json's `Map` is vendored as a sorted vector (vendor/serde_json/src/vecmap.rs):
    /// it must behave as the BTreeMap it replaces, since every byte we write and every
    /// comparison of objects depends on it.
    #[test]
    fn json_maps_behave_as_sorted_maps() {
        use serde_json::Map;
        let mut m = Map::new();
        for k in ["spec", "apiVersion", "status", "kind", "metadata"] {
            assert!(m.insert(k.to_owned(), json!(k.len())).is_none());
        }
        assert_eq!(m.insert("kind", json!("Pod")), Some(json!(4)));
        let keys: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec", "status"]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"apiVersion":10,"kind":"Pod","metadata":8,"spec":4,"status":6}"#
        );
        assert_eq!(m.remove("metadata"), Some(json!(8)));
        assert_eq!(m.remove("metadata"), None);
        assert_eq!(m.get("spec"), Some(&json!(4)));
        assert!(!m.contains_key("metadata"));
        // Equality does not depend on the order keys arrived in.
        let other: Map<String, Value> = [("status", 6), ("spec", 4), ("apiVersion", 10)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .chain([("kind".to_owned(), json!("Pod"))])
            .collect();
        assert_eq!(m, other);
        // As BTreeMap::from_iter: of equal keys the last one stays.
        let dup: Map<String, Value> = [("b", 1), ("a", 2), ("b", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        assert_eq!(serde_json::to_string(&dup).unwrap(), r#"{"a":2,"b":3}"#);
        // The entry API, on both sides.
        *m.entry("kind").or_insert(json!(0)) = json!("Service");
        m.entry("zz").or_insert(json!([]));
        m.entry("a").or_insert(json!(null));
        let keys: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "apiVersion", "kind", "spec", "status", "zz"]);
        assert_eq!(m["kind"], "Service");
        m.retain(|k, _| k.len() > 1);
        assert_eq!(m.len(), 5);
        let back: Vec<(serde_json::map::Key, Value)> =
            m.clone().into_iter().rev().take(1).collect();
        assert_eq!(back, [("zz".into(), json!([]))]);
        // Keys longer than the 24 bytes a key holds inline order and compare as the short
        // ones do (they live on the heap instead).
        let long = "kubectl.kubernetes.io/last-applied-configuration";
        let mixed: Map<String, Value> = [(long, 1), ("kubectl", 2), ("kubernetes.io/zz", 3)]
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        let keys: Vec<&str> = mixed.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["kubectl", long, "kubernetes.io/zz"]);
        assert_eq!(mixed.get(long), Some(&json!(1)));
        assert_eq!(field(&mixed, long), Some(&json!(1)));
        // Parsing keeps the sorted order whatever the document's order.
        let parsed: Value = serde_json::from_str(r#"{"z":1,"a":{"y":2,"b":3},"m":[]}"#).unwrap();
        assert_eq!(parsed.to_string(), r#"{"a":{"b":3,"y":2},"m":[],"z":1}"#);
    }

    /// The map is copied on write: a clone shares its entries until one side changes, and
    /// a change through any path (insert, get_mut, entry, iter_mut, retain) leaves the
    /// other copy as it was.
    #[test]
    fn json_maps_are_copied_on_write() {
        let original =
            json!({"metadata": {"name": "web", "labels": {"app": "a"}}, "spec": {"n": 1}});
        let Value::Object(root) = &original else {
            unreachable!()
        };
        let mut copy = original.clone();
        let Value::Object(copy_root) = &copy else {
            unreachable!()
        };
        assert!(copy_root.ptr_eq(root));
        copy["metadata"]["labels"]["app"] = json!("b");
        copy["spec"].as_object_mut().unwrap().insert("m", json!(2));
        *copy["metadata"]
            .as_object_mut()
            .unwrap()
            .entry("name")
            .or_insert(json!(null)) = json!("api");
        for (_, v) in copy["spec"].as_object_mut().unwrap().iter_mut() {
            *v = json!(0);
        }
        assert_eq!(
            original,
            json!({"metadata": {"name": "web", "labels": {"app": "a"}}, "spec": {"n": 1}})
        );
        assert_eq!(
            copy,
            json!({"metadata": {"name": "api", "labels": {"app": "b"}}, "spec": {"m": 0, "n": 0}})
        );
        let Value::Object(copy_root) = &copy else {
            unreachable!()
        };
        assert!(!copy_root.ptr_eq(root));
        // A subtree nobody wrote to stays shared: here, none (both were written); a
        // fresh clone of the copy shares them all again.
        let again = copy.clone();
        assert!(again["spec"]
            .as_object()
            .unwrap()
            .ptr_eq(copy["spec"].as_object().unwrap()));
        let mut owned = again.clone();
        owned.as_object_mut().unwrap().retain(|k, _| k == "spec");
        assert_eq!(owned, json!({"spec": {"m": 0, "n": 0}}));
        assert_eq!(again["metadata"]["name"], "api");
        let into: Vec<String> = again
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(into, ["metadata", "spec"]);
    }

    /// Tokens given split walk as the pointer they spell does; a key with a `/` is a token
    /// as it stands (no escapes to undo).
    #[test]
    fn split_tokens_walk_as_their_pointer() {
        let v = json!({
            "metadata": {"labels": {"kubernetes.io/service-name": "web"}},
            "spec": {"containers": [{"name": "c0"}, {"name": "c1"}]},
            "": {"empty": true}
        });
        let cases: [(&[&str], &str); 9] = [
            (&[], ""),
            (&["metadata"], "/metadata"),
            (
                &["spec", "containers", "1", "name"],
                "/spec/containers/1/name",
            ),
            (
                &["spec", "containers", "01", "name"],
                "/spec/containers/01/name",
            ),
            (&["spec", "containers", "+1"], "/spec/containers/+1"),
            (&["spec", "containers", "2"], "/spec/containers/2"),
            (&["spec", "containers", "x"], "/spec/containers/x"),
            (&["", "empty"], "//empty"),
            (&["missing", "deeper"], "/missing/deeper"),
        ];
        for (tokens, ptr) in cases {
            assert_eq!(v.at(tokens), v.pointer(ptr), "tokens {tokens:?}");
        }
        assert_eq!(
            v.at(&["metadata", "labels", "kubernetes.io/service-name"]),
            Some(&json!("web"))
        );
        assert_eq!(
            v.at(&["spec", "containers", "0", "name"]),
            Some(&json!("c0"))
        );
    }

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
        // Tokens of every length around the 8-byte words the scan takes, with a `/` or `~`
        // at every position.
        for len in 1..=20usize {
            for pos in 0..len {
                for special in ['/', '~'] {
                    let mut key: Vec<char> = "abcdefghijklmnopqrstu".chars().take(len).collect();
                    key[pos] = special;
                    let key: String = key.into_iter().collect();
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    let v = json!({"outer-field": {key.clone(): {"leaf": len}}, key: pos});
                    for ptr in [
                        format!("/{escaped}"),
                        format!("/outer-field/{escaped}/leaf"),
                        format!("/outer-field/{escaped}/missing"),
                    ] {
                        assert_eq!(v.at(&ptr), v.pointer(&ptr), "pointer {ptr:?}");
                    }
                }
            }
        }
    }

    /// The position a name was last found at is a guess: maps laid out otherwise, or too
    /// small for it, are still searched.
    #[test]
    fn a_remembered_field_position_is_checked_before_use() {
        let key = "status";
        let pod = json!({"kind": "Pod", "status": 1});
        let svc = json!({"apiVersion": "v1", "kind": "Service", "spec": 2, "status": 3});
        let short = json!({"spec": 4});
        let wide = json!({"a": 0, "b": 0, "c": 0, "d": 0, "status": 5});
        assert_eq!(get(&pod, key), Some(&json!(1)));
        assert_eq!(get(&svc, key), Some(&json!(3)), "position 1 is `kind` here");
        assert_eq!(get(&short, key), None, "position 3 is past the end");
        assert_eq!(get(&wide, key), Some(&json!(5)));
        assert_eq!(get(&pod, key), Some(&json!(1)));
        assert_eq!(get(&svc, "kind"), Some(&json!("Service")));
    }

    /// Keys inserted in any order iterate in key order, and an entry finds a key that
    /// shares its first byte with others.
    #[test]
    fn inserted_keys_keep_key_order() {
        let keys = [
            "status",
            "spec",
            "",
            "s",
            "selector",
            "apiVersion",
            "kind",
            "sa",
        ];
        let mut m = serde_json::Map::new();
        for (i, k) in keys.iter().enumerate() {
            m.insert((*k).to_owned(), json!(i));
        }
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        assert_eq!(m.keys().map(|k| k.as_str()).collect::<Vec<_>>(), sorted);
        *m.entry("selector").or_insert(json!(null)) = json!("found");
        m.insert("s".to_owned(), json!("replaced"));
        assert_eq!(m.len(), keys.len());
        assert_eq!(m["selector"], json!("found"));
        assert_eq!(m["s"], json!("replaced"));
    }

    #[test]
    fn field_finds_keys_in_small_and_large_maps() {
        let small = json!({"a": 1, "bb": 2, "ab": 3, "": 4});
        let large: Value = (0..40)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        for (v, keys) in [
            (&small, vec!["a", "bb", "ab", "", "b", "abc"]),
            (&large, vec!["k0", "k39", "k40", "k", ""]),
        ] {
            for k in keys {
                assert_eq!(get(v, k), v.get(k), "key {k:?}");
            }
        }
        assert_eq!(get(&json!([1]), "0"), None);
        // Keys of one length, and maps either side of the linear-scan limit: against a
        // plain walk of the entries (not `Map::get`, which scans small maps itself).
        let names = [
            "spec",
            "kind",
            "name",
            "uid",
            "resourceVersion",
            "ownerReferences",
        ];
        for n in [3, 6, 13, 20, 24, 25, 40] {
            let m: serde_json::Map<String, Value> = (0..n)
                .map(|i| {
                    (
                        format!("{}{}", names[i % names.len()], i / names.len()),
                        json!(i),
                    )
                })
                .collect();
            let v = Value::Object(m.clone());
            for i in 0..n + 2 {
                let k = format!("{}{}", names[i % names.len()], i / names.len());
                let want = m.iter().find(|(kk, _)| **kk == k).map(|(_, x)| x);
                assert_eq!(get(&v, &k), want, "{n} fields, key {k:?}");
                assert_eq!(m.get(&k), want, "{n} fields, Map::get {k:?}");
                assert_eq!(m.contains_key(&k), want.is_some());
            }
        }
    }

    #[test]
    fn path_walks_fields_as_a_pointer_does() {
        let v = json!({"metadata": {"name": "web", "labels": {"a/b": "c"}}, "spec": [1]});
        assert_eq!(path(&v, &["metadata", "name"]), v.pointer("/metadata/name"));
        assert_eq!(path(&v, &["metadata", "labels", "a/b"]), Some(&json!("c")));
        assert_eq!(path(&v, &[]), Some(&v));
        assert_eq!(path(&v, &["metadata", "nope"]), None);
        assert_eq!(
            path(&v, &["spec", "0"]),
            None,
            "fields only, not array indexes"
        );
    }

    #[test]
    fn escaped_tokens_find_what_value_pointer_finds() {
        let keys = [
            "a/b", "a~b", "~1", "/", "~", "a~/b", "x~2y", "~0", "plain", "a//b",
        ];
        let obj = Value::Object(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (k.to_string(), Value::from(i)))
                .collect(),
        );
        let tokens = [
            "a~1b", "a~0b", "~01", "~1", "~0", "a~0~1b", "x~2y", "~00", "plain", "a~1~1b", "a~1",
            "~", "~~1", "a~", "~2", "",
        ];
        for t in tokens {
            let ptr = format!("/{t}");
            assert_eq!(obj.at(&ptr), obj.pointer(&ptr), "token {t:?}");
        }
        let nested = serde_json::json!({"m": {"l": {"kubernetes.io/service-name": "web"}}});
        assert_eq!(
            nested.at("/m/l/kubernetes.io~1service-name"),
            Some(&Value::from("web"))
        );
        assert_eq!(nested.at("/m/l/kubernetes.io~1service-nam"), None);
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
            assert!(same_bytes(&a, &a.clone()), "len {n}");
            for pos in 0..n {
                let mut b = a.clone();
                b[pos] ^= 0x20;
                assert!(!same_bytes(&a, &b), "len {n}, differs at {pos}");
            }
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn needs_escape_finds_every_byte_json_escapes() {
        for b in 0u8..=255 {
            let want = b < 0x20 || b == b'"' || b == b'\\';
            for pos in [0, 3, 7, 8, 12, 16] {
                let mut s = vec![b'a'; 17];
                s[pos] = b;
                assert_eq!(needs_escape(&s), want, "byte {b:#x} at {pos}");
            }
            assert_eq!(needs_escape(&[b]), want, "byte {b:#x} alone");
        }
        assert!(!needs_escape(b""));
        assert!(!needs_escape(
            "ünïcødé ✓ long enough to fill chunks".as_bytes()
        ));
    }

    #[test]
    fn write_compact_writes_what_serde_json_writes() {
        let v = json!({
            "metadata": {"name": "web", "resourceVersion": "42", "labels": {"a/b": "c\"d"}},
            "spec": {"n": [0, -1, 18446744073709551615u64, 9223372036854775807i64, 1.5, -0.25, 1e300, 3.0]},
            "s": ["", "plain", "tab\there", "nl\n", "quote\"", "back\\slash", "\u{1}\u{1f}\u{7f}", "ünï©ødé ✓", "</script>",
                "\"", "a\"", "\\", "7chars\n", "seven!!", "eight!!!", "nine!!!!!", " ", "ü"],
            "t": true, "f": false, "z": null, "e": {}, "ea": [],
            "k\"ey": {"\u{0}": 1}
        });
        let mut out = Vec::new();
        write_compact(&v, &mut out, false).unwrap();
        assert_eq!(out, serde_json::to_vec(&v).unwrap());

        let mut stored = Vec::new();
        write_compact(&v, &mut stored, true).unwrap();
        let mut without = v.clone();
        without["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        assert_eq!(stored, serde_json::to_vec(&without).unwrap());
        // Only the top-level metadata loses its resourceVersion.
        let nested = json!({"spec": {"metadata": {"resourceVersion": "1"}}});
        let mut out = Vec::new();
        write_compact(&nested, &mut out, true).unwrap();
        assert_eq!(out, serde_json::to_vec(&nested).unwrap());
    }
}
