//! The arbiter: owns the origin's one [`Engine`], maps connected clients onto it and turns
//! engine effects into messages for the clients they concern. Sans-IO: the host feeds
//! messages in and sends what comes out.
//!
//! In the single-context build the arbiter lives in the calling context itself (the
//! degenerate arbiter); cross-context hosts feed it the same [`ClientMsg`]s.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::engine::{ClientId, Effect, Engine, LockInfo, LockMode, RequestFlags, RequestId, RequestKey};
use crate::map::{IdMap, NameMap};
#[cfg(feature = "services")]
use crate::protocol::Extras;
use crate::protocol::{ArbiterMsg, ClientMsg, WireLockInfo};

/// How many requests the deadlock search of a spec request may visit (it then reports
/// nothing). Small: the search is on the path of every spec request that waits while its
/// context holds a lock (see `Arbiter::deadlock`).
#[cfg(feature = "services")]
const SPEC_BUDGET: usize = 64;

/// One decision of the arbiter, in the order it made them (feature `trace`, test builds
/// only). `client` is the public `clientId` of the context concerned.
#[cfg(feature = "trace")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A client registered (its restored requests follow as [`Decision::Restored`]).
    Hello { client: Rc<[u16]> },
    /// A request re-registered after an arbiter restart: held, or queued at a position.
    Restored { client: Rc<[u16]>, id: RequestId, name: Rc<[u16]>, mode: LockMode, held: bool },
    /// The lock is now held by this request; its client is told `Granted`.
    Granted { client: Rc<[u16]>, id: RequestId, name: Rc<[u16]>, mode: LockMode },
    /// `ifAvailable` and not available.
    Unavailable { client: Rc<[u16]>, id: RequestId },
    /// A held lock evicted by a steal; its client is told `Stolen`.
    Stolen { client: Rc<[u16]>, id: RequestId },
    /// A held lock released by its client's `Release`.
    Released { client: Rc<[u16]>, id: RequestId },
    /// A queued request withdrawn by its client's `Release` (abort, or an unused grant).
    Withdrawn { client: Rc<[u16]>, id: RequestId },
    /// The client is gone (death, goodbye, closed connection): its waiting requests are
    /// dropped and its locks released.
    Gone { client: Rc<[u16]> },
    /// Recovery is over: the grants that follow may use every restored queue.
    Recovered,
    /// A held lock whose lease ran out, released by the arbiter; its client is told `Expired`.
    Expired { client: Rc<[u16]>, id: RequestId },
    /// A queued request withdrawn at its timeout; its client is told `TimedOut`.
    TimedOut { client: Rc<[u16]>, id: RequestId },
    /// An `Ask` granted with the name: the client is told `Owned` and serves the name
    /// itself (its own grants are not logged here) until a [`Decision::Handback`].
    Owned { client: Rc<[u16]>, id: RequestId, name: Rc<[u16]>, mode: LockMode },
    /// The owner gave the name back; what it held and queued follows as
    /// [`Decision::Restored`].
    Handback { client: Rc<[u16]>, name: Rc<[u16]> },
}

/// What the lock services (`acquire()`) add to a request, as the arbiter keeps it.
#[cfg(feature = "services")]
#[derive(Debug, Default)]
struct Extra {
    /// The label (`holder`) that query() reports.
    holder: Option<Rc<[u16]>>,
    /// The lease's length, applied when the request is granted.
    ttl: Option<u32>,
    /// Held: when the lease runs out. Queued: when the wait times out. In the host's
    /// clock ([`Arbiter::advance`]).
    deadline: Option<u64>,
}

/// Owns one engine and the clients connected to it.
///
/// ```text
///   new() ──► Serving ◄──────────────────────────────┐
///   begin_recovery(live clients) ──► Recovering ──────┘ every listed client said Hello
///                                    (requests buffered,  or is gone
///                                     nothing granted)
/// ```
#[derive(Debug, Default)]
pub struct Arbiter {
    engine: Engine,
    /// Connected clients and their public `clientId` (UTF-16), once they said Hello.
    clients: IdMap<ClientId, Rc<[u16]>>,
    by_label: NameMap<ClientId>,
    /// Connections not yet closed. Anything arriving on a closed one is refused, so a
    /// message still in flight from a dead context can never register it again.
    open: IdMap<ClientId, ()>,
    /// `clientId`s known to be dead; a late Hello under one of them is refused.
    dead: NameMap<()>,
    next_client: u32,
    /// Recovering: the `clientId`s of live contexts that have not re-registered yet.
    /// While any is missing nothing is granted, since it may hold any lock.
    waiting: NameMap<()>,
    recovering: bool,
    /// Messages that arrived while recovering, replayed in order afterwards.
    buffered: Vec<(ClientId, ClientMsg)>,
    effects: Vec<Effect>,
    /// Messages refused (duplicate ids, impossible flags, unknown clients): counted, not fatal.
    pub rejected: u64,
    /// Labels, leases and timeouts of lock service requests (absent for spec requests).
    #[cfg(feature = "services")]
    extras: IdMap<RequestKey, Extra>,
    /// The host's clock (ms), as last given to [`Arbiter::advance`].
    #[cfg_attr(not(feature = "services"), allow(dead_code))]
    now: u64,
    /// No deadline is earlier than this (it may be earlier than every deadline left).
    #[cfg(feature = "services")]
    next_due: Option<u64>,
    /// The decision log (feature `trace`); drained by [`Arbiter::take_trace`].
    #[cfg(feature = "trace")]
    trace: Vec<Decision>,
    /// Names delegated to a client, which serves them in its own engine (the arbiter's
    /// has nothing on them): the owner, and whether it was asked to hand the name back.
    owned: NameMap<(ClientId, Recall)>,
    /// Messages that wait for an owned name to come back, and every later message of
    /// their clients (a client's messages are handled in the order it sent them).
    parked: Vec<(ClientId, ClientMsg)>,
    /// Names revoked once, never delegated again (at most [`CONTENDED`] of them): a name
    /// two contexts use would cost a revocation round trip on every turn.
    contended: NameMap<()>,
    contended_len: usize,
}

/// How many contended names the arbiter remembers (it then forgets them all).
const CONTENDED: usize = 4096;

/// Whether an owned name was asked back, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recall {
    No,
    /// For a query: the name may be delegated again.
    Query,
    /// Another context wants it: the name is contended, never delegated again.
    Contended,
}

/// What to do with a message that may concern an owned name.
enum Gate {
    Go,
    Park,
    Refuse,
}

impl Arbiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// An arbiter that replaces another: it grants nothing until [`Arbiter::begin_recovery`]
    /// has said which live clients to wait for and each of them re-registered or is gone.
    pub fn recovering() -> Self {
        Arbiter { recovering: true, ..Self::default() }
    }

    /// A new connection. It becomes a client with its first [`ClientMsg::Hello`].
    pub fn connect(&mut self) -> ClientId {
        let id = ClientId(self.next_client);
        self.next_client = self.next_client.wrapping_add(1);
        self.open.insert(id, ());
        id
    }

    /// The connection of the client with this public `clientId`, if it said Hello.
    pub fn client(&self, label: &[u16]) -> Option<ClientId> {
        self.by_label.get(label).copied()
    }

    /// This arbiter replaces one that is gone: `live` are the `clientId`s of contexts
    /// that may hold locks or wait for them. Until each has re-registered (Hello) or is
    /// known to be gone ([`Arbiter::gone`]), requests are buffered and nothing is granted.
    pub fn begin_recovery(&mut self, live: impl IntoIterator<Item = Vec<u16>>, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        for label in live {
            if !self.by_label.contains_key(&label) && !self.dead.contains_key(&label) {
                self.waiting.insert(label.into(), ());
            }
        }
        self.recovering = true;
        self.finish_recovery(out);
    }

    /// Whether grants are held back until live clients have re-registered.
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// A context is known to be dead (e.g. its IndexedDB probe fired): its requests are
    /// dropped and its locks released (R-80, R-81).
    pub fn gone(&mut self, label: &[u16], out: &mut Vec<(ClientId, ArbiterMsg)>) {
        self.dead.insert(label.into(), ());
        if let Some(client) = self.client(label) {
            self.disconnect(client, out);
        }
        if self.waiting.remove(label).is_some() {
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Gone { client: label.into() });
            self.finish_recovery(out);
        }
    }

    /// The connection is closed: the client's requests are dropped, its locks released.
    pub fn disconnect(&mut self, client: ClientId, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        self.open.remove(client);
        self.buffered.retain(|(c, _)| *c != client);
        self.parked.retain(|(c, _)| *c != client);
        // What it owned dies with it: its own engine had everything on those names.
        let names: Vec<Rc<[u16]>> = self.owned.iter().filter(|(_, o)| o.0 == client).map(|(n, _)| n.clone()).collect();
        for name in &names {
            self.owned.remove(name);
        }
        if let Some(label) = self.clients.remove(client) {
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Gone { client: label.clone() });
            self.by_label.remove(&label);
            #[cfg(feature = "services")]
            self.forget_client(client);
            if self.recovering {
                // A client that has not re-registered yet may hold what this would grant:
                // only remove; `finish_recovery` grants once everybody is in.
                self.engine.remove_client(client);
            } else {
                self.engine.terminate(client, &mut self.effects);
                self.flush(out);
            }
        }
        if !names.is_empty() {
            self.replay(out);
        }
    }

    /// Handles the parked messages again, in order (a name they waited for came back).
    fn replay(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        for (client, msg) in core::mem::take(&mut self.parked) {
            self.handle(client, msg, out);
        }
    }

    /// Whether `msg` from `client` can be handled now: not while an earlier message of
    /// the same client waits, nor while a name it concerns is owned by another client (who
    /// is asked to hand it back); a query needs every owned name back.
    fn gate(&mut self, client: ClientId, msg: &ClientMsg, out: &mut Vec<(ClientId, ArbiterMsg)>) -> Gate {
        if self.parked.iter().any(|(c, _)| *c == client) {
            return Gate::Park;
        }
        let name = match msg {
            ClientMsg::Request { name, .. } | ClientMsg::Ask { name, .. } => name,
            #[cfg(feature = "services")]
            ClientMsg::Acquire { name, .. } => name,
            #[cfg(feature = "services")]
            ClientMsg::QueryLabeled { .. } => return self.revoke_all(out),
            ClientMsg::Query { .. } => return self.revoke_all(out),
            _ => return Gate::Go,
        };
        match self.owned.get_mut(name) {
            None => Gate::Go,
            // An owner sends nothing on its name until it gave it back.
            Some((owner, _)) if *owner == client => Gate::Refuse,
            Some((owner, recall)) => {
                if *recall == Recall::No {
                    out.push((*owner, ArbiterMsg::Revoke { name: name.clone() }));
                }
                *recall = Recall::Contended;
                Gate::Park
            }
        }
    }

    fn revoke_all(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) -> Gate {
        if self.owned.is_empty() {
            return Gate::Go;
        }
        let names: Vec<Rc<[u16]>> =
            self.owned.iter().filter(|(_, o)| o.1 == Recall::No).map(|(n, _)| n.clone()).collect();
        for name in names {
            if let Some((owner, recall)) = self.owned.get_mut(&name) {
                *recall = Recall::Query;
                out.push((*owner, ArbiterMsg::Revoke { name: name.to_vec() }));
            }
        }
        Gate::Park
    }

    /// An `Ask`: the name goes to its client where nothing is queued or held on it and it
    /// was never contended; `false`: handle it as a `Request`.
    fn delegate(
        &mut self,
        client: ClientId,
        id: RequestId,
        name: &[u16],
        mode: LockMode,
        flags: RequestFlags,
        out: &mut Vec<(ClientId, ArbiterMsg)>,
    ) -> bool {
        let key = RequestKey { client, request: id };
        if (flags.steal && (flags.if_available || mode != LockMode::Exclusive))
            || !self.engine.is_idle(name)
            || self.contended.contains_key(name)
            || self.engine.lookup(key).is_some()
        {
            return false;
        }
        let name: Rc<[u16]> = name.into();
        #[cfg(feature = "trace")]
        self.trace.push(Decision::Owned { client: self.label(client), id, name: name.clone(), mode });
        self.owned.insert(name, (client, Recall::No));
        out.push((client, ArbiterMsg::Owned { id }));
        true
    }

    /// The owner gave the name back: its engine's entries become this engine's, exactly
    /// (holders in grant order, the queue at its positions); then what waited for the
    /// name is handled.
    fn handback(
        &mut self,
        client: ClientId,
        name: Vec<u16>,
        entries: Vec<crate::protocol::Restored>,
        out: &mut Vec<(ClientId, ArbiterMsg)>,
    ) {
        let revoked = match self.owned.get(&name) {
            Some(&(owner, recall)) if owner == client => recall == Recall::Contended,
            _ => {
                self.rejected += 1;
                return;
            }
        };
        self.owned.remove(&name);
        let name: Rc<[u16]> = name.into();
        #[cfg(feature = "trace")]
        self.trace.push(Decision::Handback { client: self.label(client), name: name.clone() });
        for r in entries {
            let key = RequestKey { client, request: r.id };
            let result = match r.position {
                None => self.engine.restore_held(key, name.clone(), r.mode),
                Some(p) => self.engine.restore_queued(key, name.clone(), r.mode, p),
            };
            if result.is_err() {
                self.rejected += 1;
                continue;
            }
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Restored {
                client: self.label(client),
                id: r.id,
                name: name.clone(),
                mode: r.mode,
                held: r.position.is_none(),
            });
        }
        if revoked {
            if self.contended_len >= CONTENDED {
                self.contended = NameMap::default();
                self.contended_len = 0;
            }
            if self.contended.insert(name.clone(), ()).is_none() {
                self.contended_len += 1;
            }
        }
        self.engine.process_name(&name, &mut self.effects);
        self.flush(out);
        self.replay(out);
    }

    /// Whether some name is delegated, or a message waits for one to come back.
    pub fn owns_any(&self) -> bool {
        !self.owned.is_empty() || !self.parked.is_empty()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The decisions made since the last call, in order (feature `trace`).
    #[cfg(feature = "trace")]
    pub fn take_trace(&mut self) -> Vec<Decision> {
        core::mem::take(&mut self.trace)
    }

    #[cfg(feature = "trace")]
    fn label(&self, client: ClientId) -> Rc<[u16]> {
        self.clients.get(client).cloned().unwrap_or_else(|| Rc::from(&[][..]))
    }

    /// The host's clock moved on to `now` (ms, any origin, never backwards): leases and
    /// waits that ran out end, their holders and waiters are told (`Expired`,
    /// `TimedOut`), and what that unblocks is granted. While recovering, they end once
    /// recovery is over (a lease only ever ends later than due, never earlier).
    pub fn advance(&mut self, now: u64, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        self.now = self.now.max(now);
        #[cfg(feature = "services")]
        if !self.recovering {
            self.expire(out);
            self.flush(out);
        }
        #[cfg(not(feature = "services"))]
        let _ = out;
    }

    /// When [`Arbiter::advance`] should be called next, if a lease or a wait may run out
    /// (it may be early: then nothing happens).
    pub fn poll_timeout(&self) -> Option<u64> {
        #[cfg(feature = "services")]
        return self.next_due;
        #[cfg(not(feature = "services"))]
        None
    }

    /// Keeps a lock service request's extras; `wait` (ms) starts its deadline now.
    #[cfg(feature = "services")]
    fn keep(&mut self, key: RequestKey, extras: Extras, wait: Option<u32>) {
        let deadline = wait.map(|ms| self.now.saturating_add(u64::from(ms)));
        self.extras.insert(key, Extra { holder: extras.label.map(Rc::from), ttl: extras.ttl, deadline });
        if let Some(d) = deadline {
            self.due(d);
        }
    }

    #[cfg(feature = "services")]
    fn due(&mut self, deadline: u64) {
        self.next_due = Some(self.next_due.map_or(deadline, |d| d.min(deadline)));
    }

    /// Ends every lease and wait whose deadline has passed (a lease is the only timer that
    /// ever releases a lock a live context holds, and only where the app asked for one).
    #[cfg(feature = "services")]
    fn expire(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        if !matches!(self.next_due, Some(d) if d <= self.now) {
            return;
        }
        self.next_due = None;
        let mut ended = Vec::new();
        let mut next: Option<u64> = None;
        for (key, x) in self.extras.iter() {
            match x.deadline {
                Some(d) if d <= self.now => ended.push(key),
                Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        self.next_due = next;
        // Waits first: a lease's release below must not grant a request whose wait is
        // over (it would be granted after its timeout).
        let (waits, leases): (Vec<RequestKey>, Vec<RequestKey>) =
            ended.into_iter().partition(|&k| self.engine.is_queued(k));
        let n_waits = waits.len();
        for (i, key) in waits.into_iter().chain(leases).enumerate() {
            self.extras.remove(key);
            let held = if i < n_waits {
                // A wait that ran out may have been granted a moment ago, by the end of
                // another wait in this same pass: that grant has not gone out yet, and
                // the request is withdrawn all the same (never granted after its time).
                self.effects.retain(|e| !matches!(e, Effect::Granted(k) | Effect::Queued(k, _) if *k == key));
                false
            } else {
                true
            };
            if !self.engine.release(key, &mut self.effects) {
                continue;
            }
            let id = key.request;
            #[cfg(feature = "trace")]
            {
                let client = self.label(key.client);
                self.trace.push(if held {
                    Decision::Expired { client, id }
                } else {
                    Decision::TimedOut { client, id }
                });
            }
            out.push((key.client, if held { ArbiterMsg::Expired { id } } else { ArbiterMsg::TimedOut { id } }));
        }
    }

    /// A lock service request that just started to wait: if that closed a cycle of
    /// requests waiting for each other across contexts (a deadlock), it is withdrawn and
    /// its client told, with the cycle, so that the others proceed. Cycles within one
    /// context are left alone: its own requests may wait for each other on purpose.
    ///
    /// A spec request (`withdraw` false) is left waiting, as the spec says: its client is
    /// only told (`DeadlockReport`), for its diagnostic channel. That search is on the path
    /// of every spec request that waits while its context holds a lock, so it gets a small
    /// budget: a burst of n requests queued on one name by its holder's context would
    /// otherwise cost O(n²) (1,000 such requests took 5.7 s instead of 0.1 s, bench 2a).
    #[cfg(feature = "services")]
    fn deadlock(&mut self, key: RequestKey, withdraw: bool, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        /// How many requests one search may visit (it then reports nothing): a lock service
        /// request, which is withdrawn on a deadlock, and a spec request, only reported.
        const BUDGET: usize = 10_000;
        let budget = if withdraw { BUDGET } else { SPEC_BUDGET };
        let Some(cycle) = crate::deadlock::cycle_through(&self.engine, key, budget) else {
            return;
        };
        if cycle.iter().all(|k| k.client == key.client) {
            return;
        }
        let cycle = cycle
            .iter()
            .filter_map(|&k| {
                let (name, mode) = self.engine.lookup(k)?;
                Some(WireLockInfo {
                    name: name.to_vec(),
                    mode,
                    client: self.clients.get(k.client).map(|c| c.to_vec()).unwrap_or_default(),
                    label: self.extras.get(k).and_then(|x| x.holder.as_ref()).map(|h| h.to_vec()),
                    expires_in: None,
                })
            })
            .collect();
        if !withdraw {
            out.push((key.client, ArbiterMsg::DeadlockReport { id: key.request, cycle }));
            return;
        }
        self.extras.remove(key);
        self.effects.retain(|e| !matches!(e, Effect::Queued(k, _) if *k == key));
        self.engine.release(key, &mut self.effects);
        #[cfg(feature = "trace")]
        self.trace.push(Decision::Withdrawn { client: self.label(key.client), id: key.request });
        out.push((key.client, ArbiterMsg::Deadlock { id: key.request, cycle }));
    }

    /// Drops the extras of a client that is gone.
    #[cfg(feature = "services")]
    fn forget_client(&mut self, client: ClientId) {
        let (first, last) =
            (RequestKey { client, request: RequestId(0) }, RequestKey { client, request: RequestId(u64::MAX) });
        let keys: Vec<RequestKey> = self.extras.range(first, last).map(|(k, _)| k).collect();
        for key in keys {
            self.extras.remove(key);
        }
    }

    /// Handles one message from `client`; replies (to it and to others) go to `out`.
    pub fn handle(&mut self, client: ClientId, msg: ClientMsg, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        if !self.open.contains_key(client) {
            self.rejected += 1;
            return;
        }
        match msg {
            ClientMsg::Hello { client: label, restore } => self.hello(client, label, restore, out),
            ClientMsg::Goodbye => self.disconnect(client, out),
            _ if self.recovering => self.buffered.push((client, msg)),
            _ if !self.clients.contains_key(client) => self.rejected += 1,
            ClientMsg::Handback { name, entries } => self.handback(client, name, entries, out),
            msg => match self.gate(client, &msg, out) {
                Gate::Park => self.parked.push((client, msg)),
                Gate::Refuse => self.rejected += 1,
                Gate::Go => self.serve(client, msg, out),
            },
        }
        self.flush(out);
    }

    /// Handles a message that concerns no owned name.
    fn serve(&mut self, client: ClientId, msg: ClientMsg, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        match msg {
            ClientMsg::Ask { id, name, mode, flags } => {
                if !self.delegate(client, id, &name, mode, flags, out) {
                    self.serve(client, ClientMsg::Request { id, name, mode, flags }, out);
                }
            }
            ClientMsg::Hello { .. } | ClientMsg::Goodbye | ClientMsg::Handback { .. } => {}
            ClientMsg::Request { id, name, mode, flags } => {
                let key = RequestKey { client, request: id };
                if self.engine.request(key, name.into(), mode, flags, &mut self.effects).is_err() {
                    self.rejected += 1;
                } else {
                    // Only a context that holds a lock can be on a cycle (its held lock is
                    // what the others wait for), and it is searched for where another
                    // context holds or waits for this name (a cycle that leaves through
                    // another name is then found by that context's request on this one).
                    #[cfg(feature = "services")]
                    if self.engine.is_queued(key)
                        && self.engine.holds_any(client)
                        && self.engine.others_on_name(key, SPEC_BUDGET)
                    {
                        self.deadlock(key, false, out);
                    }
                }
            }
            #[cfg(feature = "services")]
            ClientMsg::Acquire { id, name, mode, flags, extras } => {
                let key = RequestKey { client, request: id };
                let name: Rc<[u16]> = name.into();
                if self.engine.request(key, name.clone(), mode, flags, &mut self.effects).is_err() {
                    self.rejected += 1;
                } else if let Some(i) =
                    self.effects.iter().position(|e| matches!(e, Effect::Unavailable(k) if *k == key))
                {
                    // Not available: answered with the label of a holder (`LockHeldError`).
                    self.effects.remove(i);
                    #[cfg(feature = "trace")]
                    self.trace.push(Decision::Unavailable { client: self.label(client), id });
                    let holder = self
                        .engine
                        .holders(&name)
                        .find_map(|k| self.extras.get(k).and_then(|x| x.holder.as_ref()))
                        .map(|h| h.to_vec());
                    out.push((client, ArbiterMsg::Busy { id, holder }));
                } else if self.engine.is_queued(key) || self.engine.is_held(key) {
                    // The lease starts with the grant (in `flush`), the wait now.
                    let queued = self.engine.is_queued(key);
                    let wait = if queued { extras.timeout } else { None };
                    self.keep(key, extras, wait);
                    if queued {
                        self.deadlock(key, true, out);
                    }
                }
            }
            #[cfg(feature = "services")]
            ClientMsg::Renew { id, ttl } => {
                let key = RequestKey { client, request: id };
                let held = self.engine.is_held(key);
                if held && ttl > 0 {
                    let deadline = self.now.saturating_add(u64::from(ttl));
                    let x = self.extras.get_mut(key);
                    match x {
                        Some(x) => {
                            x.ttl = Some(ttl);
                            x.deadline = Some(deadline);
                        }
                        None => {
                            self.extras.insert(key, Extra { holder: None, ttl: Some(ttl), deadline: Some(deadline) });
                        }
                    }
                    self.due(deadline);
                }
                out.push((client, ArbiterMsg::Renewed { id, held }));
            }

            ClientMsg::Release { id } => {
                let key = RequestKey { client, request: id };
                #[cfg(feature = "trace")]
                let held = self.engine.is_held(key);
                #[cfg_attr(not(feature = "trace"), allow(unused_variables))]
                let known = self.engine.release(key, &mut self.effects);
                #[cfg(feature = "services")]
                self.extras.remove(key);
                #[cfg(feature = "trace")]
                if known {
                    let client = self.label(client);
                    self.trace.push(if held {
                        Decision::Released { client, id }
                    } else {
                        Decision::Withdrawn { client, id }
                    });
                }
            }
            #[cfg(feature = "services")]
            ClientMsg::QueryLabeled { id } => self.query(client, id, true, out),
            ClientMsg::Query { id } => self.query(client, id, false, out),
        }
    }

    /// A snapshot for `client`, with labels and lease times if it asked for them.
    fn query(&mut self, client: ClientId, id: u32, labeled: bool, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        {
            {
                let snap = self.engine.snapshot();
                // Runs of entries mostly share a client: look each run's label up once.
                let mut last: Option<(ClientId, Vec<u16>)> = None;
                let mut wire = |i: &LockInfo, held_now: bool| {
                    let client = match &last {
                        Some((id, label)) if *id == i.client => label.clone(),
                        _ => {
                            let label = self.clients.get(i.client).map(|c| c.to_vec()).unwrap_or_default();
                            last = Some((i.client, label.clone()));
                            label
                        }
                    };
                    #[cfg(feature = "services")]
                    let (label, expires_in) = {
                        let x =
                            self.extras.get(RequestKey { client: i.client, request: i.request }).filter(|_| labeled);
                        let label = x.and_then(|x| x.holder.as_ref()).map(|h| h.to_vec());
                        let expires_in = match (x.and_then(|x| x.deadline), held_now) {
                            (Some(d), true) => Some(d.saturating_sub(self.now).min(u64::from(u32::MAX)) as u32),
                            _ => None,
                        };
                        (label, expires_in)
                    };
                    #[cfg(not(feature = "services"))]
                    let (label, expires_in) = {
                        let _ = (held_now, labeled);
                        (None, None)
                    };
                    WireLockInfo { name: i.name.to_vec(), mode: i.mode, client, label, expires_in }
                };
                let held = snap.held.iter().map(|i| wire(i, true)).collect();
                let pending = snap.pending.iter().map(|i| wire(i, false)).collect();
                out.push((client, ArbiterMsg::Snapshot { id, held, pending }));
            }
        }
    }

    fn hello(
        &mut self,
        client: ClientId,
        label: Vec<u16>,
        restore: Vec<crate::protocol::Restored>,
        out: &mut Vec<(ClientId, ArbiterMsg)>,
    ) {
        if self.clients.contains_key(client) || self.by_label.contains_key(&label) || self.dead.contains_key(&label) {
            self.rejected += 1;
            return;
        }
        let label: Rc<[u16]> = label.into();
        self.clients.insert(client, label.clone());
        self.by_label.insert(label.clone(), client);
        #[cfg(feature = "trace")]
        self.trace.push(Decision::Hello { client: label.clone() });
        for r in restore {
            let key = RequestKey { client, request: r.id };
            let name: Rc<[u16]> = r.name.into();
            #[cfg(feature = "trace")]
            let traced = (name.clone(), r.mode, r.position.is_none());
            let result = match r.position {
                None => self.engine.restore_held(key, name, r.mode),
                Some(p) => self.engine.restore_queued(key, name, r.mode, p),
            };
            if result.is_err() {
                self.rejected += 1;
                continue;
            }
            #[cfg(feature = "services")]
            if !r.extras.is_empty() {
                // The client sends what is left of its lease (held) or of its wait (queued).
                let left = if r.position.is_none() { r.extras.ttl } else { r.extras.timeout };
                self.keep(key, r.extras, left);
            }
            #[cfg(feature = "trace")]
            {
                let (name, mode, held) = traced;
                self.trace.push(Decision::Restored { client: label.clone(), id: r.id, name, mode, held });
            }
        }
        if self.waiting.remove(&label).is_some() || !self.recovering {
            self.finish_recovery(out);
        }
    }

    /// Once nobody is missing: grant what the restored queues allow, then replay what
    /// arrived meanwhile, in order.
    fn finish_recovery(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        if !self.waiting.is_empty() {
            return;
        }
        if self.recovering {
            self.recovering = false;
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Recovered);
            // Leases and waits that ran out while recovering end now, before any grant.
            #[cfg(feature = "services")]
            self.expire(out);
            self.engine.process_all(&mut self.effects);
            self.flush(out);
        }
        for (client, msg) in core::mem::take(&mut self.buffered) {
            self.handle(client, msg, out);
        }
    }

    fn flush(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        #[cfg(feature = "services")]
        for i in 0..self.effects.len() {
            match self.effects.get(i).copied() {
                // A lease runs from the grant; a wait's timeout no longer applies.
                Some(Effect::Granted(k)) => {
                    let now = self.now;
                    let deadline = self.extras.get_mut(k).and_then(|x| {
                        x.deadline = x.ttl.map(|t| now.saturating_add(u64::from(t)));
                        x.deadline
                    });
                    if let Some(d) = deadline {
                        self.due(d);
                    }
                }
                Some(Effect::Stolen(k) | Effect::Unavailable(k)) => {
                    self.extras.remove(k);
                }
                _ => {}
            }
        }
        #[cfg(feature = "trace")]
        for e in &self.effects {
            let decision = match *e {
                Effect::Granted(k) => {
                    let Some((name, mode)) = self.engine.lookup(k) else { continue };
                    Decision::Granted { client: self.label(k.client), id: k.request, name: name.clone(), mode }
                }
                Effect::Unavailable(k) => Decision::Unavailable { client: self.label(k.client), id: k.request },
                Effect::Stolen(k) => Decision::Stolen { client: self.label(k.client), id: k.request },
                Effect::Queued(..) => continue,
            };
            self.trace.push(decision);
        }
        out.extend(self.effects.drain(..).map(ArbiterMsg::answering));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::engine::{LockMode, RequestFlags, RequestId};
    use crate::protocol::Restored;

    fn req(id: u64, name: &str, mode: LockMode) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: name.encode_utf16().collect(),
            mode,
            flags: RequestFlags::default(),
        }
    }

    fn hello(a: &mut Arbiter, label: &str, restore: Vec<Restored>, out: &mut Vec<(ClientId, ArbiterMsg)>) -> ClientId {
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: label.encode_utf16().collect(), restore }, out);
        c
    }

    fn granted(out: &[(ClientId, ArbiterMsg)]) -> Vec<(ClientId, u64)> {
        out.iter()
            .filter_map(|(c, m)| match m {
                ArbiterMsg::Granted { id } => Some((*c, id.0)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn routes_effects_to_their_clients_and_reports_client_ids() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        let c1 = hello(&mut a, "1", vec![], &mut out);
        let c2 = hello(&mut a, "2", vec![], &mut out);
        a.handle(c1, req(1, "x", LockMode::Exclusive), &mut out);
        a.handle(c2, req(1, "x", LockMode::Exclusive), &mut out);
        assert_eq!(
            out,
            vec![
                (c1, ArbiterMsg::Granted { id: RequestId(1) }),
                (c2, ArbiterMsg::Queued { id: RequestId(1), position: 1 })
            ]
        );
        out.clear();
        a.handle(c2, ClientMsg::Query { id: 5 }, &mut out);
        let ArbiterMsg::Snapshot { id: 5, held, pending } = &out[0].1 else { panic!("{out:?}") };
        assert_eq!(held[0].client, vec![0x31]);
        assert_eq!(pending[0].client, vec![0x32]);
        out.clear();
        a.disconnect(c1, &mut out);
        assert_eq!(granted(&out), [(c2, 1)]);
        out.clear();
        a.handle(c2, ClientMsg::Goodbye, &mut out);
        assert!(a.engine().is_empty() && out.is_empty());
    }

    #[test]
    fn unknown_clients_and_duplicates_are_counted_not_fatal() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.handle(ClientId(42), ClientMsg::Query { id: 1 }, &mut out);
        let c = hello(&mut a, "", vec![], &mut out);
        a.handle(c, ClientMsg::Hello { client: vec![], restore: vec![] }, &mut out);
        a.handle(c, req(1, "x", LockMode::Exclusive), &mut out);
        a.handle(c, req(1, "y", LockMode::Exclusive), &mut out);
        let steal_shared = ClientMsg::Request {
            id: RequestId(2),
            name: vec![],
            mode: LockMode::Shared,
            flags: RequestFlags { steal: true, if_available: false },
        };
        a.handle(c, steal_shared, &mut out);
        assert_eq!(a.rejected, 4);
        assert_eq!(out, vec![(c, ArbiterMsg::Granted { id: RequestId(1) })]);
    }

    #[test]
    fn recovery_grants_nothing_until_every_live_client_re_registered() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.begin_recovery(["holder", "waiter", "dead"].map(|s| s.encode_utf16().collect()), &mut out);
        // A newcomer's request waits: "holder" may hold "x".
        let newcomer = hello(&mut a, "new", vec![], &mut out);
        a.handle(newcomer, req(1, "x", LockMode::Exclusive), &mut out);
        a.handle(newcomer, ClientMsg::Query { id: 1 }, &mut out);
        assert!(out.is_empty() && a.is_recovering());
        let waiter = hello(
            &mut a,
            "waiter",
            vec![Restored {
                id: RequestId(7),
                name: "x".encode_utf16().collect(),
                mode: LockMode::Exclusive,
                position: Some(1),
                extras: Default::default(),
            }],
            &mut out,
        );
        let holder = hello(
            &mut a,
            "holder",
            vec![Restored {
                id: RequestId(3),
                name: "x".encode_utf16().collect(),
                mode: LockMode::Exclusive,
                position: None,
                extras: Default::default(),
            }],
            &mut out,
        );
        assert!(out.is_empty(), "still waiting for 'dead': {out:?}");
        a.gone(&"dead".encode_utf16().collect::<Vec<_>>(), &mut out);
        assert!(!a.is_recovering());
        // The holder still holds; the newcomer queued behind the restored waiter.
        assert!(granted(&out).is_empty(), "{out:?}");
        out.clear();
        a.handle(holder, ClientMsg::Release { id: RequestId(3) }, &mut out);
        assert_eq!(granted(&out), [(waiter, 7)]);
        out.clear();
        a.handle(waiter, ClientMsg::Release { id: RequestId(7) }, &mut out);
        assert_eq!(granted(&out), [(newcomer, 1)]);
    }

    #[test]
    fn a_client_that_dies_while_awaited_is_not_awaited() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.begin_recovery([vec![0x61]], &mut out);
        let c = hello(&mut a, "b", vec![], &mut out);
        a.handle(c, req(1, "x", LockMode::Exclusive), &mut out);
        assert!(out.is_empty());
        a.gone(&[0x61], &mut out);
        assert_eq!(granted(&out), [(c, 1)]);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod recovery_edge_tests {
    use super::*;

    #[test]
    fn recovery_with_nobody_to_wait_for_ends_at_once() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.begin_recovery([], &mut out);
        assert!(!a.is_recovering());
    }
}

#[cfg(all(test, feature = "trace", not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod trace_tests {
    use super::*;
    use crate::engine::{LockMode, RequestFlags, RequestId};
    use crate::protocol::Restored;

    fn u(s: &str) -> Rc<[u16]> {
        s.encode_utf16().collect::<Vec<_>>().into()
    }

    fn req(id: u64, name: &str, steal: bool) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: name.encode_utf16().collect(),
            mode: LockMode::Exclusive,
            flags: RequestFlags { steal, if_available: false },
        }
    }

    fn hello(a: &mut Arbiter, label: &str, restore: Vec<Restored>, out: &mut Vec<(ClientId, ArbiterMsg)>) -> ClientId {
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: label.encode_utf16().collect(), restore }, out);
        c
    }

    #[test]
    fn the_log_has_every_decision_in_the_order_made() {
        use Decision as D;
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, req(1, "x", false), &mut out);
        a.handle(cb, req(1, "x", false), &mut out);
        a.handle(cb, req(2, "x", true), &mut out);
        a.handle(cb, ClientMsg::Release { id: RequestId(1) }, &mut out);
        a.handle(cb, ClientMsg::Release { id: RequestId(2) }, &mut out);
        a.handle(cb, ClientMsg::Release { id: RequestId(2) }, &mut out); // nothing: not logged
        a.handle(ca, req(3, "y", false), &mut out);
        a.handle(cb, req(4, "y", false), &mut out);
        a.gone(&[0x61], &mut out);
        let x = || u("x");
        let y = || u("y");
        let ex = LockMode::Exclusive;
        assert_eq!(
            a.take_trace(),
            vec![
                D::Hello { client: u("a") },
                D::Hello { client: u("b") },
                D::Granted { client: u("a"), id: RequestId(1), name: x(), mode: ex },
                // b's steal evicts a's lock and takes it; b's queued request 1 stays queued.
                D::Stolen { client: u("a"), id: RequestId(1) },
                D::Granted { client: u("b"), id: RequestId(2), name: x(), mode: ex },
                D::Withdrawn { client: u("b"), id: RequestId(1) },
                D::Released { client: u("b"), id: RequestId(2) },
                D::Granted { client: u("a"), id: RequestId(3), name: y(), mode: ex },
                D::Gone { client: u("a") },
                D::Granted { client: u("b"), id: RequestId(4), name: y(), mode: ex },
            ]
        );
        assert!(a.take_trace().is_empty());
    }

    #[test]
    fn recovery_logs_restores_and_the_deaths_it_waited_for() {
        use Decision as D;
        let mut a = Arbiter::recovering();
        let mut out = Vec::new();
        a.begin_recovery([u("h").to_vec(), u("dead").to_vec()], &mut out);
        let restore = vec![Restored {
            id: RequestId(7),
            name: u("x").to_vec(),
            mode: LockMode::Shared,
            position: None,
            extras: Default::default(),
        }];
        hello(&mut a, "h", restore, &mut out);
        a.gone(&u("dead"), &mut out);
        assert_eq!(
            a.take_trace(),
            vec![
                D::Hello { client: u("h") },
                D::Restored { client: u("h"), id: RequestId(7), name: u("x"), mode: LockMode::Shared, held: true },
                D::Gone { client: u("dead") },
                D::Recovered,
            ]
        );
    }
}

/// Leases, timeouts and labels of lock service requests (issue #9), on a virtual clock.
#[cfg(all(test, feature = "services", not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod service_tests {
    use super::*;
    use crate::engine::{LockMode, RequestFlags};
    use crate::protocol::{Extras, Restored};

    type Out = Vec<(ClientId, ArbiterMsg)>;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn hello(a: &mut Arbiter, label: &str, restore: Vec<Restored>, out: &mut Out) -> ClientId {
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: u(label), restore }, out);
        c
    }

    fn acquire(id: u64, name: &str, label: Option<&str>, ttl: Option<u32>, timeout: Option<u32>) -> ClientMsg {
        ClientMsg::Acquire {
            id: RequestId(id),
            name: u(name),
            mode: LockMode::Exclusive,
            flags: RequestFlags::default(),
            extras: Extras { label: label.map(u), ttl, timeout },
        }
    }

    fn plain(id: u64, name: &str) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: u(name),
            mode: LockMode::Exclusive,
            flags: RequestFlags::default(),
        }
    }

    fn snapshot(a: &mut Arbiter, c: ClientId) -> (Vec<WireLockInfo>, Vec<WireLockInfo>) {
        let mut out = Vec::new();
        a.handle(c, ClientMsg::QueryLabeled { id: 1 }, &mut out);
        match out.pop() {
            Some((_, ArbiterMsg::Snapshot { held, pending, .. })) => (held, pending),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lease_runs_out_and_the_next_waiter_is_granted() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.advance(1000, &mut out);
        a.handle(ca, acquire(1, "x", None, Some(100), None), &mut out);
        a.handle(cb, plain(1, "x"), &mut out);
        out.clear();
        assert_eq!(a.poll_timeout(), Some(1100));
        a.advance(1099, &mut out);
        assert!(out.is_empty(), "{out:?}");
        a.advance(1100, &mut out);
        assert_eq!(
            out,
            [(ca, ArbiterMsg::Expired { id: RequestId(1) }), (cb, ArbiterMsg::Granted { id: RequestId(1) })]
        );
        assert_eq!(a.poll_timeout(), None);
        // The expired holder's late release changes nothing.
        out.clear();
        a.handle(ca, ClientMsg::Release { id: RequestId(1) }, &mut out);
        assert!(out.is_empty() && a.engine().is_held(RequestKey { client: cb, request: RequestId(1) }));
    }

    #[test]
    fn renew_extends_the_lease_or_starts_one_and_says_whether_held() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        a.handle(ca, acquire(1, "x", None, Some(100), None), &mut out);
        a.handle(ca, plain(2, "y"), &mut out);
        out.clear();
        a.advance(50, &mut out);
        a.handle(ca, ClientMsg::Renew { id: RequestId(1), ttl: 100 }, &mut out);
        assert_eq!(out, [(ca, ArbiterMsg::Renewed { id: RequestId(1), held: true })]);
        out.clear();
        a.advance(149, &mut out);
        assert!(out.is_empty(), "renewed at 50 for 100: runs to 150");
        a.advance(150, &mut out);
        assert_eq!(out, [(ca, ArbiterMsg::Expired { id: RequestId(1) })]);
        out.clear();
        a.handle(ca, ClientMsg::Renew { id: RequestId(1), ttl: 100 }, &mut out);
        assert_eq!(out, [(ca, ArbiterMsg::Renewed { id: RequestId(1), held: false })]);
        // A lock without a lease: ttl 0 changes nothing; a ttl starts a lease.
        out.clear();
        a.handle(ca, ClientMsg::Renew { id: RequestId(2), ttl: 0 }, &mut out);
        assert_eq!(
            (out.clone(), a.poll_timeout()),
            (vec![(ca, ArbiterMsg::Renewed { id: RequestId(2), held: true })], None)
        );
        a.handle(ca, ClientMsg::Renew { id: RequestId(2), ttl: 10 }, &mut out);
        out.clear();
        a.advance(160, &mut out);
        assert_eq!(out, [(ca, ArbiterMsg::Expired { id: RequestId(2) })]);
    }

    #[test]
    fn a_timeout_withdraws_a_waiting_request_and_never_grants_it_later() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.advance(10, &mut out);
        a.handle(ca, plain(1, "x"), &mut out);
        a.handle(cb, acquire(1, "x", Some("desk"), None, Some(50)), &mut out);
        out.clear();
        a.advance(59, &mut out);
        assert!(out.is_empty());
        assert_eq!(snapshot(&mut a, ca).1.len(), 1);
        a.advance(60, &mut out);
        assert_eq!(out, [(cb, ArbiterMsg::TimedOut { id: RequestId(1) })]);
        assert!(snapshot(&mut a, ca).1.is_empty(), "gone from the queue at once");
        out.clear();
        a.handle(ca, ClientMsg::Release { id: RequestId(1) }, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_timeout_ends_with_the_grant() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, plain(1, "x"), &mut out);
        a.handle(cb, acquire(1, "x", None, None, Some(50)), &mut out);
        a.advance(20, &mut out);
        a.handle(ca, ClientMsg::Release { id: RequestId(1) }, &mut out);
        out.clear();
        a.advance(1000, &mut out);
        assert!(out.is_empty(), "granted before its timeout, without a lease: held until released");
        assert!(a.engine().is_held(RequestKey { client: cb, request: RequestId(1) }));
    }

    #[test]
    fn query_reports_labels_and_the_lease_left() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.advance(100, &mut out);
        a.handle(ca, acquire(1, "x", Some("Desk 2"), Some(30_000), None), &mut out);
        a.handle(cb, acquire(1, "x", Some(""), None, None), &mut out);
        a.handle(cb, plain(2, "x"), &mut out);
        a.advance(100 + 1_000, &mut out);
        let (held, pending) = snapshot(&mut a, ca);
        assert_eq!((held[0].label.clone(), held[0].expires_in), (Some(u("Desk 2")), Some(29_000)));
        assert_eq!((pending[0].label.clone(), pending[0].expires_in), (Some(vec![]), None));
        assert_eq!((pending[1].label.clone(), pending[1].expires_in), (None, None), "a spec request has no label");
    }

    #[test]
    fn a_gone_client_leaves_no_lease_behind() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, acquire(1, "x", None, Some(100), None), &mut out);
        a.handle(ca, acquire(2, "y", None, Some(100), None), &mut out);
        a.handle(cb, plain(1, "x"), &mut out);
        out.clear();
        a.gone(&u("a"), &mut out);
        assert_eq!(out, [(cb, ArbiterMsg::Granted { id: RequestId(1) })]);
        out.clear();
        a.advance(1000, &mut out);
        assert!(out.is_empty(), "no Expired for a dead client: {out:?}");
        assert_eq!(a.poll_timeout(), None);
    }

    fn acquire_ex(id: u64, name: &str) -> ClientMsg {
        acquire(id, name, None, None, None)
    }

    #[test]
    fn a_request_that_closes_a_cycle_across_tabs_is_withdrawn_and_told_the_cycle() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, plain(1, "x"), &mut out); // a spec request takes part too
        a.handle(cb, acquire(1, "y", Some("B"), None, None), &mut out);
        a.handle(ca, plain(2, "y"), &mut out); // a holds x, waits for y: no cycle yet
        out.clear();
        a.handle(cb, acquire_ex(2, "x"), &mut out); // b holds y, waits for x: the cycle
        let [(to, ArbiterMsg::Deadlock { id, cycle })] = &out[..] else { panic!("{out:?}") };
        assert_eq!((*to, *id), (cb, RequestId(2)));
        let seen: Vec<_> = cycle.iter().map(|i| (i.client.clone(), i.name.clone(), i.label.clone())).collect();
        assert_eq!(
            seen,
            [(u("b"), u("x"), None), (u("a"), u("x"), None), (u("a"), u("y"), None), (u("b"), u("y"), Some(u("B")))]
        );
        assert!(!a.engine().is_queued(RequestKey { client: cb, request: RequestId(2) }), "withdrawn");
        // The others proceed: b releases y, a gets it.
        out.clear();
        a.handle(cb, ClientMsg::Release { id: RequestId(1) }, &mut out);
        assert_eq!(out, [(ca, ArbiterMsg::Granted { id: RequestId(2) })]);
    }

    #[test]
    fn waits_that_run_out_together_are_never_granted_by_each_other() {
        // Found by tests/services_sim.rs: b's wait ended, which made c's request (behind
        // it, due at the same moment) grantable; c was then granted and at once "expired".
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        let cc = hello(&mut a, "c", vec![], &mut out);
        let shared = |id, ttl, timeout| ClientMsg::Acquire {
            id: RequestId(id),
            name: u("x"),
            mode: LockMode::Shared,
            flags: RequestFlags::default(),
            extras: Extras { label: None, ttl, timeout },
        };
        a.handle(ca, shared(1, None, None), &mut out); // a holds x, shared
        a.handle(cb, acquire(1, "x", None, None, Some(100)), &mut out); // b waits, exclusive
        a.handle(cc, shared(1, Some(50), Some(100)), &mut out); // c waits behind b, shared
        out.clear();
        a.advance(100, &mut out);
        assert_eq!(
            out,
            [(cb, ArbiterMsg::TimedOut { id: RequestId(1) }), (cc, ArbiterMsg::TimedOut { id: RequestId(1) })]
        );
        assert!(a.engine().snapshot().pending.is_empty());
        assert_eq!(a.engine().snapshot().held.len(), 1);
    }

    #[test]
    fn a_spec_request_that_closes_a_cycle_keeps_waiting_and_its_client_is_told() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, plain(1, "x"), &mut out);
        a.handle(cb, plain(1, "y"), &mut out);
        a.handle(ca, plain(2, "y"), &mut out);
        assert!(!out.iter().any(|(_, m)| matches!(m, ArbiterMsg::DeadlockReport { .. })), "no cycle yet: {out:?}");
        out.clear();
        a.handle(cb, plain(2, "x"), &mut out);
        let [(to, ArbiterMsg::DeadlockReport { id, cycle }), (_, ArbiterMsg::Queued { .. })] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!((*to, *id, cycle.len()), (cb, RequestId(2), 4));
        assert!(a.engine().is_queued(RequestKey { client: cb, request: RequestId(2) }), "the spec request still waits");
    }

    #[test]
    fn if_available_acquire_names_a_holder_with_a_label() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        let try_ = |id, name: &str| ClientMsg::Acquire {
            id: RequestId(id),
            name: u(name),
            mode: LockMode::Exclusive,
            flags: RequestFlags { if_available: true, steal: false },
            extras: Extras::default(),
        };
        a.handle(ca, acquire(1, "x", Some("Desk 2"), None, None), &mut out);
        a.handle(ca, plain(2, "y"), &mut out);
        out.clear();
        a.handle(cb, try_(1, "x"), &mut out);
        a.handle(cb, try_(2, "y"), &mut out);
        assert_eq!(
            out,
            [
                (cb, ArbiterMsg::Busy { id: RequestId(1), holder: Some(u("Desk 2")) }),
                (cb, ArbiterMsg::Busy { id: RequestId(2), holder: None }),
            ]
        );
        out.clear();
        a.handle(cb, try_(3, "z"), &mut out);
        assert_eq!(out, [(cb, ArbiterMsg::Granted { id: RequestId(3) })]);
    }

    #[test]
    fn a_spec_query_has_no_labels() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        a.handle(ca, acquire(1, "x", Some("Desk 2"), Some(1_000), None), &mut out);
        out.clear();
        a.handle(ca, ClientMsg::Query { id: 7 }, &mut out);
        let [(_, ArbiterMsg::Snapshot { held, .. })] = &out[..] else { panic!("{out:?}") };
        assert_eq!((held[0].label.clone(), held[0].expires_in), (None, None));
    }

    #[test]
    fn waits_within_one_context_or_without_a_cycle_are_not_deadlocks() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, acquire_ex(1, "x"), &mut out);
        a.handle(ca, acquire_ex(2, "x"), &mut out); // a's own requests, one after the other
        a.handle(cb, acquire_ex(1, "x"), &mut out); // b waits for a: a chain, no cycle
        a.handle(cb, acquire_ex(2, "z"), &mut out);
        a.handle(ca, acquire_ex(3, "z"), &mut out); // a waits for b's z; b waits for x, held by a
        let deadlocks: Vec<_> = out.iter().filter(|(_, m)| matches!(m, ArbiterMsg::Deadlock { .. })).collect();
        assert_eq!(deadlocks.len(), 1, "only the last one closes a cycle across contexts: {out:?}");
        assert_eq!(deadlocks[0].0, ca);
    }

    #[test]
    fn recovery_restores_what_is_left_and_expires_only_after_it() {
        let (mut a, mut out) = (Arbiter::recovering(), Vec::new());
        a.advance(5_000, &mut out);
        a.begin_recovery([u("holder"), u("waiter"), u("late")], &mut out);
        let lease = |id, position, ttl, timeout| Restored {
            id: RequestId(id),
            name: u("x"),
            mode: LockMode::Exclusive,
            position,
            extras: Extras { label: Some(u("Desk 1")), ttl, timeout },
        };
        let holder = hello(&mut a, "holder", vec![lease(1, None, Some(30), None)], &mut out);
        let waiter = hello(&mut a, "waiter", vec![lease(4, Some(0), None, Some(10))], &mut out);
        a.handle(holder, ClientMsg::Query { id: 1 }, &mut out);
        assert!(out.is_empty(), "nothing is answered while recovering: {out:?}");
        // Both run out while "late" has not re-registered: nothing happens yet.
        a.advance(5_100, &mut out);
        assert!(out.is_empty(), "{out:?}");
        let late = hello(&mut a, "late", vec![], &mut out);
        // "late" said Hello: recovery is over. The wait and the lease end first, then
        // what waits is granted (the buffered query is answered too).
        a.handle(late, plain(1, "x"), &mut out);
        let kinds: Vec<_> = out.iter().filter(|(_, m)| !matches!(m, ArbiterMsg::Snapshot { .. })).cloned().collect();
        assert_eq!(
            kinds,
            [
                // The wait first, so that the lease's release cannot grant it late.
                (waiter, ArbiterMsg::TimedOut { id: RequestId(4) }),
                (holder, ArbiterMsg::Expired { id: RequestId(1) }),
                (late, ArbiterMsg::Granted { id: RequestId(1) }),
            ]
        );
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod delegation_tests {
    use super::*;
    #[allow(unused_imports)] // `Extras` is only imported above with the lock services
    use crate::protocol::{Extras, Restored};

    type Out = Vec<(ClientId, ArbiterMsg)>;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }
    fn hello(a: &mut Arbiter, label: &str, out: &mut Out) -> ClientId {
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: u(label), restore: vec![] }, out);
        c
    }
    fn ask(id: u64, name: &str) -> ClientMsg {
        ClientMsg::Ask { id: RequestId(id), name: u(name), mode: LockMode::Exclusive, flags: RequestFlags::default() }
    }
    fn req(id: u64, name: &str) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: u(name),
            mode: LockMode::Exclusive,
            flags: RequestFlags::default(),
        }
    }
    fn entry(id: u64, name: &str, position: Option<i64>) -> Restored {
        #[allow(clippy::default_constructed_unit_structs)]
        let extras = Extras::default();
        Restored { id: RequestId(id), name: u(name), mode: LockMode::Exclusive, position, extras }
    }

    #[test]
    fn an_ask_on_an_idle_name_delegates_it_and_another_context_waits_for_the_handback() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let c = hello(&mut a, "c", &mut out);
        let d = hello(&mut a, "d", &mut out);
        a.handle(c, ask(1, "n"), &mut out);
        assert_eq!(out, vec![(c, ArbiterMsg::Owned { id: RequestId(1) })]);
        assert!(a.engine().is_empty(), "the owner's engine has the name, not the arbiter's");
        out.clear();
        // d's request waits; the owner is asked for the name once.
        a.handle(d, req(1, "n"), &mut out);
        a.handle(d, req(2, "n"), &mut out);
        assert_eq!(out, vec![(c, ArbiterMsg::Revoke { name: u("n") })]);
        out.clear();
        // The owner holds 1 and queues 2 and 3 locally: d comes after them.
        let entries = vec![entry(1, "n", None), entry(2, "n", Some(1)), entry(3, "n", Some(2))];
        a.handle(c, ClientMsg::Handback { name: u("n"), entries }, &mut out);
        assert_eq!(
            out,
            vec![
                (d, ArbiterMsg::Queued { id: RequestId(1), position: 3 }),
                (d, ArbiterMsg::Queued { id: RequestId(2), position: 4 })
            ]
        );
        out.clear();
        for id in 1..=3 {
            a.handle(c, ClientMsg::Release { id: RequestId(id) }, &mut out);
        }
        assert_eq!(
            out,
            vec![
                (c, ArbiterMsg::Granted { id: RequestId(2) }),
                (c, ArbiterMsg::Granted { id: RequestId(3) }),
                (d, ArbiterMsg::Granted { id: RequestId(1) })
            ]
        );
        assert_eq!(a.rejected, 0);
        // Contended once: never delegated again.
        out.clear();
        a.handle(d, ClientMsg::Release { id: RequestId(1) }, &mut out);
        a.handle(d, ClientMsg::Release { id: RequestId(2) }, &mut out);
        a.handle(c, ask(9, "n"), &mut out);
        assert_eq!(
            out,
            vec![(d, ArbiterMsg::Granted { id: RequestId(2) }), (c, ArbiterMsg::Granted { id: RequestId(9) })]
        );
    }

    #[test]
    fn a_query_gets_every_owned_name_back_first_and_a_later_message_of_its_client_waits_too() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let c = hello(&mut a, "c", &mut out);
        let d = hello(&mut a, "d", &mut out);
        a.handle(c, ask(1, "x"), &mut out);
        a.handle(c, ask(2, "y"), &mut out);
        out.clear();
        a.handle(d, ClientMsg::Query { id: 7 }, &mut out);
        // d's next request (on a name nobody owns) must not overtake its query.
        a.handle(d, req(1, "z"), &mut out);
        assert_eq!(out, vec![(c, ArbiterMsg::Revoke { name: u("x") }), (c, ArbiterMsg::Revoke { name: u("y") })]);
        out.clear();
        a.handle(c, ClientMsg::Handback { name: u("x"), entries: vec![entry(1, "x", None)] }, &mut out);
        assert!(out.is_empty(), "still waiting for y");
        a.handle(c, ClientMsg::Handback { name: u("y"), entries: vec![] }, &mut out);
        let ArbiterMsg::Snapshot { held, pending, .. } = &out[0].1 else { panic!("{out:?}") };
        assert_eq!(held.iter().map(|i| i.name.clone()).collect::<Vec<_>>(), vec![u("x")]);
        assert!(pending.is_empty());
        assert_eq!(out[1], (d, ArbiterMsg::Granted { id: RequestId(1) }));
    }

    #[test]
    fn a_dead_owner_takes_its_names_with_it_and_what_waited_is_served() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let c = hello(&mut a, "c", &mut out);
        let d = hello(&mut a, "d", &mut out);
        a.handle(c, ask(1, "n"), &mut out);
        a.handle(d, req(1, "n"), &mut out);
        out.clear();
        a.gone(&u("c"), &mut out);
        assert_eq!(out, vec![(d, ArbiterMsg::Granted { id: RequestId(1) })]);
        assert!(!a.owns_any());
    }

    #[test]
    fn an_ask_where_something_waits_or_is_held_is_an_ordinary_request() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let c = hello(&mut a, "c", &mut out);
        let d = hello(&mut a, "d", &mut out);
        a.handle(d, req(1, "n"), &mut out);
        a.handle(c, ask(1, "n"), &mut out);
        assert_eq!(
            out,
            vec![
                (d, ArbiterMsg::Granted { id: RequestId(1) }),
                (c, ArbiterMsg::Queued { id: RequestId(1), position: 1 })
            ]
        );
        assert!(!a.owns_any());
    }

    #[test]
    fn an_owner_sending_on_its_own_name_or_a_stranger_handing_back_is_refused() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let c = hello(&mut a, "c", &mut out);
        let d = hello(&mut a, "d", &mut out);
        a.handle(c, ask(1, "n"), &mut out);
        out.clear();
        a.handle(c, req(2, "n"), &mut out);
        a.handle(d, ClientMsg::Handback { name: u("n"), entries: vec![entry(5, "n", None)] }, &mut out);
        assert!(out.is_empty());
        assert_eq!(a.rejected, 2);
        assert!(a.engine().is_empty());
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod delegation_query_tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn a_name_asked_back_for_a_query_may_be_delegated_again() {
        let (mut a, mut out) = (Arbiter::new(), Vec::new());
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: u("c"), restore: vec![] }, &mut out);
        let d = a.connect();
        a.handle(d, ClientMsg::Hello { client: u("d"), restore: vec![] }, &mut out);
        let ask = |id| ClientMsg::Ask {
            id: RequestId(id),
            name: u("n"),
            mode: LockMode::Exclusive,
            flags: RequestFlags::default(),
        };
        a.handle(c, ask(1), &mut out);
        a.handle(d, ClientMsg::Query { id: 1 }, &mut out);
        a.handle(c, ClientMsg::Handback { name: u("n"), entries: vec![] }, &mut out);
        out.clear();
        a.handle(c, ask(2), &mut out);
        assert_eq!(out, vec![(c, ArbiterMsg::Owned { id: RequestId(2) })]);
    }
}
