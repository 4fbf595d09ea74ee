//! netsim's patch: the map behind `serde_json::Map`, a vector of entries sorted by key,
//! instead of `BTreeMap`. Iteration order, and so every serialized byte, is the same as
//! BTreeMap's (keys in `Ord` order). What changes is the cost of the small maps Kubernetes
//! objects are made of: a BTreeMap allocates a 632-byte node even for one entry, this
//! allocates exactly its entries (56 bytes each) and a reference count, in one block.
//! The entries are an `EcoVec`, copied on write: cloning a map, and so a whole object tree,
//! is a reference-count bump, and a copy that is then changed copies only the maps on the
//! path to the change. Kubernetes controllers copy an object to change one field of it (a
//! status, a label, a resourceVersion); the spec they did not touch stays shared between
//! the versions, and comparing the two versions skips it by pointer.
//! Only the slice of BTreeMap's API that `map.rs` uses is here, under the same names.

use alloc::vec::Vec;
use ecow::EcoVec;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::iter::FusedIterator;
use core::ops;
use core::slice;

/// An empty map allocates nothing.
pub struct VecMap<K, V> {
    entries: EcoVec<(K, V)>,
}

/// `BTreeMap` is spelled this way in `map.rs`.
pub type BTreeMap<K, V> = VecMap<K, V>;

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: EcoVec::new(),
        }
    }
}

impl<K: Clone, V: Clone> Clone for VecMap<K, V> {
    fn clone(&self) -> Self {
        VecMap {
            entries: self.entries.clone(),
        }
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for VecMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        // Both sorted by key: equal maps have equal entry sequences.
        self.ptr_eq(other) || self.slice() == other.slice()
    }
}

impl<K: Eq, V: Eq> Eq for VecMap<K, V> {}

impl<K: Hash, V: Hash> Hash for VecMap<K, V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for (k, v) in self.slice() {
            k.hash(state);
            v.hash(state);
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_map()
            .entries(self.slice().iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K, V> VecMap<K, V> {
    #[inline]
    fn slice(&self) -> &[(K, V)] {
        self.entries.as_slice()
    }

    /// One allocation (or both empty): equal without comparing entries.
    #[inline]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        let (a, b) = (self.slice(), other.slice());
        core::ptr::eq(a, b)
    }

    pub fn len(&self) -> usize {
        self.slice().len()
    }

    #[inline]
    pub fn get_index(&self, i: usize) -> Option<(&K, &V)> {
        self.slice().get(i).map(|(k, v)| (k, v))
    }

    pub fn is_empty(&self) -> bool {
        self.slice().is_empty()
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            iter: self.slice().iter(),
        }
    }

    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys {
            iter: self.slice().iter(),
        }
    }

    pub fn values(&self) -> Values<'_, K, V> {
        Values {
            iter: self.slice().iter(),
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl<K: Clone, V: Clone> VecMap<K, V> {
    /// The entries, for writing in place: this map's own copy (copied now if shared).
    #[inline]
    fn entries_mut(&mut self) -> &mut [(K, V)] {
        self.entries.make_mut()
    }
}

/// Where a key goes, for the writes that bring a key of their own (`insert`, `entry`). An
/// ordering step looks at the first bytes before comparing the keys whole: the keys of one
/// Kubernetes object mostly differ there (`apiVersion`, `kind`, `metadata`, `spec`,
/// `status`), and a whole compare is a `memcmp` call per step. (Sound because a key's order
/// is its bytes' order, as it is for the `CompactString` keys `map.rs` uses.)
impl<K: Ord + Clone + AsRef<[u8]>, V: Clone> VecMap<K, V> {
    fn find_key(&self, key: &K) -> Result<usize, usize> {
        let key = key.as_ref();
        self.slice()
            .binary_search_by(|(k, _)| key_cmp(k.as_ref(), key))
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        // Keys usually arrive in order (our own encoder writes them sorted): append.
        let last_is_less = |(last, _): &(K, V)| key_cmp(last.as_ref(), key.as_ref()).is_lt();
        if self.slice().last().map_or(true, last_is_less) {
            self.entries.push((key, value));
            return None;
        }
        match self.find_key(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.entries_mut()[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Moves all of `other`'s entries into `self`; `other`'s value wins on a shared key.
    pub fn append(&mut self, other: &mut Self) {
        for (k, v) in core::mem::take(&mut other.entries) {
            self.insert(k, v);
        }
    }

    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let found = self.find_key(&key);
        let entries = &mut self.entries;
        match found {
            Ok(index) => Entry::Occupied(OccupiedEntry { entries, index }),
            Err(index) => Entry::Vacant(VacantEntry {
                entries,
                index,
                key,
            }),
        }
    }
}

/// `a.cmp(b)`, decided by the first byte where that differs.
#[inline]
fn key_cmp(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

impl<K: Ord + Clone, V: Clone> VecMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn find<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        self.slice().binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// Where `key` is, if it is here. The maps of Kubernetes objects are small, and a scan
    /// of a small one is cheaper than a binary search: string equality compares lengths
    /// (stored inline) before bytes, where each ordering step of a search is a `memcmp`.
    fn position<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        const LINEAR: usize = 24;
        let entries = self.slice();
        if entries.len() <= LINEAR {
            entries.iter().position(|(k, _)| k.borrow() == key)
        } else {
            self.find(key).ok()
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        self.position(key).map(|i| &self.slice()[i].1)
    }

    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        self.position(key).map(|i| {
            let (k, v) = &self.slice()[i];
            (k, v)
        })
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        self.position(key).is_some()
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        let i = self.position(key)?;
        Some(&mut self.entries_mut()[i].1)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Ord,
    {
        let i = self.position(key)?;
        Some(self.entries.remove(i))
    }

    pub fn retain<F>(&mut self, mut f: F)
    where
        F: FnMut(&K, &mut V) -> bool,
    {
        if !self.entries.is_empty() {
            self.entries.retain(|(k, v)| f(k, v));
        }
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut {
            iter: self.entries_mut().iter_mut(),
        }
    }

    pub fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        ValuesMut {
            iter: self.entries_mut().iter_mut(),
        }
    }

    pub fn into_values(self) -> IntoValues<K, V> {
        IntoValues {
            iter: self.entries.into_iter(),
        }
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for VecMap<K, V> {
    /// As `BTreeMap::from_iter`: sorted by key, and of equal keys the last one stays.
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        // Straight into the map's own vector when the keys arrive in order, as they do
        // from a parser of our own output and from builders that list them sorted.
        let entries: EcoVec<(K, V)> = iter.into_iter().collect();
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return VecMap { entries };
        }
        let mut entries: Vec<(K, V)> = entries.into_iter().collect();
        let wrap = |entries: Vec<(K, V)>| VecMap {
            entries: EcoVec::from(entries),
        };
        // Stable: equal keys keep their order, so the last of a run is the last given.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(K, V)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        wrap(out)
    }
}

impl<K: Ord + Clone + AsRef<[u8]>, V: Clone> Extend<(K, V)> for VecMap<K, V> {
    fn extend<T: IntoIterator<Item = (K, V)>>(&mut self, iter: T) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, Q, V> ops::Index<&Q> for VecMap<K, V>
where
    K: Borrow<Q> + Ord + Clone,
    V: Clone,
    Q: ?Sized + Ord,
{
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry found for key")
    }
}

impl<K: Clone, V: Clone> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter {
            iter: self.entries.into_iter(),
        }
    }
}

pub enum Entry<'a, K, V> {
    Vacant(VacantEntry<'a, K, V>),
    Occupied(OccupiedEntry<'a, K, V>),
}

pub struct VacantEntry<'a, K, V> {
    entries: &'a mut EcoVec<(K, V)>,
    index: usize,
    key: K,
}

impl<'a, K: Clone, V: Clone> VacantEntry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.key
    }

    pub fn insert(self, value: V) -> &'a mut V {
        self.entries.insert(self.index, (self.key, value));
        &mut self.entries.make_mut()[self.index].1
    }
}

pub struct OccupiedEntry<'a, K, V> {
    entries: &'a mut EcoVec<(K, V)>,
    index: usize,
}

impl<'a, K: Clone, V: Clone> OccupiedEntry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.entries[self.index].0
    }

    pub fn get(&self) -> &V {
        &self.entries[self.index].1
    }

    pub fn get_mut(&mut self) -> &mut V {
        &mut self.entries.make_mut()[self.index].1
    }

    pub fn into_mut(self) -> &'a mut V {
        &mut self.entries.make_mut()[self.index].1
    }

    pub fn insert(&mut self, value: V) -> V {
        core::mem::replace(&mut self.entries.make_mut()[self.index].1, value)
    }

    pub fn remove(self) -> V {
        self.entries.remove(self.index).1
    }

    pub fn remove_entry(self) -> (K, V) {
        self.entries.remove(self.index)
    }
}

macro_rules! iterator {
    ($name:ident<$($lt:lifetime,)? $k:ident, $v:ident>, $inner:ty, $item:ty, |$e:ident| $map:expr) => {
        #[derive(Debug)]
        pub struct $name<$($lt,)? $k, $v> {
            iter: $inner,
        }

        impl<$($lt,)? $k: Clone, $v: Clone> Iterator for $name<$($lt,)? $k, $v> {
            type Item = $item;

            #[inline]
            fn next(&mut self) -> Option<Self::Item> {
                self.iter.next().map(|$e| $map)
            }

            #[inline]
            fn size_hint(&self) -> (usize, Option<usize>) {
                self.iter.size_hint()
            }
        }

        impl<$($lt,)? $k: Clone, $v: Clone> DoubleEndedIterator for $name<$($lt,)? $k, $v> {
            #[inline]
            fn next_back(&mut self) -> Option<Self::Item> {
                self.iter.next_back().map(|$e| $map)
            }
        }

        impl<$($lt,)? $k: Clone, $v: Clone> ExactSizeIterator for $name<$($lt,)? $k, $v> {
            #[inline]
            fn len(&self) -> usize {
                self.iter.len()
            }
        }

        impl<$($lt,)? $k: Clone, $v: Clone> FusedIterator for $name<$($lt,)? $k, $v> {}
    };
}

iterator!(Iter<'a, K, V>, slice::Iter<'a, (K, V)>, (&'a K, &'a V), |e| (&e.0, &e.1));
iterator!(IterMut<'a, K, V>, slice::IterMut<'a, (K, V)>, (&'a K, &'a mut V), |e| (&e.0, &mut e.1));
iterator!(IntoIter<K, V>, ecow::vec::IntoIter<(K, V)>, (K, V), |e| e);
iterator!(Keys<'a, K, V>, slice::Iter<'a, (K, V)>, &'a K, |e| &e.0);
iterator!(Values<'a, K, V>, slice::Iter<'a, (K, V)>, &'a V, |e| &e.1);
iterator!(ValuesMut<'a, K, V>, slice::IterMut<'a, (K, V)>, &'a mut V, |e| &mut e.1);
iterator!(IntoValues<K, V>, ecow::vec::IntoIter<(K, V)>, V, |e| e.1);

impl<'a, K, V> Clone for Iter<'a, K, V> {
    fn clone(&self) -> Self {
        Iter {
            iter: self.iter.clone(),
        }
    }
}

impl<'a, K, V> Clone for Keys<'a, K, V> {
    fn clone(&self) -> Self {
        Keys {
            iter: self.iter.clone(),
        }
    }
}

impl<'a, K, V> Clone for Values<'a, K, V> {
    fn clone(&self) -> Self {
        Values {
            iter: self.iter.clone(),
        }
    }
}
