//! The ordered maps of the engine, the arbiter and the bindings.
//!
//! Every distinct `BTreeMap<K, V>` is a separate copy of the B-tree code in the wasm
//! module (about 9 KB each), and bytes are part of the product. So the crate keeps its
//! ordered maps here, on one small search tree (a treap, [`Index`]) with two key types:
//! [`IdMap`] orders numeric keys as `u128`, [`NameMap`] orders UTF-16 names. The tree
//! maps a key to a slot; the values live in the slot of a `Vec` beside it, so that the
//! tree code is not copied for every value type either.
//!
//! Costs: O(log n) expected per lookup, insertion and removal, whatever the order of the
//! keys (the tree's shape depends on random priorities, not on that order); O(log n) per
//! step of an iteration. Memory: slots are reused, and all of it is returned when the map
//! is empty again.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use core::marker::PhantomData;

/// A key of an [`IdMap`]: converts to a `u128` with the same order.
pub trait IdKey: Copy {
    fn id(self) -> u128;
    fn from_id(id: u128) -> Self;
}

impl IdKey for u32 {
    fn id(self) -> u128 {
        u128::from(self)
    }
    fn from_id(id: u128) -> Self {
        id as u32
    }
}

impl IdKey for u64 {
    fn id(self) -> u128 {
        u128::from(self)
    }
    fn from_id(id: u128) -> Self {
        id as u64
    }
}

/// Signed keys are biased, so that their order survives the conversion.
impl IdKey for i64 {
    fn id(self) -> u128 {
        u128::from(self as u64 ^ (1 << 63))
    }
    fn from_id(id: u128) -> Self {
        (id as u64 ^ (1 << 63)) as i64
    }
}

/// A key type of the [`Index`], and what a lookup compares it with.
pub trait TreeKey {
    type Probe: ?Sized + Ord;
    fn probe(&self) -> &Self::Probe;
}

impl TreeKey for u128 {
    type Probe = u128;
    fn probe(&self) -> &u128 {
        self
    }
}

impl TreeKey for Rc<[u16]> {
    type Probe = [u16];
    fn probe(&self) -> &[u16] {
        self
    }
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    left: u32,
    right: u32,
    /// Heap order: a parent's priority is at least its children's.
    priority: u32,
}

const NO_LINK: Link = Link { left: NIL, right: NIL, priority: 0 };

/// A treap: a binary search tree on the keys that is a heap on random priorities. Nodes
/// are slots of `keys` and `links`; a free slot has no key.
pub struct Index<K> {
    keys: Vec<Option<K>>,
    links: Vec<Link>,
    free: Vec<u32>,
    root: u32,
    len: usize,
    /// xorshift32 state: deterministic, independent of the keys.
    seed: u32,
}

impl<K: TreeKey> Index<K> {
    const fn new() -> Self {
        Index { keys: Vec::new(), links: Vec::new(), free: Vec::new(), root: NIL, len: 0, seed: 0x9E37_79B9 }
    }

    fn key(&self, slot: u32) -> Option<&K::Probe> {
        Some(self.keys.get(slot as usize)?.as_ref()?.probe())
    }

    fn link(&self, slot: u32) -> Link {
        self.links.get(slot as usize).copied().unwrap_or(NO_LINK)
    }

    fn set(&mut self, slot: u32, left: u32, right: u32) {
        if let Some(l) = self.links.get_mut(slot as usize) {
            l.left = left;
            l.right = right;
        }
    }

    /// How `slot`'s key compares with `probe` (a free slot compares as smaller).
    fn cmp(&self, slot: u32, probe: &K::Probe) -> Ordering {
        self.key(slot).map_or(Ordering::Less, |k| k.cmp(probe))
    }

    /// The slot holding `probe`.
    fn find(&self, probe: &K::Probe) -> Option<u32> {
        let mut t = self.root;
        while t != NIL {
            let l = self.link(t);
            t = match self.cmp(t, probe) {
                Ordering::Less => l.right,
                Ordering::Greater => l.left,
                Ordering::Equal => return Some(t),
            };
        }
        None
    }

    /// The slot with the smallest key `>= probe` (`> probe` unless `inclusive`), or the
    /// smallest key of all without a probe.
    fn seek(&self, probe: Option<&K::Probe>, inclusive: bool) -> u32 {
        let (mut t, mut best) = (self.root, NIL);
        while t != NIL {
            let l = self.link(t);
            let after = match probe {
                None => true,
                Some(p) => match self.cmp(t, p) {
                    Ordering::Greater => true,
                    Ordering::Equal => inclusive,
                    Ordering::Less => false,
                },
            };
            if after {
                best = t;
                t = l.left;
            } else {
                t = l.right;
            }
        }
        best
    }

    /// Inserts `key`: `Ok(new slot)`, or `Err(slot)` when it is there already.
    fn insert(&mut self, key: K) -> Result<u32, u32> {
        if let Some(slot) = self.find(key.probe()) {
            return Err(slot);
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        let link = Link { priority: self.seed, ..NO_LINK };
        let slot = match self.free.pop() {
            Some(slot) => {
                if let (Some(k), Some(l)) = (self.keys.get_mut(slot as usize), self.links.get_mut(slot as usize)) {
                    *k = Some(key);
                    *l = link;
                }
                slot
            }
            None => {
                self.keys.push(Some(key));
                self.links.push(link);
                (self.keys.len() - 1) as u32
            }
        };
        self.len += 1;
        self.root = self.insert_at(self.root, slot);
        Ok(slot)
    }

    /// Inserts the node `n` into the subtree `t`; returns the subtree's new root.
    fn insert_at(&mut self, t: u32, n: u32) -> u32 {
        if t == NIL {
            return n;
        }
        let (lt, ln) = (self.link(t), self.link(n));
        if ln.priority > lt.priority {
            let (left, right) = self.split(t, n);
            self.set(n, left, right);
            return n;
        }
        if self.less(n, t) {
            let left = self.insert_at(lt.left, n);
            self.set(t, left, lt.right);
        } else {
            let right = self.insert_at(lt.right, n);
            self.set(t, lt.left, right);
        }
        t
    }

    fn less(&self, a: u32, b: u32) -> bool {
        match self.key(b) {
            Some(kb) => self.cmp(a, kb) == Ordering::Less,
            None => false,
        }
    }

    /// Splits the subtree `t` into the keys smaller than `n`'s and the others.
    fn split(&mut self, t: u32, n: u32) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let lt = self.link(t);
        if self.less(t, n) {
            let (left, right) = self.split(lt.right, n);
            self.set(t, lt.left, left);
            (t, right)
        } else {
            let (left, right) = self.split(lt.left, n);
            self.set(t, right, lt.right);
            (left, t)
        }
    }

    /// Joins two subtrees, every key of `a` smaller than every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        let (la, lb) = (self.link(a), self.link(b));
        if la.priority > lb.priority {
            let right = self.merge(la.right, b);
            self.set(a, la.left, right);
            a
        } else {
            let left = self.merge(a, lb.left);
            self.set(b, left, lb.right);
            b
        }
    }

    /// Removes `probe`; returns the slot it had, now free.
    fn remove(&mut self, probe: &K::Probe) -> Option<u32> {
        let (mut parent, mut t) = (NIL, self.root);
        let mut went_left = false;
        loop {
            if t == NIL {
                return None;
            }
            let l = self.link(t);
            match self.cmp(t, probe) {
                Ordering::Less => (parent, t, went_left) = (t, l.right, false),
                Ordering::Greater => (parent, t, went_left) = (t, l.left, true),
                Ordering::Equal => break,
            }
        }
        let l = self.link(t);
        let joined = self.merge(l.left, l.right);
        if parent == NIL {
            self.root = joined;
        } else {
            let p = self.link(parent);
            if went_left {
                self.set(parent, joined, p.right);
            } else {
                self.set(parent, p.left, joined);
            }
        }
        self.len -= 1;
        if self.len == 0 {
            // Give every byte back (and drop the key); slot numbers start over.
            *self = Index::new();
        } else if let Some(k) = self.keys.get_mut(t as usize) {
            *k = None;
            self.free.push(t);
        }
        Some(t)
    }
}

/// The slots of an index in key order, from `next` on.
struct Walk<'a, K> {
    index: &'a Index<K>,
    next: u32,
}

impl<'a, K: TreeKey> Iterator for Walk<'a, K> {
    type Item = (&'a K, u32);

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.next;
        let key = self.index.keys.get(slot as usize)?.as_ref()?;
        self.next = self.index.seek(Some(key.probe()), false);
        Some((key, slot))
    }
}

/// Puts `value` in `slot`, a slot that the index has just handed out.
fn put<V>(values: &mut Vec<Option<V>>, slot: u32, value: V) {
    match values.get_mut(slot as usize) {
        Some(v) => *v = Some(value),
        None => values.push(Some(value)),
    }
}

/// An ordered map with numeric keys ([`IdKey`]).
pub struct IdMap<K, V> {
    index: Index<u128>,
    values: Vec<Option<V>>,
    key: PhantomData<K>,
}

impl<K, V> Default for IdMap<K, V> {
    fn default() -> Self {
        IdMap { index: Index::new(), values: Vec::new(), key: PhantomData }
    }
}

impl<K: IdKey, V> IdMap<K, V> {
    pub fn len(&self) -> usize {
        self.index.len
    }

    pub fn is_empty(&self) -> bool {
        self.index.len == 0
    }

    pub fn get(&self, key: K) -> Option<&V> {
        self.values.get(self.index.find(&key.id())? as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        self.values.get_mut(self.index.find(&key.id())? as usize)?.as_mut()
    }

    pub fn contains_key(&self, key: K) -> bool {
        self.index.find(&key.id()).is_some()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.index.insert(key.id()) {
            Ok(slot) => {
                put(&mut self.values, slot, value);
                None
            }
            Err(slot) => self.values.get_mut(slot as usize)?.replace(value),
        }
    }

    pub fn remove(&mut self, key: K) -> Option<V> {
        let slot = self.index.remove(&key.id())?;
        let value = self.values.get_mut(slot as usize)?.take();
        if self.index.len == 0 {
            self.values = Vec::new();
        }
        value
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Option<(K, &V)> {
        self.iter().next()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.walk(self.index.seek(None, true), u128::MAX)
    }

    /// Entries with `from <= key <= to`, in key order.
    pub fn range(&self, from: K, to: K) -> impl Iterator<Item = (K, &V)> {
        self.walk(self.index.seek(Some(&from.id()), true), to.id())
    }

    fn walk(&self, next: u32, to: u128) -> impl Iterator<Item = (K, &V)> {
        Walk { index: &self.index, next }
            .take_while(move |(&id, _)| id <= to)
            .filter_map(|(&id, slot)| Some((K::from_id(id), self.values.get(slot as usize)?.as_ref()?)))
    }
}

impl<K: IdKey + fmt::Debug, V: fmt::Debug> fmt::Debug for IdMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// An ordered map keyed by UTF-16 names (resource names, client ids), compared code unit
/// by code unit.
pub struct NameMap<V> {
    index: Index<Rc<[u16]>>,
    values: Vec<Option<V>>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap { index: Index::new(), values: Vec::new() }
    }
}

impl<V> NameMap<V> {
    pub fn is_empty(&self) -> bool {
        self.index.len == 0
    }

    pub fn get(&self, name: &[u16]) -> Option<&V> {
        self.values.get(self.index.find(name)? as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, name: &[u16]) -> Option<&mut V> {
        self.values.get_mut(self.index.find(name)? as usize)?.as_mut()
    }

    pub fn contains_key(&self, name: &[u16]) -> bool {
        self.index.find(name).is_some()
    }

    /// The value of `name`, inserted with `make` first when missing. `None` only if the
    /// map is broken, which cannot happen.
    pub fn get_or_insert_with(&mut self, name: &Rc<[u16]>, make: impl FnOnce() -> V) -> Option<&mut V> {
        let slot = match self.index.find(name) {
            Some(slot) => slot,
            None => {
                let slot = self.index.insert(name.clone()).ok()?;
                put(&mut self.values, slot, make());
                slot
            }
        };
        self.values.get_mut(slot as usize)?.as_mut()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, name: Rc<[u16]>, value: V) -> Option<V> {
        match self.index.insert(name) {
            Ok(slot) => {
                put(&mut self.values, slot, value);
                None
            }
            Err(slot) => self.values.get_mut(slot as usize)?.replace(value),
        }
    }

    pub fn remove(&mut self, name: &[u16]) -> Option<V> {
        let slot = self.index.remove(name)?;
        let value = self.values.get_mut(slot as usize)?.take();
        if self.index.len == 0 {
            self.values = Vec::new();
        }
        value
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&Rc<[u16]>, &V)> {
        Walk { index: &self.index, next: self.index.seek(None, true) }
            .filter_map(|(name, slot)| Some((name, self.values.get(slot as usize)?.as_ref()?)))
    }
}

impl<V: fmt::Debug> fmt::Debug for NameMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// An ordered map with numeric keys, for keys handed out in increasing order (a client's
/// request and query ids): a `Vec` sorted by key, searched by bisection. A removed entry
/// stays as a hole until the holes outnumber the entries, when they are dropped in one
/// pass. Much less code than [`IdMap`] (the client-only wasm module has no other map).
///
/// Costs: O(log n) per lookup and removal (amortized: a compaction costs O(n) after n
/// removals); O(1) amortized per insertion of a key above every other key, O(n) for any
/// other key. Memory: at most twice the entries, all returned when the map is empty.
// The full module's client uses [`IdMap`], and a build without the bindings (a Rust app's)
// has no client: there only the tests use this one.
#[cfg_attr(any(feature = "arbiter", not(feature = "bindings")), allow(dead_code))]
pub struct SeqMap<K, V> {
    entries: Vec<(K, Option<V>)>,
    len: usize,
}

impl<K, V> Default for SeqMap<K, V> {
    fn default() -> Self {
        SeqMap { entries: Vec::new(), len: 0 }
    }
}

#[cfg_attr(any(feature = "arbiter", not(feature = "bindings")), allow(dead_code))]
impl<K: Copy + Ord, V> SeqMap<K, V> {
    /// Where `key` is (`Ok`, maybe a hole) or would go (`Err`).
    fn search(&self, key: K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(&key))
    }

    pub fn get(&self, key: K) -> Option<&V> {
        self.entries.get(self.search(key).ok()?)?.1.as_ref()
    }

    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        let i = self.search(key).ok()?;
        self.entries.get_mut(i)?.1.as_mut()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(key) {
            Ok(i) => {
                let old = self.entries.get_mut(i)?.1.replace(value);
                if old.is_none() {
                    self.len += 1;
                }
                old
            }
            Err(i) => {
                self.entries.insert(i, (key, Some(value)));
                self.len += 1;
                None
            }
        }
    }

    pub fn remove(&mut self, key: K) -> Option<V> {
        let i = self.search(key).ok()?;
        let value = self.entries.get_mut(i)?.1.take()?;
        self.len -= 1;
        if self.len == 0 {
            self.entries = Vec::new();
        } else if self.entries.len() > 2 * self.len {
            self.entries.retain(|(_, v)| v.is_some());
        }
        Some(value)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.entries.iter().filter_map(|(k, v)| Some((*k, v.as_ref()?)))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn signed_keys_keep_their_order() {
        let keys = [i64::MIN, -2, -1, 0, 1, i64::MAX];
        for w in keys.windows(2) {
            assert!(w[0].id() < w[1].id());
        }
        for k in keys {
            assert_eq!(i64::from_id(k.id()), k);
        }
    }

    /// The treap's invariants: search order, heap order, and the count.
    fn check<K: TreeKey>(index: &Index<K>) {
        fn walk<K: TreeKey>(index: &Index<K>, t: u32, limit: u32, keys: &mut Vec<u32>) {
            if t == NIL {
                return;
            }
            let l = index.link(t);
            assert!(l.priority <= limit, "heap order");
            walk(index, l.left, l.priority, keys);
            keys.push(t);
            walk(index, l.right, l.priority, keys);
        }
        let mut slots = Vec::new();
        walk(index, index.root, u32::MAX, &mut slots);
        assert_eq!(slots.len(), index.len);
        for w in slots.windows(2) {
            assert!(index.key(w[0]).unwrap() < index.key(w[1]).unwrap(), "search order");
        }
        assert_eq!(index.keys.iter().filter(|k| k.is_some()).count(), index.len);
        assert_eq!(index.free.len() + index.len, index.keys.len());
    }

    #[test]
    fn many_keys_in_order_and_reverse_stay_shallow() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for k in 0..20_000u64 {
            m.insert(k, k);
        }
        for k in (20_000..40_000u64).rev() {
            m.insert(k, k);
        }
        check(&m.index);
        fn depth(index: &Index<u128>, t: u32) -> usize {
            if t == NIL {
                0
            } else {
                let l = index.link(t);
                1 + depth(index, l.left).max(depth(index, l.right))
            }
        }
        assert!(depth(&m.index, m.index.root) < 80, "depth {}", depth(&m.index, m.index.root));
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), (0..40_000).collect::<Vec<_>>());
        for k in (0..40_000u64).step_by(2) {
            assert_eq!(m.remove(k), Some(k));
        }
        check(&m.index);
        assert_eq!(m.range(100, 110).map(|(k, _)| k).collect::<Vec<_>>(), [101, 103, 105, 107, 109]);
        for k in (1..40_000u64).step_by(2) {
            assert_eq!(m.remove(k), Some(k));
        }
        assert!(m.is_empty() && m.index.keys.is_empty() && m.values.is_empty(), "memory given back");
    }

    /// A client draining a long FIFO queue: holes are dropped as they pile up, and all
    /// memory is given back at the end.
    #[test]
    fn seq_map_drained_in_order_stays_small() {
        let mut m: SeqMap<u64, u64> = SeqMap::default();
        m.insert(0, 0); // held throughout
        for k in 1..100_000u64 {
            m.insert(k, k);
        }
        for k in 1..100_000u64 {
            assert_eq!(m.remove(k), Some(k));
            assert!(m.entries.len() <= 2 * m.len);
            if k % 1000 == 0 {
                assert_eq!(m.iter().nth(1).map(|(k, _)| k), Some(k + 1).filter(|&k| k < 100_000));
            }
        }
        assert_eq!(m.iter().map(|(k, v)| (k, *v)).collect::<Vec<_>>(), [(0, 0)]);
        assert_eq!(m.remove(0), Some(0));
        assert_eq!(m.remove(0), None);
        assert!(m.len == 0 && m.entries.capacity() == 0, "memory given back");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(i64, u32),
        Remove(i64),
        Range(i64, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = -16i64..16;
        prop_oneof![
            (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            key.clone().prop_map(Op::Remove),
            (key.clone(), key).prop_map(|(a, b)| Op::Range(a, b)),
        ]
    }

    proptest! {
        /// Against the standard B-tree, with slot reuse and emptying.
        #[test]
        fn id_map_behaves_like_a_btree_map(ops in proptest::collection::vec(op(), 0..300)) {
            let mut ours: IdMap<i64, u32> = IdMap::default();
            let mut std: BTreeMap<i64, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), std.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(ours.remove(k), std.remove(&k)),
                    Op::Range(a, b) => {
                        let got: Vec<_> = ours.range(a, b).map(|(k, v)| (k, *v)).collect();
                        let want: Vec<_> = if a <= b { std.range(a..=b).map(|(k, v)| (*k, *v)).collect() } else { vec![] };
                        prop_assert_eq!(got, want);
                    }
                }
                check(&ours.index);
                prop_assert_eq!(ours.len(), std.len());
                prop_assert_eq!(ours.first().map(|(k, v)| (k, *v)), std.first_key_value().map(|(k, v)| (*k, *v)));
                let all: Vec<_> = ours.iter().map(|(k, v)| (k, *v)).collect();
                prop_assert_eq!(all, std.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
                for k in [-16, -1, 0, 1, 15] {
                    prop_assert_eq!(ours.get(k), std.get(&k));
                    prop_assert_eq!(ours.contains_key(k), std.contains_key(&k));
                }
            }
        }

        /// Keys mostly in increasing order, as a client hands them out, but not only.
        #[test]
        fn seq_map_behaves_like_a_btree_map(ops in proptest::collection::vec(op(), 0..300), step in 0i64..3) {
            let mut ours: SeqMap<i64, u32> = SeqMap::default();
            let mut std: BTreeMap<i64, u32> = BTreeMap::new();
            let mut next = -40i64;
            for op in ops {
                match op {
                    Op::Insert(k, v) if k % 3 == 0 => {
                        next += step;
                        prop_assert_eq!(ours.insert(next, v), std.insert(next, v));
                    }
                    Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), std.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(ours.remove(k), std.remove(&k)),
                    Op::Range(a, _) => prop_assert_eq!(ours.remove(next - a.rem_euclid(4)), std.remove(&(next - a.rem_euclid(4)))),
                }
                prop_assert_eq!(ours.len, std.len());
                prop_assert_eq!(ours.len == 0, ours.entries.is_empty());
                prop_assert!(ours.entries.len() <= 2 * ours.len, "holes never outnumber entries");
                prop_assert!(ours.entries.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicate keys");
                let all: Vec<_> = ours.iter().map(|(k, v)| (k, *v)).collect();
                prop_assert_eq!(all, std.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
                for k in [-16, -1, 0, 1, 15, next] {
                    prop_assert_eq!(ours.get(k), std.get(&k));
                    prop_assert_eq!(ours.get_mut(k).map(|v| *v), std.get(&k).copied());
                }
            }
        }

        #[test]
        fn name_map_behaves_like_a_btree_map(ops in proptest::collection::vec(op(), 0..300)) {
            let name = |k: i64| -> Rc<[u16]> { (0..k.rem_euclid(5)).map(|i| (k + i) as u16).collect::<Vec<_>>().into() };
            let mut ours: NameMap<u32> = NameMap::default();
            let mut std: BTreeMap<Rc<[u16]>, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) if k % 2 == 0 => prop_assert_eq!(ours.insert(name(k), v), std.insert(name(k), v)),
                    Op::Insert(k, v) => {
                        let got = ours.get_or_insert_with(&name(k), || v).map(|v| *v);
                        prop_assert_eq!(got, Some(*std.entry(name(k)).or_insert(v)));
                    }
                    Op::Remove(k) => prop_assert_eq!(ours.remove(&name(k)), std.remove(&name(k))),
                    Op::Range(..) => {}
                }
                let all: Vec<_> = ours.iter().map(|(k, v)| (k.clone(), *v)).collect();
                prop_assert_eq!(all, std.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());
                check(&ours.index);
                prop_assert_eq!(ours.is_empty(), std.is_empty());
                for k in [-16, -1, 0, 1, 15] {
                    prop_assert_eq!(ours.get(&name(k)), std.get(&name(k)));
                    prop_assert_eq!(ours.contains_key(&name(k)), std.contains_key(&name(k)));
                }
            }
        }
    }
}
