//! Property tests: the engine against a deliberately naive reference model.
//!
//! [`Model`] is written straight from spec-digest.md §4 and §6, with a `Vec` for the held
//! lock set, a `Vec` of `(name, VecDeque)` for the lock request queue map and linear scans
//! everywhere, so that it is easy to check against the spec by eye. Random operation
//! sequences (1–4 clients, 1–3 names) run through both; after every operation the harness
//! checks that they agree, and checks invariants on the engine alone:
//!
//! * effects: per name the same effects in the same order (across names the order is
//!   unspecified, so effects are compared grouped by name);
//! * snapshot: held locks as a set per name, pending requests in queue order per name;
//! * exclusion: an exclusive holder is never beside another holder of its name;
//! * queue discipline: the grants of one operation are exactly a
//!   prefix of the queue as that operation left it, and the new head is blocked;
//! * FIFO: a non-steal request is never granted while a non-steal request
//!   that entered the same name's queue earlier is still queued;
//! * lifecycle: every request ends as exactly one of granted (then released, stolen or
//!   released by terminate), unavailable, aborted (released while queued) or dropped by
//!   terminate, and no effect ever names a request twice or after it settled;
//! * `Queued` acks: exactly one, last, for a new request left waiting; the acknowledged
//!   positions order every queue;
//! * restore: an engine rebuilt from its holders and acknowledged waiters (in any order,
//!   maybe without one client) grants nothing, or what terminating the missing client
//!   grants, and then keeps matching the model.
//!
//! Each case ends by terminating every client, after which the engine must be empty.
//! `PROPTEST_CASES` overrides the default of 1000 cases per property.
//!
//! The model's `terminate` removes everything of the client, then processes the queues,
//! as the engine documents; `terminate_literally` follows §6 step by step and can grant
//! a dying client's own waiting request for a moment (see
//! `model_r80_literal_terminate_grants_the_dying_client_transiently`). A property checks
//! that this transient grant is the only difference.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;
use proptest::test_runner::TestCaseError;

use super::*;

type Name = Vec<u16>;

const EX: LockMode = LockMode::Exclusive;
const SH: LockMode = LockMode::Shared;

/// Names that must stay distinct: a plain one, a lone surrogate, U+FFFD.
const NAMES: [&[u16]; 3] = [&[0x61], &[0xD800], &[0xFFFD]];

/// Client ids, including the extremes of the range `terminate` scans.
const CLIENTS: [u32; 4] = [0, u32::MAX, 1, 7];

/// The n-th request id a client uses; the second is `u64::MAX`, the top of the range.
fn request_id(n: u64) -> RequestId {
    RequestId(if n == 1 { u64::MAX } else { n })
}

// ---------------------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------------------

/// A lock request, and also a held lock (same fields).
#[derive(Clone, Debug, PartialEq)]
struct Req {
    key: RequestKey,
    name: Name,
    mode: LockMode,
}

/// A lock manager, written from spec-digest.md §4 with no cleverness at all.
#[derive(Clone, Debug, Default)]
struct Model {
    /// The held lock set, in insertion order.
    held: Vec<Req>,
    /// The lock request queue map. A queue is created on first lookup, never removed.
    queues: Vec<(Name, VecDeque<Req>)>,
}

impl Model {
    fn queue(&mut self, name: &[u16]) -> &mut VecDeque<Req> {
        let i = match self.queues.iter().position(|(n, _)| n.as_slice() == name) {
            Some(i) => i,
            None => {
                self.queues.push((name.to_vec(), VecDeque::new()));
                self.queues.len() - 1
            }
        };
        &mut self.queues[i].1
    }

    /// §4.2: queue empty or `req` at its head, and the mode condition.
    fn grantable(&self, req: &Req) -> bool {
        let queue_ok = match self.queues.iter().find(|(n, _)| *n == req.name) {
            None => true,
            Some((_, q)) => q.is_empty() || q.front().map(|h| h.key) == Some(req.key),
        };
        let mode_ok = match req.mode {
            LockMode::Exclusive => !self.held.iter().any(|l| l.name == req.name),
            LockMode::Shared => !self.held.iter().any(|l| l.name == req.name && l.mode == EX),
        };
        queue_ok && mode_ok
    }

    /// §4.3: grant from the head while the head is grantable.
    fn process(&mut self, name: &[u16], out: &mut Vec<Effect>) {
        while let Some(head) = self.queue(name).front().cloned() {
            if !self.grantable(&head) {
                break;
            }
            self.queue(name).pop_front();
            out.push(Effect::Granted(head.key));
            self.held.push(head);
        }
    }

    fn knows(&self, key: RequestKey) -> bool {
        self.held.iter().any(|l| l.key == key) || self.queues.iter().any(|(_, q)| q.iter().any(|r| r.key == key))
    }

    /// §4.1, on the lock task queue.
    fn request(&mut self, req: Req, flags: RequestFlags, out: &mut Vec<Effect>) -> Result<(), EngineError> {
        if flags.steal && (flags.if_available || req.mode == SH) {
            return Err(EngineError::InvalidFlags);
        }
        if self.knows(req.key) {
            return Err(EngineError::DuplicateRequest);
        }
        if flags.steal {
            let mut i = 0;
            while i < self.held.len() {
                if self.held[i].name == req.name {
                    let victim = self.held.remove(i);
                    out.push(Effect::Stolen(victim.key));
                } else {
                    i += 1;
                }
            }
            self.queue(&req.name).push_front(req.clone());
        } else if flags.if_available && !self.grantable(&req) {
            out.push(Effect::Unavailable(req.key));
            return Ok(());
        } else {
            self.queue(&req.name).push_back(req.clone());
        }
        self.process(&req.name, out);
        Ok(())
    }

    /// §4.4 "release the lock", or §4.6 "abort the request" for a queued request.
    fn release(&mut self, key: RequestKey, out: &mut Vec<Effect>) -> bool {
        if let Some(i) = self.held.iter().position(|l| l.key == key) {
            let lock = self.held.remove(i);
            self.process(&lock.name, out);
            return true;
        }
        for i in 0..self.queues.len() {
            if let Some(j) = self.queues[i].1.iter().position(|r| r.key == key) {
                self.queues[i].1.remove(j);
                let name = self.queues[i].0.clone();
                self.process(&name, out);
                return true;
            }
        }
        false
    }

    /// §6, as the engine documents it: drop every queued request of `client`, release all
    /// its locks, then process the queues.
    fn terminate(&mut self, client: ClientId, out: &mut Vec<Effect>) {
        for (_, q) in &mut self.queues {
            q.retain(|r| r.key.client != client);
        }
        self.held.retain(|l| l.key.client != client);
        let names: Vec<Name> = self.queues.iter().map(|(n, _)| n.clone()).collect();
        for name in names {
            self.process(&name, out);
        }
    }

    /// §6 read literally: "abort the request" (remove, then process that queue) for each
    /// request of the client, then "release the lock" for each of its locks. Step 1 can
    /// transiently grant one of the dying client's own requests (released again in step 2).
    fn terminate_literally(&mut self, client: ClientId, out: &mut Vec<Effect>) {
        let requests: Vec<RequestKey> =
            self.queues.iter().flat_map(|(_, q)| q.iter().filter(|r| r.key.client == client).map(|r| r.key)).collect();
        for key in requests {
            // A no-op when the request is no longer queued (granted by an earlier abort).
            if !self.held.iter().any(|l| l.key == key) {
                self.release(key, out);
            }
        }
        let locks: Vec<RequestKey> = self.held.iter().filter(|l| l.key.client == client).map(|l| l.key).collect();
        for key in locks {
            self.release(key, out);
        }
    }

    fn is_empty(&self) -> bool {
        self.held.is_empty() && self.queues.iter().all(|(_, q)| q.is_empty())
    }
}

// ---------------------------------------------------------------------------------------
// Normal forms for comparison.
// ---------------------------------------------------------------------------------------

/// A snapshot with the orders the spec promises and no others: held as a set per name,
/// pending in queue order per name.
#[derive(Clone, Debug, Default, PartialEq)]
struct Norm {
    held: BTreeMap<Name, BTreeSet<(RequestKey, LockMode)>>,
    pending: BTreeMap<Name, Vec<(RequestKey, LockMode)>>,
}

fn key_of(i: &LockInfo) -> RequestKey {
    RequestKey { client: i.client, request: i.request }
}

fn norm_engine(s: &Snapshot) -> Norm {
    let mut n = Norm::default();
    for i in &s.held {
        n.held.entry(i.name.to_vec()).or_default().insert((key_of(i), i.mode));
    }
    for i in &s.pending {
        n.pending.entry(i.name.to_vec()).or_default().push((key_of(i), i.mode));
    }
    n
}

fn norm_model(m: &Model) -> Norm {
    let mut n = Norm::default();
    for l in &m.held {
        n.held.entry(l.name.clone()).or_default().insert((l.key, l.mode));
    }
    for (name, q) in &m.queues {
        if !q.is_empty() {
            n.pending.insert(name.clone(), q.iter().map(|r| (r.key, r.mode)).collect());
        }
    }
    n
}

fn effect_key(e: &Effect) -> RequestKey {
    match *e {
        Effect::Granted(k) | Effect::Unavailable(k) | Effect::Stolen(k) | Effect::Queued(k, _) => k,
    }
}

// ---------------------------------------------------------------------------------------
// Operations and their generation.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// A valid request with a fresh key.
    Request {
        client: usize,
        name: usize,
        mode: LockMode,
        if_available: bool,
        steal: bool,
    },
    /// A request reusing the key of a queued or held request: refused (DuplicateRequest).
    Duplicate {
        which: Index,
        name: usize,
        mode: LockMode,
    },
    /// steal with ifAvailable, or steal with a shared mode: refused.
    Invalid {
        client: usize,
        name: usize,
        shared: bool,
    },
    /// Release (or abort) any key issued so far, settled or not.
    Release(Index),
    /// Release a key that was never issued, possibly of a client that does not exist.
    ReleaseUnknown {
        client: u32,
        request: u64,
    },
    Terminate {
        client: usize,
    },
    /// Replace the engine with one rebuilt from its held locks and its queued requests at
    /// their acknowledged positions, restored in a shuffled order, then one pass over every
    /// queue: what a new arbiter does with the clients' reports. `without`: a client that
    /// died meanwhile and never reports, which must come to the same as terminating it.
    Restore {
        shuffle: u64,
        without: Option<usize>,
    },
}

/// Weights of the operations (0 disables one) and percentages of request flavours.
#[derive(Clone, Copy, Debug)]
struct Mix {
    request: u32,
    duplicate: u32,
    invalid: u32,
    release: u32,
    release_unknown: u32,
    terminate: u32,
    restore: u32,
    /// Percent of requests that are shared (among those that may be).
    shared: u32,
    /// Percent of requests with ifAvailable.
    if_available: u32,
    /// Percent of requests with steal.
    steal: u32,
}

const BASE: Mix = Mix {
    request: 10,
    duplicate: 0,
    invalid: 0,
    release: 7,
    release_unknown: 0,
    terminate: 0,
    restore: 0,
    shared: 50,
    if_available: 0,
    steal: 0,
};

fn op(mix: Mix, clients: usize, names: usize) -> impl Strategy<Value = Op> {
    let request = (0..clients, 0..names, 0..100u32, 0..100u32).prop_map(move |(client, name, flavour, shared)| {
        let steal = flavour < mix.steal;
        let if_available = !steal && flavour < mix.steal + mix.if_available;
        let mode = if !steal && shared < mix.shared { SH } else { EX };
        Op::Request { client, name, mode, if_available, steal }
    });
    let mode = prop_oneof![Just(EX), Just(SH)];
    let options: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (mix.request, request.boxed()),
        (
            mix.duplicate,
            (any::<Index>(), 0..names, mode)
                .prop_map(|(which, name, mode)| Op::Duplicate { which, name, mode })
                .boxed(),
        ),
        (
            mix.invalid,
            (0..clients, 0..names, any::<bool>())
                .prop_map(|(client, name, shared)| Op::Invalid { client, name, shared })
                .boxed(),
        ),
        (mix.release, any::<Index>().prop_map(Op::Release).boxed()),
        (
            mix.release_unknown,
            (0..clients + 1, prop_oneof![Just(u64::MAX - 1), 1_000_000..1_000_010u64])
                .prop_map(|(c, request)| Op::ReleaseUnknown { client: CLIENTS.get(c).copied().unwrap_or(3), request })
                .boxed(),
        ),
        (mix.terminate, (0..clients).prop_map(|client| Op::Terminate { client }).boxed()),
        (
            mix.restore,
            (any::<u64>(), proptest::option::of(0..clients))
                .prop_map(|(shuffle, without)| Op::Restore { shuffle, without })
                .boxed(),
        ),
    ];
    Union::new_weighted(options.into_iter().filter(|(w, _)| *w > 0).collect())
}

/// A case: how many clients and names, and the operations.
fn case(mix: Mix) -> impl Strategy<Value = (usize, usize, Vec<Op>)> {
    (1..=4usize, 1..=3usize).prop_flat_map(move |(clients, names)| {
        (Just(clients), Just(names), proptest::collection::vec(op(mix, clients, names), 1..48))
    })
}

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 1000;
    }
    // ChaCha dominates the run time of a debug build; XorShift is ample for this.
    if std::env::var_os("PROPTEST_RNG_ALGORITHM").is_none() {
        config.rng_algorithm = proptest::test_runner::RngAlgorithm::XorShift;
    }
    config
}

// ---------------------------------------------------------------------------------------
// The harness.
// ---------------------------------------------------------------------------------------

/// Where a request is in its life, as the effects and return values tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Queued,
    Held,
    // Terminal states.
    /// Granted, then released by its client.
    Released,
    /// Granted, then stolen.
    Stolen,
    /// Granted, then released by terminate.
    TerminatedHeld,
    /// ifAvailable and not grantable: called back with `null`, never queued.
    Unavailable,
    /// Released while queued (signal abort).
    Aborted,
    /// Dropped while queued by terminate.
    Dropped,
}

/// How the model terminates a client.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TerminateAs {
    Documented,
    Literally,
}

/// What an operation did, for the queue-discipline check.
enum Did {
    Nothing,
    Request { key: RequestKey, name: Name, steal: bool },
    Release { key: RequestKey },
    Terminate { client: ClientId },
}

struct Harness {
    engine: Engine,
    model: Model,
    terminate_as: TerminateAs,
    clients: usize,
    /// Requests issued per client, for fresh ids.
    issued_per_client: [u64; 4],
    /// Every key issued, in order.
    issued: Vec<RequestKey>,
    /// Every key issued, with its name and whether it was a steal.
    requests: BTreeMap<RequestKey, (Name, bool)>,
    life: BTreeMap<RequestKey, Life>,
    /// Per name, the non-steal requests in the order they entered its queue.
    entered: BTreeMap<Name, Vec<RequestKey>>,
    /// The engine's snapshot after the last operation.
    last: Norm,
    /// The position each request was acknowledged at ([`Effect::Queued`]).
    positions: BTreeMap<RequestKey, i64>,
}

impl Harness {
    fn new(clients: usize, terminate_as: TerminateAs) -> Self {
        Harness {
            engine: Engine::new(),
            model: Model::default(),
            terminate_as,
            clients,
            issued_per_client: [0; 4],
            issued: Vec::new(),
            requests: BTreeMap::new(),
            life: BTreeMap::new(),
            entered: BTreeMap::new(),
            last: Norm::default(),
            positions: BTreeMap::new(),
        }
    }

    fn client(&self, i: usize) -> ClientId {
        ClientId(CLIENTS[i])
    }

    fn fresh(&mut self, client: usize) -> RequestKey {
        let n = self.issued_per_client[client];
        self.issued_per_client[client] += 1;
        RequestKey { client: self.client(client), request: request_id(n) }
    }

    fn name_of(&self, key: RequestKey) -> Option<&Name> {
        self.requests.get(&key).map(|(n, _)| n)
    }

    fn by_name(&self, effects: &[Effect]) -> Result<BTreeMap<Name, Vec<Effect>>, TestCaseError> {
        let mut map: BTreeMap<Name, Vec<Effect>> = BTreeMap::new();
        for e in effects {
            let name = self.name_of(effect_key(e));
            prop_assert!(name.is_some(), "effect {:?} names a request never issued", e);
            map.entry(name.cloned().unwrap_or_default()).or_default().push(*e);
        }
        // The victims of one steal come in the order of the held set, which has no
        // promised order and is not kept across a restore: compare them as a set.
        for effects in map.values_mut() {
            let mut start = 0;
            while start < effects.len() {
                let end = start + effects[start..].iter().take_while(|e| matches!(e, Effect::Stolen(_))).count();
                effects[start..end].sort_by_key(effect_key);
                start = end.max(start + 1);
            }
        }
        Ok(map)
    }

    fn run(&mut self, ops: &[Op]) -> Result<(), TestCaseError> {
        for op in ops {
            self.step(op)?;
        }
        for c in 0..self.clients {
            self.step(&Op::Terminate { client: c })?;
        }
        prop_assert!(self.engine.is_empty(), "engine not empty after terminating everyone: {:?}", self.engine);
        prop_assert_eq!(self.engine.snapshot(), Snapshot::default());
        prop_assert!(self.model.is_empty());
        for (key, life) in &self.life {
            prop_assert!(!matches!(life, Life::Queued | Life::Held), "{:?} never settled: {:?}", key, life);
        }
        for key in &self.issued {
            prop_assert!(self.life.contains_key(key), "{:?} has no recorded outcome", key);
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let pre = std::mem::take(&mut self.last);
        let mut got = Vec::new();
        let mut want = Vec::new();
        let did = match *op {
            Op::Request { client, name, mode, if_available, steal } => {
                let key = self.fresh(client);
                let name = NAMES[name].to_vec();
                let flags = RequestFlags { if_available, steal };
                let e = self.engine.request(key, name.as_slice().into(), mode, flags, &mut got);
                let m = self.model.request(Req { key, name: name.clone(), mode }, flags, &mut want);
                prop_assert_eq!(e, Ok(()));
                prop_assert_eq!(m, Ok(()));
                self.issued.push(key);
                self.requests.insert(key, (name.clone(), steal));
                Did::Request { key, name, steal }
            }
            Op::Duplicate { which, name, mode } => {
                let live: Vec<RequestKey> =
                    self.life.iter().filter(|(_, l)| matches!(l, Life::Queued | Life::Held)).map(|(k, _)| *k).collect();
                if live.is_empty() {
                    self.last = pre;
                    return Ok(());
                }
                let key = *which.get(&live);
                let name = NAMES[name].to_vec();
                let e = self.engine.request(key, name.as_slice().into(), mode, RequestFlags::default(), &mut got);
                let m = self.model.request(Req { key, name, mode }, RequestFlags::default(), &mut want);
                prop_assert_eq!(e, Err(EngineError::DuplicateRequest));
                prop_assert_eq!(m, Err(EngineError::DuplicateRequest));
                Did::Nothing
            }
            Op::Invalid { client, name, shared } => {
                let key = self.fresh(client);
                let name = NAMES[name].to_vec();
                let (mode, flags) = if shared {
                    (SH, RequestFlags { if_available: false, steal: true })
                } else {
                    (EX, RequestFlags { if_available: true, steal: true })
                };
                let e = self.engine.request(key, name.as_slice().into(), mode, flags, &mut got);
                let m = self.model.request(Req { key, name, mode }, flags, &mut want);
                prop_assert_eq!(e, Err(EngineError::InvalidFlags));
                prop_assert_eq!(m, Err(EngineError::InvalidFlags));
                Did::Nothing
            }
            Op::Release(which) => {
                if self.issued.is_empty() {
                    self.last = pre;
                    return Ok(());
                }
                let key = *which.get(&self.issued);
                let e = self.engine.release(key, &mut got);
                let m = self.model.release(key, &mut want);
                prop_assert_eq!(e, m, "release({:?}) returned differently", key);
                let live = matches!(self.life.get(&key), Some(Life::Queued | Life::Held));
                prop_assert_eq!(e, live, "release({:?}) of a request in state {:?}", key, self.life.get(&key));
                Did::Release { key }
            }
            Op::ReleaseUnknown { client, request } => {
                let key = RequestKey { client: ClientId(client), request: RequestId(request) };
                prop_assert!(!self.engine.release(key, &mut got), "release of an unknown key succeeded (R-63)");
                prop_assert!(!self.model.release(key, &mut want));
                Did::Nothing
            }
            Op::Restore { shuffle, without } => {
                let gone = without.map(|c| self.client(c));
                let mut snap = self.engine.snapshot();
                snap.held.retain(|i| Some(i.client) != gone);
                snap.pending.retain(|i| Some(i.client) != gone);
                let mut reports: Vec<(LockInfo, Option<i64>)> = snap.held.into_iter().map(|i| (i, None)).collect();
                for i in snap.pending {
                    let position = self.positions.get(&key_of(&i)).copied();
                    prop_assert!(position.is_some(), "{:?} is queued but was never acknowledged", key_of(&i));
                    reports.push((i, position));
                }
                let mut x = shuffle | 1;
                for i in (1..reports.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    reports.swap(i, (x % (i as u64 + 1)) as usize);
                }
                let mut engine = Engine::new();
                for (i, position) in reports {
                    let key = key_of(&i);
                    let restored = match position {
                        None => engine.restore_held(key, i.name, i.mode),
                        Some(p) => engine.restore_queued(key, i.name, i.mode, p),
                    };
                    prop_assert_eq!(restored, Ok(()), "restoring {:?}", key);
                }
                // The old engine was at a fixpoint, so the pass grants only what the missing
                // client blocked: exactly what terminating it grants.
                engine.process_all(&mut got);
                self.engine = engine;
                match gone {
                    None => Did::Nothing,
                    Some(client) => {
                        self.model.terminate(client, &mut want);
                        Did::Terminate { client }
                    }
                }
            }
            Op::Terminate { client } => {
                let client = self.client(client);
                self.engine.terminate(client, &mut got);
                match self.terminate_as {
                    TerminateAs::Documented => self.model.terminate(client, &mut want),
                    TerminateAs::Literally => {
                        self.model.terminate_literally(client, &mut want);
                        // The only difference allowed: transient grants to the dying client.
                        want.retain(|e| !matches!(e, Effect::Granted(k) if k.client == client));
                    }
                }
                Did::Terminate { client }
            }
        };

        // Queued acks (the model has none): exactly one, last, for a new request that is
        // left waiting, and for nothing else.
        let acks: Vec<(RequestKey, i64)> = got
            .iter()
            .filter_map(|e| match *e {
                Effect::Queued(k, p) => Some((k, p)),
                _ => None,
            })
            .collect();
        let waiting = match did {
            Did::Request { key, .. } if self.model.queues.iter().any(|(_, q)| q.iter().any(|r| r.key == key)) => {
                vec![key]
            }
            _ => vec![],
        };
        prop_assert_eq!(acks.iter().map(|(k, _)| *k).collect::<Vec<_>>(), waiting, "Queued acks of {:?}", op);
        if let Some((key, position)) = acks.first() {
            prop_assert_eq!(got.last(), Some(&Effect::Queued(*key, *position)), "the ack comes last");
            self.positions.insert(*key, *position);
        }
        got.retain(|e| !matches!(e, Effect::Queued(..)));

        // The engine and the model agree.
        let effects = self.by_name(&got)?;
        prop_assert_eq!(&effects, &self.by_name(&want)?, "effects of {:?}", op);
        let post = norm_engine(&self.engine.snapshot());
        prop_assert_eq!(&post, &norm_model(&self.model), "snapshot after {:?}", op);
        prop_assert_eq!(
            self.engine.len(),
            post.held.values().map(BTreeSet::len).sum::<usize>() + post.pending.values().map(Vec::len).sum::<usize>()
        );
        let held: BTreeSet<RequestKey> = post.held.values().flatten().map(|(k, _)| *k).collect();
        let queued: BTreeSet<RequestKey> = post.pending.values().flatten().map(|(k, _)| *k).collect();
        for key in &self.issued {
            prop_assert_eq!(self.engine.is_held(*key), held.contains(key));
            prop_assert_eq!(self.engine.is_queued(*key), queued.contains(key));
        }

        // Acknowledged positions order each queue, so that a restore rebuilds it.
        for (name, pending) in &post.pending {
            let positions: Vec<Option<i64>> = pending.iter().map(|(k, _)| self.positions.get(k).copied()).collect();
            prop_assert!(
                positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]),
                "{:?}: positions {:?} do not order the queue {:?}",
                name,
                positions,
                pending
            );
        }

        // Invariants of the engine alone.
        self.check_exclusion(&post)?;
        self.check_queue_discipline(&pre, &post, &did, &effects)?;
        self.check_lifecycle(&did, &got)?;
        self.last = post;
        Ok(())
    }

    /// never an exclusive holder beside another holder of the same name.
    fn check_exclusion(&self, post: &Norm) -> Result<(), TestCaseError> {
        for (name, holders) in &post.held {
            let exclusive = holders.iter().filter(|(_, m)| *m == EX).count();
            prop_assert!(exclusive == 0 || holders.len() == 1, "{:?} held by {:?}", name, holders);
        }
        Ok(())
    }

    /// the queue as the operation left it (append, prepend for a
    /// steal, removal) is granted from the head, and whatever is left has a blocked head.
    fn check_queue_discipline(
        &self,
        pre: &Norm,
        post: &Norm,
        did: &Did,
        effects: &BTreeMap<Name, Vec<Effect>>,
    ) -> Result<(), TestCaseError> {
        let names: BTreeSet<&Name> = pre.pending.keys().chain(post.pending.keys()).chain(effects.keys()).collect();
        for name in names {
            let mut queue: Vec<RequestKey> =
                pre.pending.get(name).map(|v| v.iter().map(|(k, _)| *k).collect()).unwrap_or_default();
            let mut held: BTreeSet<RequestKey> =
                pre.held.get(name).map(|s| s.iter().map(|(k, _)| *k).collect()).unwrap_or_default();
            let mut effects: &[Effect] = effects.get(name).map(Vec::as_slice).unwrap_or_default();
            match did {
                Did::Nothing => {}
                Did::Request { key, name: n, steal } if n == name => {
                    if *steal {
                        // every holder of the name is evicted first.
                        let stolen: BTreeSet<RequestKey> =
                            effects.iter().take_while(|e| matches!(e, Effect::Stolen(_))).map(effect_key).collect();
                        prop_assert_eq!(&stolen, &held, "a steal must evict exactly the holders");
                        effects = effects.get(stolen.len()..).unwrap_or_default();
                        held.clear();
                        queue.insert(0, *key);
                        // and the stealer is granted at once.
                        prop_assert_eq!(effects.first(), Some(&Effect::Granted(*key)));
                    } else if effects == [Effect::Unavailable(*key)] {
                        prop_assert_eq!(pre.pending.get(name), post.pending.get(name));
                        prop_assert_eq!(pre.held.get(name), post.held.get(name));
                        continue;
                    } else {
                        queue.push(*key);
                    }
                }
                Did::Request { .. } => {
                    prop_assert!(effects.is_empty(), "a request on another name caused {:?}", effects);
                }
                Did::Release { key } => {
                    if self.name_of(*key) != Some(name) {
                        prop_assert!(effects.is_empty(), "a release on another name caused {:?}", effects);
                    }
                    queue.retain(|k| k != key);
                    held.remove(key);
                }
                Did::Terminate { client } => {
                    queue.retain(|k| k.client != *client);
                    held.retain(|k| k.client != *client);
                }
            }
            let granted: Vec<RequestKey> = effects
                .iter()
                .map(|e| match e {
                    Effect::Granted(k) => Ok(*k),
                    other => Err(TestCaseError::fail(format!("unexpected {other:?} for {name:?}"))),
                })
                .collect::<Result<_, _>>()?;
            prop_assert!(
                queue.starts_with(&granted),
                "{:?}: grants {:?} are not the head of the queue {:?} (FIFO / no barging)",
                name,
                granted,
                queue
            );
            held.extend(granted.iter().copied());
            let rest = queue.get(granted.len()..).unwrap_or_default();
            let post_queue: Vec<RequestKey> =
                post.pending.get(name).map(|v| v.iter().map(|(k, _)| *k).collect()).unwrap_or_default();
            prop_assert_eq!(rest, post_queue.as_slice(), "{:?}: queue after the operation", name);
            let post_held: BTreeSet<RequestKey> =
                post.held.get(name).map(|s| s.iter().map(|(k, _)| *k).collect()).unwrap_or_default();
            prop_assert_eq!(&held, &post_held, "{:?}: holders after the operation", name);
            // a pass stops only at a head that is not grantable.
            if let Some((head, mode)) = post.pending.get(name).and_then(|v| v.first()) {
                let holders = post.held.get(name);
                let blocked = match mode {
                    LockMode::Exclusive => holders.is_some_and(|s| !s.is_empty()),
                    LockMode::Shared => holders.is_some_and(|s| s.iter().any(|(_, m)| *m == EX)),
                };
                prop_assert!(blocked, "{:?}: head {:?} is grantable but was left queued", name, head);
            }
        }
        Ok(())
    }

    /// Every request settles exactly once; FIFO among non-steal requests of a name.
    fn check_lifecycle(&mut self, did: &Did, got: &[Effect]) -> Result<(), TestCaseError> {
        match did {
            Did::Nothing => {}
            Did::Release { key } => match self.life.get(key) {
                Some(Life::Held) => {
                    self.life.insert(*key, Life::Released);
                }
                Some(Life::Queued) => {
                    self.life.insert(*key, Life::Aborted);
                }
                _ => {}
            },
            Did::Terminate { client } => {
                for (key, life) in self.life.iter_mut() {
                    if key.client == *client {
                        match life {
                            Life::Queued => *life = Life::Dropped,
                            Life::Held => *life = Life::TerminatedHeld,
                            _ => {}
                        }
                    }
                }
            }
            Did::Request { key, .. } => {
                prop_assert!(!self.life.contains_key(key), "{:?} issued twice", key);
            }
        }
        for e in got {
            let key = effect_key(e);
            let life = self.life.get(&key).copied();
            match e {
                Effect::Granted(_) => {
                    let new = matches!(did, Did::Request { key: k, .. } if *k == key);
                    prop_assert!(
                        life == Some(Life::Queued) || (new && life.is_none()),
                        "{:?} granted in state {:?}",
                        key,
                        life
                    );
                    self.life.insert(key, Life::Held);
                    self.check_fifo(key)?;
                }
                Effect::Unavailable(_) => {
                    let ok = matches!(did, Did::Request { key: k, steal: false, .. } if *k == key);
                    prop_assert!(ok && life.is_none(), "{:?} unavailable in state {:?}", key, life);
                    self.life.insert(key, Life::Unavailable);
                }
                Effect::Stolen(_) => {
                    let ok = matches!(did, Did::Request { steal: true, .. });
                    prop_assert!(ok && life == Some(Life::Held), "{:?} stolen in state {:?}", key, life);
                    self.life.insert(key, Life::Stolen);
                }
                Effect::Queued(..) => {}
            }
            if let Did::Terminate { client } = did {
                prop_assert!(key.client != *client, "terminate produced {:?} for the dying client", e);
            }
        }
        if let Did::Request { key, name, steal } = did {
            if !self.life.contains_key(key) {
                prop_assert!(self.engine.is_queued(*key), "{:?} neither settled nor queued", key);
                self.life.insert(*key, Life::Queued);
            }
            if !steal && self.life.get(key) != Some(&Life::Unavailable) {
                self.entered.entry(name.clone()).or_default().push(*key);
            }
        }
        Ok(())
    }

    /// a non-steal grant never overtakes a non-steal request that entered the
    /// same queue earlier and is still waiting.
    fn check_fifo(&self, key: RequestKey) -> Result<(), TestCaseError> {
        let Some((name, steal)) = self.requests.get(&key) else {
            return Err(TestCaseError::fail(format!("{key:?} was never issued")));
        };
        if *steal {
            return Ok(());
        }
        for earlier in self.entered.get(name).map(Vec::as_slice).unwrap_or_default() {
            if *earlier == key {
                break;
            }
            prop_assert!(
                self.life.get(earlier) != Some(&Life::Queued),
                "{:?} granted before {:?}, which entered the queue for {:?} earlier",
                key,
                earlier,
                name
            );
        }
        Ok(())
    }
}

fn run(terminate_as: TerminateAs, clients: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    Harness::new(clients, terminate_as).run(ops)
}

proptest! {
    #![proptest_config(config())]

    /// Plain exclusive requests and releases: FIFO grants, one holder at a time.
    #[test]
    fn r20_fifo_matches_model((clients, _names, ops) in case(Mix { shared: 0, ..BASE })) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// Shared and exclusive mixed: coexisting shared holders, exclusion, no barging, and
    /// one pass granting every grantable request at the head.
    #[test]
    fn r22_r25_modes_and_no_barging_match_model((clients, _names, ops) in case(BASE)) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// ifAvailable: granted only with an empty queue and a compatible mode, otherwise
    /// `Unavailable` and never queued.
    #[test]
    fn r40_r43_if_available_matches_model((clients, _names, ops) in case(Mix { if_available: 40, ..BASE })) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// steal: evicts every holder, goes to the head, is granted at once; waiters keep
    /// their order; the last steal wins.
    #[test]
    fn r50_r54_steal_matches_model((clients, _names, ops) in case(Mix { steal: 25, if_available: 15, ..BASE })) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// Release while queued (abort), release after a steal or after `Unavailable`, release
    /// of keys never issued: removal and reprocessing, or a no-op returning false.
    #[test]
    fn r60_r63_abort_and_stray_releases_match_model(
        (clients, _names, ops) in case(Mix { release: 12, release_unknown: 3, steal: 10, if_available: 10, ..BASE })
    ) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// Terminate mid-sequence: drop the client's requests, release its locks, grant what
    /// that unblocks, never to the dying client; other clients are untouched.
    #[test]
    fn r80_terminate_matches_model(
        (clients, _names, ops) in case(Mix { terminate: 2, steal: 10, if_available: 10, ..BASE })
    ) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// The engine's one-pass terminate against §6 read literally (abort each request with
    /// a queue pass after each, then release each lock): same state, same grants, except
    /// the transient grants to the dying client that the literal reading makes.
    #[test]
    fn r80_terminate_matches_the_literal_spec_order(
        (clients, _names, ops) in case(Mix { terminate: 3, steal: 10, if_available: 10, ..BASE })
    ) {
        run(TerminateAs::Literally, clients, &ops)?;
    }

    /// Everything at once, plus requests the engine must refuse without effects or state
    /// change: duplicate keys, steal with ifAvailable or a shared mode.
    #[test]
    fn r13_r14_all_operations_and_refusals_match_model(
        (clients, _names, ops) in case(Mix {
            duplicate: 2, invalid: 2, release_unknown: 1, terminate: 1, restore: 1, steal: 10, if_available: 15, ..BASE
        })
    ) {
        run(TerminateAs::Documented, clients, &ops)?;
    }

    /// A new arbiter rebuilds the engine from the clients' reports (held locks, and queued
    /// requests at their acknowledged positions, in any order): the rebuild grants nothing
    /// (or, when a client never reports, what terminating it grants), and from then on the
    /// engine behaves as the old one would have (R-72: queue order kept; R-80).
    #[test]
    fn r72_restored_engine_matches_model(
        (clients, _names, ops) in case(Mix { restore: 3, terminate: 1, steal: 10, if_available: 10, ..BASE })
    ) {
        run(TerminateAs::Documented, clients, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// The model itself against hand-computed answers (the same scenarios as tests.rs).
// ---------------------------------------------------------------------------------------

fn k(client: u32, request: u64) -> RequestKey {
    RequestKey { client: ClientId(client), request: RequestId(request) }
}

fn model_req(m: &mut Model, key: RequestKey, mode: LockMode, flags: RequestFlags) -> Vec<Effect> {
    let mut out = Vec::new();
    assert_eq!(m.request(Req { key, name: vec![0x61], mode }, flags, &mut out), Ok(()));
    out
}

#[test]
fn model_r25_r24_one_pass_and_no_barging() {
    use Effect::Granted as G;
    let mut m = Model::default();
    let plain = RequestFlags::default();
    assert_eq!(model_req(&mut m, k(1, 1), EX, plain), [G(k(1, 1))]);
    for c in 2..5 {
        assert_eq!(model_req(&mut m, k(c, 1), SH, plain), []);
    }
    assert_eq!(model_req(&mut m, k(5, 1), EX, plain), []);
    assert_eq!(model_req(&mut m, k(6, 1), SH, plain), []);
    let mut out = Vec::new();
    assert!(m.release(k(1, 1), &mut out));
    assert_eq!(out, [G(k(2, 1)), G(k(3, 1)), G(k(4, 1))]);
}

#[test]
fn model_r42_r50_r51_if_available_and_steal() {
    use Effect::{Granted as G, Stolen as S, Unavailable as U};
    let mut m = Model::default();
    let plain = RequestFlags::default();
    let try_ = RequestFlags { if_available: true, steal: false };
    let steal = RequestFlags { if_available: false, steal: true };
    model_req(&mut m, k(1, 1), SH, plain);
    model_req(&mut m, k(2, 1), SH, plain);
    model_req(&mut m, k(3, 1), EX, plain);
    assert_eq!(model_req(&mut m, k(4, 1), SH, try_), [U(k(4, 1))]);
    assert_eq!(model_req(&mut m, k(4, 2), EX, steal), [S(k(1, 1)), S(k(2, 1)), G(k(4, 2))]);
    let mut out = Vec::new();
    assert!(!m.release(k(1, 1), &mut out));
    assert!(m.release(k(4, 2), &mut out));
    assert_eq!(out, [G(k(3, 1))]);
}

#[test]
fn model_r80_literal_terminate_grants_the_dying_client_transiently() {
    use Effect::Granted as G;
    // A shared holder (client 1); client 2 waits exclusive then shared; client 3 waits.
    let mut m = Model::default();
    let plain = RequestFlags::default();
    model_req(&mut m, k(1, 1), SH, plain);
    model_req(&mut m, k(2, 1), EX, plain);
    model_req(&mut m, k(2, 2), SH, plain);
    model_req(&mut m, k(3, 1), SH, plain);
    let mut literal = m.clone();
    let mut out = Vec::new();
    literal.terminate_literally(ClientId(2), &mut out);
    assert_eq!(out, [G(k(2, 2)), G(k(3, 1))], "aborting 2/1 grants 2/2 before 2/2 is dropped");
    out.clear();
    m.terminate(ClientId(2), &mut out);
    assert_eq!(out, [G(k(3, 1))]);
    assert_eq!(norm_model(&m), norm_model(&literal));
}
