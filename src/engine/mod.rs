//! The spec's lock manager: the held lock set and one FIFO request queue per name.
//!
//! Spec: <https://w3c.github.io/web-locks/#lock-manager>
//!
//! Pure and deterministic: no clock, no I/O, no randomness, no panics. Every operation
//! appends the [`Effect`]s the caller must perform (call back, call back with `null`,
//! reject a stolen lock) to an output vector, in the order the spec performs them.
//!
//! ```text
//!             request()                         grantable (head of queue, mode ok)
//!   (new) ──────────────► Queued ─────────────────────────────► Held ──┐
//!     │ ifAvailable,         │ release()/abort()                  │     │ release()
//!     │ not grantable        ▼ (removed, queue reprocessed)       │     ▼
//!     └──► Unavailable     (gone)            steal by another ───┘   (gone)
//!          (callback(null), never queued)    → Stolen effect
//! ```
//!
//! Costs: every operation is O(log n) in the number of names and requests, plus O(k) for
//! the k requests it grants or evicts. `snapshot()` is proportional to its output, since
//! empty per-name state is dropped.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::map::{IdKey, IdMap, NameMap};

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod model_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests;

/// A resource name: the exact UTF-16 code units of the JS string. Compared code unit by
/// code unit, with no normalisation, so `"\u{D800}"` (a lone surrogate) and `"\u{FFFD}"`
/// are different names (R-07).
pub type ResourceName = Rc<[u16]>;

/// One context (tab, frame, worker) as the engine knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u32);

/// A request, numbered by its client; never reused by that client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// The engine-wide identity of a request: which client, which of its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    pub client: ClientId,
    pub request: RequestId,
}

/// Ordered by client first, like the derived `Ord`.
impl IdKey for RequestKey {
    fn id(self) -> u128 {
        u128::from(self.client.0) << 64 | u128::from(self.request.0)
    }
    fn from_id(id: u128) -> Self {
        RequestKey { client: ClientId((id >> 64) as u32), request: RequestId(id as u64) }
    }
}

impl IdKey for ClientId {
    fn id(self) -> u128 {
        u128::from(self.0)
    }
    fn from_id(id: u128) -> Self {
        ClientId(id as u32)
    }
}

/// Spec: <https://w3c.github.io/web-locks/#enumdef-lockmode>
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    #[default]
    Exclusive,
    Shared,
}

/// The modifiers of a request that reach the lock task queue. `signal` never does: an
/// abort reaches the engine as [`Engine::release`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestFlags {
    pub if_available: bool,
    pub steal: bool,
}

/// What the caller must do after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The request is now held: invoke its callback with a `Lock`.
    Granted(RequestKey),
    /// `ifAvailable` and not grantable: invoke the callback with `null`. Never queued.
    Unavailable(RequestKey),
    /// The held lock was stolen: reject its `request()` promise with an `AbortError`.
    Stolen(RequestKey),
    /// The request waits in its name's queue at this position. A client keeps it so that
    /// a new arbiter can rebuild every queue in its original order ([`Engine::restore_queued`]).
    Queued(RequestKey, i64),
}

/// Why the engine refused an operation. The bindings validate first, so these only
/// guard the engine against a misbehaving or foreign caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// The key is already queued or held.
    DuplicateRequest,
    /// `steal` with `ifAvailable`, or `steal` with a shared mode (R-13, R-14).
    InvalidFlags,
}

/// One entry of a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub name: ResourceName,
    pub mode: LockMode,
    pub client: ClientId,
    pub request: RequestId,
}

/// Spec: <https://w3c.github.io/web-locks/#snapshot-the-lock-state>
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Held locks, per name in grant order.
    pub held: Vec<LockInfo>,
    /// Waiting requests, per name in queue order (R-72).
    pub pending: Vec<LockInfo>,
}

#[derive(Clone, Copy, Debug)]
enum Place {
    /// Position in its name's queue (smaller is nearer the head).
    Queued(i64),
    /// Grant number, the key of its name's held map.
    Held(u64),
}

#[derive(Debug)]
struct Entry {
    name: ResourceName,
    mode: LockMode,
    place: Place,
}

#[derive(Debug, Default)]
struct NameState {
    /// The lock request queue: position → request. Steals take `head - 1`, others `tail`.
    queue: IdMap<i64, RequestKey>,
    head: i64,
    tail: i64,
    /// Held locks with this name, in grant order.
    held: IdMap<u64, (RequestKey, LockMode)>,
    exclusive_held: usize,
}

impl NameState {
    fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.held.is_empty()
    }

    /// Spec: <https://w3c.github.io/web-locks/#grantable> (mode half; the caller checks
    /// the queue half).
    fn mode_allows(&self, mode: LockMode) -> bool {
        match mode {
            LockMode::Exclusive => self.held.is_empty(),
            LockMode::Shared => self.exclusive_held == 0,
        }
    }
}

/// The lock manager of one origin (one storage bucket).
#[derive(Debug, Default)]
pub struct Engine {
    names: NameMap<NameState>,
    /// Every queued or held request; ordered by client first, so one client's requests
    /// form a contiguous range (used by [`Engine::terminate`]).
    entries: IdMap<RequestKey, Entry>,
    grants: u64,
}

impl Engine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of queued plus held requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is currently held.
    pub fn is_held(&self, key: RequestKey) -> bool {
        matches!(self.entries.get(key), Some(Entry { place: Place::Held(_), .. }))
    }

    /// The name and mode of a queued or held request.
    pub fn lookup(&self, key: RequestKey) -> Option<(&ResourceName, LockMode)> {
        self.entries.get(key).map(|e| (&e.name, e.mode))
    }

    /// The requests holding `name`, in grant order.
    pub fn holders(&self, name: &[u16]) -> impl Iterator<Item = RequestKey> + '_ {
        self.names.get(name).into_iter().flat_map(|state| state.held.iter().map(|(_, &(key, _))| key))
    }

    /// Whether `client` holds any lock.
    pub fn holds_any(&self, client: ClientId) -> bool {
        let (first, last) =
            (RequestKey { client, request: RequestId(0) }, RequestKey { client, request: RequestId(u64::MAX) });
        self.entries.range(first, last).any(|(_, e)| matches!(e.place, Place::Held(_)))
    }

    /// Whether `key` is currently waiting in a queue.
    pub fn is_queued(&self, key: RequestKey) -> bool {
        matches!(self.entries.get(key), Some(Entry { place: Place::Queued(_), .. }))
    }

    /// Spec: <https://w3c.github.io/web-locks/#request-a-lock> (the steps run on the lock
    /// task queue).
    pub fn request(
        &mut self,
        key: RequestKey,
        name: ResourceName,
        mode: LockMode,
        flags: RequestFlags,
        out: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        if flags.steal && (flags.if_available || mode != LockMode::Exclusive) {
            return Err(EngineError::InvalidFlags);
        }
        if self.entries.contains_key(key) {
            return Err(EngineError::DuplicateRequest);
        }
        let Some(state) = self.names.get_or_insert_with(&name, NameState::default) else {
            return Ok(()); // Unreachable: the map is never broken.
        };
        let position = if flags.steal {
            // Evict every holder of the name, whatever its mode or client, then go to the
            // head of the queue.
            for (_, &(victim, _)) in core::mem::take(&mut state.held).iter() {
                self.entries.remove(victim);
                out.push(Effect::Stolen(victim));
            }
            state.exclusive_held = 0;
            state.head = state.head.wrapping_sub(1);
            state.head
        } else {
            // ifAvailable: grantable only if the queue is empty (R-42) and the mode allows.
            if flags.if_available && !(state.queue.is_empty() && state.mode_allows(mode)) {
                if state.is_empty() {
                    self.names.remove(&name);
                }
                out.push(Effect::Unavailable(key));
                return Ok(());
            }
            let position = state.tail;
            state.tail = state.tail.wrapping_add(1);
            position
        };
        state.queue.insert(position, key);
        self.entries.insert(key, Entry { name: name.clone(), mode, place: Place::Queued(position) });
        self.process_the_lock_request_queue(&name, out);
        if self.is_queued(key) {
            out.push(Effect::Queued(key, position));
        }
        Ok(())
    }

    /// Re-registers a lock that a client already holds (after an arbiter restart). Grants
    /// nothing. Conflicting claims are kept as they are: they can only come from a steal
    /// whose victim never heard of it, and the spec lets a victim's callback run on.
    pub fn restore_held(&mut self, key: RequestKey, name: ResourceName, mode: LockMode) -> Result<(), EngineError> {
        if self.entries.contains_key(key) {
            return Err(EngineError::DuplicateRequest);
        }
        let Some(state) = self.names.get_or_insert_with(&name, NameState::default) else {
            return Ok(()); // Unreachable: the map is never broken.
        };
        self.grants = self.grants.wrapping_add(1);
        state.held.insert(self.grants, (key, mode));
        if mode == LockMode::Exclusive {
            state.exclusive_held += 1;
        }
        self.entries.insert(key, Entry { name, mode, place: Place::Held(self.grants) });
        Ok(())
    }

    /// Re-registers a waiting request at the queue position a previous arbiter gave it
    /// ([`Effect::Queued`]), so that FIFO order survives a restart. Grants nothing: call
    /// [`Engine::process_all`] once every client has re-registered.
    pub fn restore_queued(
        &mut self,
        key: RequestKey,
        name: ResourceName,
        mode: LockMode,
        position: i64,
    ) -> Result<(), EngineError> {
        if self.entries.contains_key(key) {
            return Err(EngineError::DuplicateRequest);
        }
        let Some(state) = self.names.get_or_insert_with(&name, NameState::default) else {
            return Ok(()); // Unreachable: the map is never broken.
        };
        if state.queue.contains_key(position) {
            return Err(EngineError::DuplicateRequest);
        }
        state.queue.insert(position, key);
        state.head = state.head.min(position);
        state.tail = state.tail.max(position.wrapping_add(1));
        self.entries.insert(key, Entry { name, mode, place: Place::Queued(position) });
        Ok(())
    }

    /// Whether nothing is queued or held on `name`.
    pub fn is_idle(&self, name: &[u16]) -> bool {
        self.names.get(name).is_none_or(|state| state.is_empty())
    }

    /// Grants whatever is grantable on `name` (after a restore of its entries).
    pub fn process_name(&mut self, name: &[u16], out: &mut Vec<Effect>) {
        self.process_the_lock_request_queue(name, out);
    }

    /// Removes everything on `name` and returns it: the holders in grant order, then the
    /// queue in order with each position (`None`: held). For a client that hands a name
    /// back to the arbiter.
    pub fn take_name(&mut self, name: &[u16]) -> Vec<(RequestKey, LockMode, Option<i64>)> {
        let Some(state) = self.names.remove(name) else { return Vec::new() };
        let mut list = Vec::new();
        for (_, &(key, mode)) in state.held.iter() {
            list.push((key, mode, None));
        }
        for (position, &key) in state.queue.iter() {
            let mode = self.entries.get(key).map_or(LockMode::Exclusive, |e| e.mode);
            list.push((key, mode, Some(position)));
        }
        for (key, _, _) in &list {
            self.entries.remove(*key);
        }
        list
    }

    /// Grants whatever is grantable, name by name (after a restore).
    pub fn process_all(&mut self, out: &mut Vec<Effect>) {
        let names: Vec<ResourceName> = self.names.iter().map(|(name, _)| name.clone()).collect();
        for name in names {
            self.process_the_lock_request_queue(&name, out);
        }
    }

    /// Releases a held lock or withdraws a queued request, then reprocesses its queue.
    /// This is both the spec's "release the lock" and "abort the request"; a client sends
    /// it when a callback's promise settles, when a signal aborts, or to drop a grant it
    /// will not use. Returns `false` (and does nothing) when `key` is neither held nor
    /// queued, e.g. after a steal.
    ///
    /// Spec: <https://w3c.github.io/web-locks/#release-the-lock>,
    /// <https://w3c.github.io/web-locks/#abort-the-request>
    pub fn release(&mut self, key: RequestKey, out: &mut Vec<Effect>) -> bool {
        let Some(entry) = self.entries.remove(key) else {
            return false;
        };
        self.detach(&entry);
        self.process_the_lock_request_queue(&entry.name, out);
        true
    }

    /// A client is gone: drop its waiting requests, then release its locks, then grant
    /// whatever that unblocks. No request of the dying client is ever granted by this.
    ///
    /// Spec: <https://w3c.github.io/web-locks/#terminate-remaining-locks-and-requests>
    pub fn terminate(&mut self, client: ClientId, out: &mut Vec<Effect>) {
        // Removing every request before reprocessing gives the same grants as the spec's
        // request-by-request order (grantability only grows as entries leave), without
        // ever granting one of the dying client's own requests.
        for name in self.remove_client(client) {
            self.process_the_lock_request_queue(&name, out);
        }
    }

    /// Removes every request and lock of `client` without granting anything; returns the
    /// names whose queues may now move, in name order. An arbiter that is still rebuilding
    /// its state uses this, and grants later with [`Engine::process_all`].
    pub fn remove_client(&mut self, client: ClientId) -> Vec<ResourceName> {
        let (first, last) =
            (RequestKey { client, request: RequestId(0) }, RequestKey { client, request: RequestId(u64::MAX) });
        let keys: Vec<RequestKey> = self.entries.range(first, last).map(|(k, _)| k).collect();
        // The names touched, in name order: a set rather than a sorted Vec (no sort code in
        // the wasm module).
        let mut touched: NameMap<()> = NameMap::default();
        for key in keys {
            if let Some(entry) = self.entries.remove(key) {
                self.detach(&entry);
                touched.insert(entry.name, ());
            }
        }
        let touched: Vec<ResourceName> = touched.iter().map(|(name, ())| name.clone()).collect();
        // Drop state left empty; names with waiters stay for the caller to process.
        for name in &touched {
            if self.names.get(name).is_some_and(NameState::is_empty) {
                self.names.remove(name);
            }
        }
        touched
    }

    /// Whether another client than `key`'s holds `key`'s name, or waits for it among the
    /// `within` requests at the tail of its queue (where a request just queued is: it
    /// waits for the one ahead of it, and that one for the next, so a search of `within`
    /// steps reaches no further). A cycle of waits across contexts through a spec request
    /// is searched only then (the arbiter's deadlock report): a burst queued on a name by
    /// the context that holds it would otherwise pay a search per request, and a scan of
    /// the whole queue per request would be O(n²) too (bench row 10).
    #[cfg(feature = "services")]
    pub fn others_on_name(&self, key: RequestKey, within: usize) -> bool {
        let Some(state) = self.entries.get(key).and_then(|e| self.names.get(&e.name)) else {
            return false;
        };
        let from = state.tail.saturating_sub(i64::try_from(within).unwrap_or(i64::MAX));
        state.held.iter().any(|(_, &(k, _))| k.client != key.client)
            || state.queue.range(from, state.tail).any(|(_, &k)| k.client != key.client)
    }

    /// What `key` waits for in the lock services' wait-for graph ([`crate::deadlock`]):
    /// waiting, the holders of its name it conflicts with and the request just ahead of it
    /// in the queue; held, the requests its client waits for (its client is its owner).
    #[cfg(feature = "services")]
    pub fn waits_for(&self, key: RequestKey, out: &mut Vec<RequestKey>) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        match entry.place {
            Place::Queued(position) => {
                let Some(state) = self.names.get(&entry.name) else {
                    return;
                };
                for (_, &(holder, mode)) in state.held.iter() {
                    if entry.mode == LockMode::Exclusive || mode == LockMode::Exclusive {
                        out.push(holder);
                    }
                }
                if position > i64::MIN {
                    if let Some((_, &ahead)) = state.queue.range(i64::MIN, position - 1).last() {
                        out.push(ahead);
                    }
                }
            }
            Place::Held(_) => {
                let client = key.client;
                let (first, last) =
                    (RequestKey { client, request: RequestId(0) }, RequestKey { client, request: RequestId(u64::MAX) });
                out.extend(
                    self.entries
                        .range(first, last)
                        .filter(|(_, e)| matches!(e.place, Place::Queued(_)))
                        .map(|(k, _)| k),
                );
            }
        }
    }

    /// Spec: <https://w3c.github.io/web-locks/#snapshot-the-lock-state>
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for (name, state) in self.names.iter() {
            for (_, &(key, mode)) in state.held.iter() {
                snap.held.push(info(name, mode, key));
            }
            for (_, &key) in state.queue.iter() {
                if let Some(entry) = self.entries.get(key) {
                    snap.pending.push(info(name, entry.mode, key));
                }
            }
        }
        snap
    }

    /// Removes `entry` from its queue or held set; drops the name's state when empty is
    /// left to [`Self::process_the_lock_request_queue`].
    fn detach(&mut self, entry: &Entry) {
        let Some(state) = self.names.get_mut(&entry.name) else {
            return;
        };
        match entry.place {
            Place::Queued(position) => {
                state.queue.remove(position);
            }
            Place::Held(grant) => {
                if let Some((_, mode)) = state.held.remove(grant) {
                    if mode == LockMode::Exclusive {
                        state.exclusive_held = state.exclusive_held.saturating_sub(1);
                    }
                }
            }
        }
    }

    /// Grants every grantable request at the head of `name`'s queue, in order, stopping
    /// at the first that is not grantable: no barging (R-24), several shared grants in
    /// one pass (R-25). Drops the name's state once nothing is queued or held.
    ///
    /// Spec: <https://w3c.github.io/web-locks/#process-the-lock-request-queue>
    fn process_the_lock_request_queue(&mut self, name: &[u16], out: &mut Vec<Effect>) {
        let Some(state) = self.names.get_mut(name) else {
            return;
        };
        while let Some((position, &key)) = state.queue.first() {
            let Some(req) = self.entries.get_mut(key) else {
                // Unreachable: queue and entries change together. Drop the stray slot.
                state.queue.remove(position);
                continue;
            };
            if !state.mode_allows(req.mode) {
                break;
            }
            state.queue.remove(position);
            self.grants = self.grants.wrapping_add(1);
            req.place = Place::Held(self.grants);
            state.held.insert(self.grants, (key, req.mode));
            if req.mode == LockMode::Exclusive {
                state.exclusive_held += 1;
            }
            out.push(Effect::Granted(key));
        }
        if state.is_empty() {
            self.names.remove(name);
        }
    }
}

#[cfg(feature = "services")]
impl crate::deadlock::WaitFor for Engine {
    type Node = RequestKey;
    fn waits_for(&self, node: RequestKey, out: &mut Vec<RequestKey>) {
        Engine::waits_for(self, node, out);
    }
}

fn info(name: &ResourceName, mode: LockMode, key: RequestKey) -> LockInfo {
    LockInfo { name: name.clone(), mode, client: key.client, request: key.request }
}
