#![cfg(not(target_arch = "wasm32"))]
//! Multi-client simulation of one [`Arbiter`] with fault injection.
//!
//! A [`Sim`] (in the style of quinn-proto's `Pair::drive`) owns the arbiter, a virtual
//! clock and an event list. Between 2 and 8 scripted clients request random names and
//! modes (some `ifAvailable`, some `steal`), hold each grant for a random virtual time and
//! then send `Release`; some abort while queued; some send `Query`. Each client opens its
//! connection with `Hello`; some leave with `Goodbye`. Every message crosses the wire
//! codec and a per-client FIFO channel with a random delay. Faults: clients crash at
//! random times, the arbiter notices only after a random delay (`Arbiter::disconnect`),
//! a crashed client's channel breaks (the rest of its in-flight messages is lost, or held
//! back until after the disconnect), and a crashed client may come back as a new client
//! (a reload).
//!
//! Checked, over many seeds of a tiny xorshift generator:
//! * as the clients saw them, holds of an exclusive lock never overlap any other
//!   hold of the same name; a stolen holder's hold ends at the steal; after
//!   every arbiter step, the engine has no exclusive holder beside another holder;
//! * among non-steal requests for a name, grants follow arbiter arrival order;
//! * after every arbiter step, the head of every queue is blocked by the holders;
//! * `ifAvailable` is granted iff the queue is empty and the mode allows;
//! * a steal is granted at once;
//! * a request left waiting gets exactly one `Queued` ack, before its grant;
//! * every request settles exactly once (granted, unavailable, stolen, aborted) unless
//!   its client crashed or left; no message ever contradicts a client's state;
//! * `query()` never shows a disconnected client, nothing on a closed
//!   connection is served, and at quiescence the engine is empty.
//!
//! `SIM_SEEDS=n` changes how many seeds each test runs; `SIM_SEED=s` runs one seed (of
//! every test) and prints its trace.

use std::collections::{BTreeMap, BTreeSet};

use web_locks_wasm::arbiter::Arbiter;
use web_locks_wasm::engine::*;
use web_locks_wasm::protocol::{ArbiterMsg, ClientMsg};

// ---------------------------------------------------------------------------------------
// Randomness.
// ---------------------------------------------------------------------------------------

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

// ---------------------------------------------------------------------------------------
// Scenario parameters.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Profile {
    clients: (u64, u64),
    jobs: (u64, u64),
    names: u64,
    /// Percent of requests: shared, ifAvailable, steal, aborted later if still queued.
    shared: u64,
    if_available: u64,
    steal: u64,
    abort: u64,
    /// Percent of clients that send a `Query` now and then.
    query: u64,
    /// Percent of clients that crash; of a crashed client's in-flight messages that are
    /// lost, or held back until after the disconnect; of crashed clients that come back as
    /// a new client.
    crash: u64,
    lose: u64,
    straggle: u64,
    /// Whether a `Hello` may be held back past the disconnect too (see
    /// `closed_connection_stays_closed`).
    straggle_hello: bool,
    rebirth: u64,
    /// Percent of clients that leave gracefully (`pagehide`: `Goodbye`, then the
    /// connection closes).
    leave: u64,
    /// Upper bounds of the random delays, in virtual time units.
    max_delay: u64,
    max_hold: u64,
    max_gap: u64,
    max_detect: u64,
}

const CALM: Profile = Profile {
    clients: (2, 8),
    jobs: (1, 10),
    names: 3,
    shared: 40,
    if_available: 15,
    steal: 0,
    abort: 15,
    query: 30,
    crash: 0,
    lose: 0,
    straggle: 0,
    straggle_hello: false,
    rebirth: 0,
    leave: 0,
    max_delay: 6,
    max_hold: 20,
    max_gap: 12,
    max_detect: 30,
};

// ---------------------------------------------------------------------------------------
// Clients, as the simulation scripts them.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Job {
    name: Vec<u16>,
    mode: LockMode,
    flags: RequestFlags,
    hold: u64,
    /// Abort (send `Release`) this long after requesting, if still waiting.
    abort_after: Option<u64>,
}

/// A request as its client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Waiting,
    /// Callback running since this step; `stolen` once the `Stolen` message arrived.
    Holding {
        since: u64,
        stolen: bool,
    },
    /// The callback finished and `Release` was sent.
    Released {
        stolen: bool,
    },
    Unavailable,
    /// Aborted while waiting; `granted` once a racing `Granted` arrived (and was ignored).
    Aborted {
        granted: bool,
        stolen: bool,
    },
}

struct Client {
    id: ClientId,
    label: Vec<u16>,
    /// Still running its script: neither crashed nor gone.
    alive: bool,
    /// Crashed (as opposed to left gracefully): its in-flight messages may be lost.
    crashed: bool,
    jobs: Vec<Job>,
    requests: BTreeMap<RequestId, (usize, Seen)>,
}

/// A hold as the client saw it, from its `Granted` to its `Release`, its crash or the steal.
#[derive(Clone, Debug, PartialEq)]
struct Hold {
    key: RequestKey,
    name: Vec<u16>,
    mode: LockMode,
    start: u64,
    end: u64,
}

/// A request as the arbiter saw it, for the FIFO check.
#[derive(Clone, Debug)]
struct ArbReq {
    name: Vec<u16>,
    mode: LockMode,
    steal: bool,
    /// Arrival order at the arbiter.
    arrival: u64,
    state: ArbState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArbState {
    Queued,
    Held,
    Gone,
}

/// Where the channel of a crashed client broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    None,
    Lost,
    HeldBack,
}

#[derive(Clone, Debug)]
enum Ev {
    Start { client: usize, job: usize },
    Abort { client: usize, request: RequestId },
    EndHold { client: usize, request: RequestId },
    Query { client: usize },
    Crash { client: usize },
    Leave { client: usize },
    Detect { client: usize },
    ToArbiter { client: usize, words: Vec<u16> },
    ToClient { client: usize, words: Vec<u16> },
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    requests: u64,
    grants: u64,
    unavailable: u64,
    steals: u64,
    aborts: u64,
    late_grants_after_abort: u64,
    crashes: u64,
    leaves: u64,
    lost: u64,
    rejected: u64,
    queries: u64,
    max_queue: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.requests += o.requests;
        self.grants += o.grants;
        self.unavailable += o.unavailable;
        self.steals += o.steals;
        self.aborts += o.aborts;
        self.late_grants_after_abort += o.late_grants_after_abort;
        self.crashes += o.crashes;
        self.leaves += o.leaves;
        self.lost += o.lost;
        self.rejected += o.rejected;
        self.queries += o.queries;
        self.max_queue = self.max_queue.max(o.max_queue);
    }
}

// ---------------------------------------------------------------------------------------
// The simulation.
// ---------------------------------------------------------------------------------------

struct Sim {
    p: Profile,
    rng: Rng,
    arbiter: Arbiter,
    now: u64,
    /// Logical step: one per event handled; orders events that share a virtual time.
    step: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    clients: Vec<Client>,
    /// Per client: the delivery time of the last message on each channel (FIFO).
    last_up: Vec<u64>,
    last_down: Vec<u64>,
    /// The arbiter has disconnected this client, or will at this time.
    detected: Vec<bool>,
    detect_at: Vec<u64>,
    cut: Vec<Cut>,
    /// When each client's Hello reaches the arbiter (unless lost).
    hello_at: Vec<u64>,
    holds: Vec<Hold>,
    /// Step at which the arbiter stole each stolen request.
    stolen_at: BTreeMap<RequestKey, u64>,
    arb: BTreeMap<RequestKey, ArbReq>,
    arrivals: u64,
    expected_rejections: u64,
    maybe_rejected: u64,
    /// Requests acknowledged as queued.
    acked: BTreeSet<RequestKey>,
    stats: Stats,
    trace: Option<Vec<String>>,
}

impl Sim {
    fn new(seed: u64, p: Profile, trace: bool) -> Self {
        let mut sim = Sim {
            p,
            rng: Rng::new(seed),
            arbiter: Arbiter::new(),
            now: 0,
            step: 0,
            seq: 0,
            events: BTreeMap::new(),
            clients: Vec::new(),
            last_up: Vec::new(),
            last_down: Vec::new(),
            detected: Vec::new(),
            detect_at: Vec::new(),
            cut: Vec::new(),
            hello_at: Vec::new(),
            holds: Vec::new(),
            stolen_at: BTreeMap::new(),
            arb: BTreeMap::new(),
            arrivals: 0,
            expected_rejections: 0,
            maybe_rejected: 0,
            acked: BTreeSet::new(),
            stats: Stats::default(),
            trace: trace.then(Vec::new),
        };
        let n = sim.rng.range(p.clients.0, p.clients.1);
        for _ in 0..n {
            sim.spawn_client();
        }
        sim
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("t={:<4} step={:<5} {}", self.now, self.step, f()));
        }
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((at, self.seq), ev);
    }

    fn random_job(&mut self) -> Job {
        let p = self.p;
        let name = vec![u16::try_from(0x61 + self.rng.range(0, p.names - 1)).unwrap_or(0x61)];
        let roll = self.rng.range(0, 99);
        let steal = roll < p.steal;
        let if_available = !steal && roll < p.steal + p.if_available;
        let mode = if !steal && self.rng.chance(p.shared) { LockMode::Shared } else { LockMode::Exclusive };
        let abort_after = (!steal && !if_available && self.rng.chance(p.abort)).then(|| self.rng.range(0, p.max_hold));
        Job {
            name,
            mode,
            flags: RequestFlags { if_available, steal },
            hold: self.rng.range(0, p.max_hold),
            abort_after,
        }
    }

    /// Connects a new client with a fresh script, starting now.
    fn spawn_client(&mut self) {
        let index = self.clients.len();
        let label: Vec<u16> = format!("client-{index}").encode_utf16().collect();
        let id = self.arbiter.connect();
        let n = self.rng.range(self.p.jobs.0, self.p.jobs.1);
        let jobs: Vec<Job> = (0..n).map(|_| self.random_job()).collect();
        let mut at = self.now;
        for job in 0..jobs.len() {
            at += self.rng.range(0, self.p.max_gap);
            self.schedule(at, Ev::Start { client: index, job });
        }
        if self.rng.chance(self.p.query) {
            let at = self.now + self.rng.range(0, self.p.max_gap * n);
            self.schedule(at, Ev::Query { client: index });
        }
        if self.rng.chance(self.p.crash) {
            let at = self.now + self.rng.range(0, self.p.max_gap * n + self.p.max_hold);
            self.schedule(at, Ev::Crash { client: index });
        }
        if self.rng.chance(self.p.leave) {
            let at = self.now + self.rng.range(0, self.p.max_gap * n + self.p.max_hold);
            self.schedule(at, Ev::Leave { client: index });
        }
        self.clients.push(Client {
            id,
            label: label.clone(),
            alive: true,
            crashed: false,
            jobs,
            requests: BTreeMap::new(),
        });
        self.last_up.push(0);
        self.last_down.push(0);
        self.detected.push(false);
        self.detect_at.push(u64::MAX);
        self.cut.push(Cut::None);
        // The first message on a new connection registers its clientId.
        self.send_up(index, ClientMsg::Hello { client: label, restore: Vec::new() });
        self.hello_at.push(self.last_up[index]);
    }

    fn send_up(&mut self, client: usize, msg: ClientMsg) {
        let at = (self.now + self.rng.range(0, self.p.max_delay)).max(self.last_up[client]);
        self.last_up[client] = at;
        self.schedule(at, Ev::ToArbiter { client, words: msg.encode() });
    }

    fn send_down(&mut self, client: usize, msg: &ArbiterMsg) {
        let at = (self.now + self.rng.range(0, self.p.max_delay)).max(self.last_down[client]);
        self.last_down[client] = at;
        self.schedule(at, Ev::ToClient { client, words: msg.encode() });
    }

    fn index_of(&self, id: ClientId) -> Result<usize, String> {
        self.clients.iter().position(|c| c.id == id).ok_or_else(|| format!("message for unknown {id:?}"))
    }

    /// Runs to quiescence, then checks the end state.
    fn drive(&mut self) -> Result<(), String> {
        while let Some(((at, _), ev)) = self.events.pop_first() {
            self.now = at;
            self.step += 1;
            self.handle(ev)?;
            if self.step > 1_000_000 {
                return Err("no quiescence after a million steps".into());
            }
        }
        self.finish()
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Start { client, job } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let j = self.clients[client].jobs[job].clone();
                let id = RequestId(self.clients[client].requests.len() as u64 + 1);
                self.clients[client].requests.insert(id, (job, Seen::Waiting));
                self.stats.requests += 1;
                self.log(|| format!("client {client} requests {id:?} {j:?}"));
                self.send_up(client, ClientMsg::Request { id, name: j.name, mode: j.mode, flags: j.flags });
                if let Some(after) = j.abort_after {
                    self.schedule(self.now + after, Ev::Abort { client, request: id });
                }
            }
            Ev::Abort { client, request } => {
                let c = &mut self.clients[client];
                if c.alive && matches!(c.requests.get(&request), Some((_, Seen::Waiting))) {
                    if let Some((_, seen)) = c.requests.get_mut(&request) {
                        *seen = Seen::Aborted { granted: false, stolen: false };
                    }
                    self.stats.aborts += 1;
                    self.log(|| format!("client {client} aborts {request:?}"));
                    self.send_up(client, ClientMsg::Release { id: request });
                }
            }
            Ev::EndHold { client, request } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let key = RequestKey { client: self.clients[client].id, request };
                let Some((job, Seen::Holding { since, stolen })) = self.clients[client].requests.get(&request).copied()
                else {
                    return Err(format!("{key:?}: hold ended in an unexpected state"));
                };
                self.end_hold(client, key, job, since);
                if let Some((_, seen)) = self.clients[client].requests.get_mut(&request) {
                    *seen = Seen::Released { stolen };
                }
                self.log(|| format!("client {client} releases {request:?}"));
                // Sent even after a steal: the victim's callback settles later.
                self.send_up(client, ClientMsg::Release { id: request });
            }
            Ev::Query { client } => {
                if self.clients[client].alive {
                    self.send_up(client, ClientMsg::Query { id: client as u32 });
                }
            }
            Ev::Crash { client } | Ev::Leave { client } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let crash = matches!(ev, Ev::Crash { .. });
                self.clients[client].alive = false;
                self.clients[client].crashed = crash;
                if crash {
                    self.stats.crashes += 1;
                    self.log(|| format!("client {client} crashes"));
                } else {
                    self.stats.leaves += 1;
                    self.log(|| format!("client {client} leaves"));
                    self.send_up(client, ClientMsg::Goodbye);
                }
                let id = self.clients[client].id;
                let holding: Vec<(RequestId, usize, u64)> = self.clients[client]
                    .requests
                    .iter()
                    .filter_map(|(r, (job, seen))| match seen {
                        Seen::Holding { since, .. } => Some((*r, *job, *since)),
                        _ => None,
                    })
                    .collect();
                for (request, job, since) in holding {
                    self.end_hold(client, RequestKey { client: id, request }, job, since);
                }
                // The arbiter may notice the crash before the client's Hello arrives: a
                // closed connection stays closed (see closed_connection_stays_closed).
                let at = self.now + self.rng.range(0, self.p.max_detect);
                self.detect_at[client] = at;
                self.schedule(at, Ev::Detect { client });
                if self.rng.chance(self.p.rebirth) {
                    self.spawn_client();
                }
            }
            Ev::Detect { client } => {
                self.log(|| format!("arbiter disconnects client {client}"));
                self.detected[client] = true;
                let id = self.clients[client].id;
                let mut out = Vec::new();
                self.arbiter.disconnect(id, &mut out);
                for r in self.arb.iter_mut().filter(|(k, _)| k.client == id).map(|(_, r)| r) {
                    r.state = ArbState::Gone;
                }
                self.dispatch(out, None)?;
            }
            Ev::ToArbiter { client, words } => {
                if self.clients[client].crashed && !self.detected[client] {
                    // The channel of a crashed client breaks somewhere: from one message on,
                    // everything is lost, or held back until after the disconnect (in order).
                    let hello = matches!(ClientMsg::decode(&words), Ok(ClientMsg::Hello { .. }));
                    if self.cut[client] == Cut::None {
                        let roll = self.rng.range(0, 99);
                        if roll < self.p.lose {
                            self.cut[client] = Cut::Lost;
                        } else if roll < self.p.lose + self.p.straggle && (!hello || self.p.straggle_hello) {
                            self.cut[client] = Cut::HeldBack;
                        }
                    }
                    match self.cut[client] {
                        Cut::None => {}
                        Cut::Lost => {
                            self.stats.lost += 1;
                            self.log(|| format!("lost a message of crashed client {client}"));
                            return Ok(());
                        }
                        Cut::HeldBack => {
                            let at = (self.detect_at[client] + self.rng.range(0, self.p.max_delay))
                                .max(self.last_up[client]);
                            self.last_up[client] = at;
                            self.log(|| format!("holding back a message of crashed client {client} until t={at}"));
                            self.schedule(at, Ev::ToArbiter { client, words });
                            return Ok(());
                        }
                    }
                }
                let msg = ClientMsg::decode(&words).map_err(|e| format!("client message does not decode: {e:?}"))?;
                self.log(|| format!("arbiter <- client {client}: {msg:?}"));
                let id = self.clients[client].id;
                if self.detected[client] {
                    // Arrives after the disconnect: refused. Requests, releases and queries
                    // are counted; a late Hello or Goodbye may be.
                    match msg {
                        ClientMsg::Hello { .. } | ClientMsg::Goodbye => self.maybe_rejected += 1,
                        _ => self.expected_rejections += 1,
                    }
                    let mut out = Vec::new();
                    self.arbiter.handle(id, msg, &mut out);
                    let label = &self.clients[client].label;
                    if self.arbiter.client(label).is_some() {
                        return Err(format!("a Hello on the closed connection of client {client} registered it"));
                    }
                    let known = self.arbiter.engine().snapshot().held.iter().any(|i| i.client == id);
                    return if out.is_empty() && !known {
                        Ok(())
                    } else {
                        Err(format!("a message on a closed connection was served: {out:?}"))
                    };
                }
                let mut steal = None;
                match &msg {
                    ClientMsg::Request { id: request, name, mode, flags } => {
                        let key = RequestKey { client: id, request: *request };
                        self.arrivals += 1;
                        let r = ArbReq {
                            name: name.clone(),
                            mode: *mode,
                            steal: flags.steal,
                            arrival: self.arrivals,
                            state: ArbState::Queued,
                        };
                        self.arb.insert(key, r);
                        if flags.steal {
                            steal = Some(key);
                        }
                    }
                    ClientMsg::Release { id: request } => {
                        if let Some(r) = self.arb.get_mut(&RequestKey { client: id, request: *request }) {
                            r.state = ArbState::Gone;
                        }
                    }
                    ClientMsg::Query { .. } => self.stats.queries += 1,
                    ClientMsg::Hello { .. } => {}
                    ClientMsg::Goodbye => {
                        // the context unloads; the arbiter drops everything it had.
                        self.detected[client] = true;
                        for r in self.arb.iter_mut().filter(|(k, _)| k.client == id).map(|(_, r)| r) {
                            r.state = ArbState::Gone;
                        }
                    }
                }
                // ifAvailable is granted iff the queue is empty and the mode allows.
                let try_grantable = match &msg {
                    ClientMsg::Request { id: request, name, mode, flags } if flags.if_available => {
                        let key = RequestKey { client: id, request: *request };
                        Some((key, grantable_now(&self.arbiter.engine().snapshot(), name, *mode)))
                    }
                    _ => None,
                };
                let new_request = match &msg {
                    ClientMsg::Request { id: request, .. } => Some(RequestKey { client: id, request: *request }),
                    _ => None,
                };
                let mut out = Vec::new();
                self.arbiter.handle(id, msg, &mut out);
                // A request left waiting is acknowledged with its queue position, once.
                if let Some(key) = new_request.filter(|k| self.arbiter.engine().is_queued(*k)) {
                    let acks = out
                        .iter()
                        .filter(|(c, m)| *c == id && matches!(m, ArbiterMsg::Queued { id, .. } if *id == key.request));
                    if acks.count() != 1 {
                        return Err(format!("{key:?} left waiting without one Queued ack: {out:?}"));
                    }
                }
                if let Some((key, grantable)) = try_grantable {
                    let want = if grantable {
                        ArbiterMsg::Granted { id: key.request }
                    } else {
                        ArbiterMsg::Unavailable { id: key.request }
                    };
                    if !out.contains(&(id, want.clone())) {
                        return Err(format!("ifAvailable {key:?}: expected {want:?}, got {out:?} (R-41, R-42)"));
                    }
                }
                self.dispatch(out, steal)?;
            }
            Ev::ToClient { client, words } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let msg = ArbiterMsg::decode(&words).map_err(|e| format!("arbiter message does not decode: {e:?}"))?;
                self.log(|| format!("client {client} <- arbiter: {msg:?}"));
                self.receive(client, msg)?;
            }
        }
        Ok(())
    }

    /// Records a finished hold as the client saw it.
    fn end_hold(&mut self, client: usize, key: RequestKey, job: usize, since: u64) {
        let j = &self.clients[client].jobs[job];
        let hold = Hold { key, name: j.name.clone(), mode: j.mode, start: since, end: self.step };
        self.holds.push(hold);
    }

    /// Checks the arbiter's output and the engine after one arbiter step, then sends the
    /// messages on.
    fn dispatch(&mut self, out: Vec<(ClientId, ArbiterMsg)>, steal: Option<RequestKey>) -> Result<(), String> {
        let mut stealer_granted = false;
        for (id, msg) in &out {
            match msg {
                ArbiterMsg::Granted { id: request } => {
                    let key = RequestKey { client: *id, request: *request };
                    stealer_granted |= Some(key) == steal;
                    self.check_fifo(key)?;
                    self.stats.grants += 1;
                }
                ArbiterMsg::Queued { id: request, .. } => {
                    let key = RequestKey { client: *id, request: *request };
                    match self.arb.get(&key) {
                        Some(r) if r.state == ArbState::Queued && !r.steal => {}
                        other => return Err(format!("{key:?} acknowledged as queued in state {other:?}")),
                    }
                }
                ArbiterMsg::Unavailable { id: request } => {
                    let key = RequestKey { client: *id, request: *request };
                    match self.arb.get_mut(&key) {
                        Some(r) if r.state == ArbState::Queued => r.state = ArbState::Gone,
                        other => return Err(format!("{key:?} unavailable in state {other:?}")),
                    }
                    self.stats.unavailable += 1;
                }
                ArbiterMsg::Stolen { id: request } => {
                    let key = RequestKey { client: *id, request: *request };
                    match self.arb.get_mut(&key) {
                        Some(r) if r.state == ArbState::Held => r.state = ArbState::Gone,
                        other => return Err(format!("{key:?} stolen in state {other:?}")),
                    }
                    if steal.is_none() {
                        return Err(format!("{key:?} stolen without a steal"));
                    }
                    self.stolen_at.insert(key, self.step);
                    self.stats.steals += 1;
                }
                ArbiterMsg::Snapshot { held, pending, .. } => {
                    let connected: BTreeSet<&[u16]> = self
                        .clients
                        .iter()
                        .zip(&self.detected)
                        .filter(|(_, d)| !**d)
                        .map(|(c, _)| c.label.as_slice())
                        .collect();
                    for i in held.iter().chain(pending) {
                        if !connected.contains(i.client.as_slice()) {
                            return Err(format!("query shows a disconnected client: {i:?} (R-80)"));
                        }
                    }
                    let mut shown: Vec<(Vec<u16>, LockMode, Vec<u16>)> =
                        held.iter().map(|i| (i.name.clone(), i.mode, i.client.clone())).collect();
                    let mut expected: Vec<(Vec<u16>, LockMode, Vec<u16>)> = Vec::new();
                    for (key, r) in &self.arb {
                        if r.state == ArbState::Held {
                            let c = self.index_of(key.client)?;
                            expected.push((r.name.clone(), r.mode, self.clients[c].label.clone()));
                        }
                    }
                    shown.sort();
                    expected.sort();
                    if shown != expected {
                        return Err(format!("query held {shown:?}, expected {expected:?}"));
                    }
                }
            }
        }
        if steal.is_some() && !stealer_granted {
            return Err(format!("steal {steal:?} not granted at once (R-51)"));
        }
        // The engine agrees with the arbiter-side bookkeeping, and exclusion holds.
        let engine = self.arbiter.engine();
        for (key, r) in &self.arb {
            let (queued, held) = (engine.is_queued(*key), engine.is_held(*key));
            if queued != (r.state == ArbState::Queued) || held != (r.state == ArbState::Held) {
                return Err(format!("{key:?}: engine queued={queued} held={held}, expected {:?}", r.state));
            }
        }
        let snap = engine.snapshot();
        let mut per_name: BTreeMap<&[u16], (usize, usize)> = BTreeMap::new();
        for i in &snap.held {
            let e = per_name.entry(&i.name).or_default();
            e.0 += 1;
            e.1 += usize::from(i.mode == LockMode::Exclusive);
        }
        if let Some((name, counts)) = per_name.iter().find(|(_, (n, x))| *x > 0 && *n > 1) {
            return Err(format!("{name:?} held by {} with {} exclusive (R-23)", counts.0, counts.1));
        }
        // a queue pass stops only at a head that is blocked by the holders.
        let mut heads: BTreeSet<&[u16]> = BTreeSet::new();
        for i in &snap.pending {
            if heads.insert(&i.name) {
                let (holders, exclusive) = per_name.get(i.name.as_ref()).copied().unwrap_or_default();
                let blocked = match i.mode {
                    LockMode::Exclusive => holders > 0,
                    LockMode::Shared => exclusive > 0,
                };
                if !blocked {
                    return Err(format!("head {i:?} is grantable but still queued (R-25)"));
                }
            }
        }
        self.stats.max_queue = self.stats.max_queue.max(snap.pending.len());
        for (id, msg) in out {
            let client = self.index_of(id)?;
            self.send_down(client, &msg);
        }
        Ok(())
    }

    /// a non-steal request is granted only when every non-steal request for the
    /// same name that reached the arbiter before it has left the queue.
    fn check_fifo(&mut self, key: RequestKey) -> Result<(), String> {
        let Some(r) = self.arb.get(&key).cloned() else {
            return Err(format!("{key:?} granted but never requested"));
        };
        if r.state != ArbState::Queued {
            return Err(format!("{key:?} granted in state {:?}", r.state));
        }
        if !r.steal {
            let overtaken = self
                .arb
                .iter()
                .find(|(_, q)| !q.steal && q.name == r.name && q.arrival < r.arrival && q.state == ArbState::Queued);
            if let Some((earlier, _)) = overtaken {
                return Err(format!("{key:?} granted before {earlier:?}, which arrived earlier (R-20)"));
            }
        }
        if let Some(r) = self.arb.get_mut(&key) {
            r.state = ArbState::Held;
        }
        Ok(())
    }

    /// A client handles a message from the arbiter.
    fn receive(&mut self, client: usize, msg: ArbiterMsg) -> Result<(), String> {
        let id = self.clients[client].id;
        let request = match msg {
            ArbiterMsg::Granted { id }
            | ArbiterMsg::Unavailable { id }
            | ArbiterMsg::Stolen { id }
            | ArbiterMsg::Queued { id, .. } => id,
            ArbiterMsg::Snapshot { id, .. } => {
                return if id == client as u32 { Ok(()) } else { Err(format!("snapshot {id} for client {client}")) };
            }
        };
        let key = RequestKey { client: id, request };
        let Some((job, seen)) = self.clients[client].requests.get(&request).copied() else {
            return Err(format!("{key:?}: {msg:?} for a request never made"));
        };
        let next = match (&msg, seen) {
            // The ack of a waiting request comes before its grant, and only once.
            (ArbiterMsg::Queued { .. }, Seen::Waiting | Seen::Aborted { granted: false, .. }) => {
                if !self.acked.insert(key) {
                    return Err(format!("{key:?} acknowledged twice"));
                }
                seen
            }
            (ArbiterMsg::Granted { .. }, Seen::Waiting) => {
                let hold = self.clients[client].jobs[job].hold;
                self.schedule(self.now + hold, Ev::EndHold { client, request });
                Seen::Holding { since: self.step, stolen: false }
            }
            // a grant racing an abort is dropped; the abort's Release frees it.
            (ArbiterMsg::Granted { .. }, Seen::Aborted { granted: false, stolen }) => {
                self.stats.late_grants_after_abort += 1;
                Seen::Aborted { granted: true, stolen }
            }
            (ArbiterMsg::Unavailable { .. }, Seen::Waiting) if self.clients[client].jobs[job].flags.if_available => {
                Seen::Unavailable
            }
            (ArbiterMsg::Stolen { .. }, Seen::Holding { since, stolen: false }) => {
                Seen::Holding { since, stolen: true }
            }
            (ArbiterMsg::Stolen { .. }, Seen::Released { stolen: false }) => Seen::Released { stolen: true },
            (ArbiterMsg::Stolen { .. }, Seen::Aborted { granted: true, stolen: false }) => {
                Seen::Aborted { granted: true, stolen: true }
            }
            _ => return Err(format!("{key:?}: {msg:?} while {seen:?}")),
        };
        if let Some((_, seen)) = self.clients[client].requests.get_mut(&request) {
            *seen = next;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        if !self.arbiter.engine().is_empty() {
            return Err(format!("engine not empty at quiescence: {:?}", self.arbiter.engine().snapshot()));
        }
        let rejected = self.arbiter.rejected;
        if rejected < self.expected_rejections || rejected > self.expected_rejections + self.maybe_rejected {
            return Err(format!(
                "arbiter rejected {rejected} messages, expected {} (+ up to {})",
                self.expected_rejections, self.maybe_rejected
            ));
        }
        self.stats.rejected = self.arbiter.rejected;
        for (i, c) in self.clients.iter().enumerate() {
            for (request, (_, seen)) in &c.requests {
                if c.alive && matches!(seen, Seen::Waiting | Seen::Holding { .. }) {
                    return Err(format!("client {i} request {request:?} never settled: {seen:?}"));
                }
            }
        }
        let holds: Vec<Hold> = self
            .holds
            .iter()
            .map(|h| Hold { end: h.end.min(self.stolen_at.get(&h.key).copied().unwrap_or(u64::MAX)), ..h.clone() })
            .collect();
        check_exclusion(&holds)
    }
}

/// §4.2 for a request that would enter the queue now: the queue for `name` is empty and
/// the mode condition holds.
fn grantable_now(snap: &Snapshot, name: &[u16], mode: LockMode) -> bool {
    let queue_empty = !snap.pending.iter().any(|i| *i.name == *name);
    let mut held = snap.held.iter().filter(|i| *i.name == *name);
    queue_empty
        && match mode {
            LockMode::Exclusive => held.next().is_none(),
            LockMode::Shared => !held.any(|i| i.mode == LockMode::Exclusive),
        }
}

/// an exclusive hold overlaps no other hold of its name. Holds are `[start, end)` in
/// steps; empty ones (stolen before the grant reached the client) are ignored.
fn check_exclusion(holds: &[Hold]) -> Result<(), String> {
    let mut by_name: BTreeMap<&[u16], Vec<&Hold>> = BTreeMap::new();
    for h in holds.iter().filter(|h| h.start < h.end) {
        by_name.entry(&h.name).or_default().push(h);
    }
    for hs in by_name.values_mut() {
        hs.sort_by_key(|h| h.start);
        for (i, a) in hs.iter().enumerate() {
            for b in hs.iter().skip(i + 1).take_while(|b| b.start < a.end) {
                if a.mode == LockMode::Exclusive || b.mode == LockMode::Exclusive {
                    return Err(format!("overlapping holds (R-23): {a:?} and {b:?}"));
                }
            }
        }
    }
    Ok(())
}

fn run_seeds(test: &str, p: Profile, default_seeds: u64) -> Stats {
    let (seeds, trace): (Vec<u64>, bool) = match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => (vec![seed], true),
        None => {
            let n = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_seeds);
            // FNV-1a of the test name, so that tests do not share seeds.
            let base =
                test.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3));
            ((0..n).map(|i| base.wrapping_add(i)).collect(), false)
        }
    };
    let mut total = Stats::default();
    for seed in seeds {
        let mut sim = Sim::new(seed, p, trace);
        let result = sim.drive();
        if let Some(t) = &sim.trace {
            println!("{}", t.join("\n"));
        }
        if let Err(e) = result {
            panic!("{test}: seed {seed} failed: {e}\n(rerun with SIM_SEED={seed} to print the trace)");
        }
        total.add(&sim.stats);
    }
    println!("{test}: {total:?}");
    total
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// No steals, no crashes: exclusion, FIFO, every request settles as granted, unavailable
/// or aborted.
#[test]
fn r20_r23_sim_exclusion_fifo_and_settlement() {
    let s = run_seeds("r20_r23", CALM, 300);
    assert!(s.grants > 1000 && s.unavailable > 0 && s.aborts > 0 && s.late_grants_after_abort > 0, "{s:?}");
    assert!(s.max_queue >= 4, "queues never got long: {s:?}");
}

/// Steals: victims' holds end at the steal, stealers are granted at once, waiters keep
/// their order, victims' later releases are harmless.
#[test]
fn r50_r53_sim_steals() {
    let s = run_seeds("r50_r53", Profile { steal: 15, ..CALM }, 300);
    assert!(s.steals > 100, "{s:?}");
}

/// Crashes and departures: the arbiter notices late, a crashed client's in-flight
/// messages are lost or arrive after the disconnect, some clients leave with `Goodbye`,
/// some come back as new clients; everything held or queued by a client that is gone is
/// freed, and `query()` never shows it again.
#[test]
fn r80_r81_sim_crashes_release_everything() {
    let s = run_seeds("r80_r81", Profile { crash: 40, lose: 30, straggle: 40, rebirth: 50, leave: 20, ..CALM }, 300);
    assert!(s.crashes > 100 && s.leaves > 20 && s.lost > 0 && s.rejected > 0, "{s:?}");
}

/// A `Hello` that reaches the arbiter after the host closed its connection (the context
/// died with the Hello still in flight) must not register the dead context.
#[test]
fn r80_sim_hello_after_the_disconnect() {
    run_seeds("hello_after", Profile { crash: 50, straggle: 100, straggle_hello: true, max_detect: 3, ..CALM }, 300);
}

/// The same, minimal: a connection closed before its Hello arrived stays closed.
#[test]
fn r80_closed_connection_stays_closed() {
    let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let mut a = Arbiter::new();
    let mut out = Vec::new();
    let c = a.connect();
    // The context dies with its Hello and a request in flight; the host closes the
    // connection (port closed, or probe fired) before they arrive.
    a.disconnect(c, &mut out);
    a.handle(c, ClientMsg::Hello { client: units("dead"), restore: vec![] }, &mut out);
    let request = ClientMsg::Request {
        id: RequestId(1),
        name: units("x"),
        mode: LockMode::Exclusive,
        flags: RequestFlags::default(),
    };
    a.handle(c, request, &mut out);
    assert!(a.engine().is_empty(), "a dead context holds a lock for ever: {:?}", a.engine().snapshot());
    assert_eq!(a.client(&units("dead")), None, "a closed connection was registered");
}

/// All of it at once, with more clients, fewer names and longer scripts.
#[test]
fn r20_r80_sim_everything() {
    let p = Profile {
        clients: (4, 8),
        jobs: (5, 15),
        names: 2,
        steal: 8,
        crash: 30,
        lose: 30,
        straggle: 30,
        rebirth: 40,
        leave: 15,
        query: 50,
        ..CALM
    };
    let s = run_seeds("everything", p, 200);
    assert!(s.steals > 0 && s.crashes > 0 && s.queries > 0 && s.aborts > 0 && s.unavailable > 0, "{s:?}");
}

// The checker itself must be able to fail.

fn hold(client: u32, name: u16, mode: LockMode, start: u64, end: u64) -> Hold {
    Hold { key: RequestKey { client: ClientId(client), request: RequestId(1) }, name: vec![name], mode, start, end }
}

#[test]
fn checker_rejects_overlapping_exclusive_holds() {
    let x = LockMode::Exclusive;
    let s = LockMode::Shared;
    assert!(check_exclusion(&[hold(1, 97, x, 0, 5), hold(2, 97, x, 5, 9)]).is_ok(), "touching is fine");
    assert!(check_exclusion(&[hold(1, 97, x, 0, 5), hold(2, 98, x, 1, 9)]).is_ok(), "other names are fine");
    assert!(check_exclusion(&[hold(1, 97, s, 0, 5), hold(2, 97, s, 1, 9)]).is_ok(), "shared is fine");
    assert!(check_exclusion(&[hold(1, 97, x, 0, 5), hold(2, 97, x, 4, 9)]).is_err());
    assert!(check_exclusion(&[hold(1, 97, s, 0, 5), hold(2, 97, x, 4, 9)]).is_err());
    assert!(check_exclusion(&[hold(1, 97, x, 0, 50), hold(2, 97, s, 1, 2), hold(3, 97, s, 10, 12)]).is_err());
    assert!(check_exclusion(&[hold(1, 97, x, 0, 5), hold(2, 97, s, 9, 9), hold(3, 97, x, 1, 1)]).is_ok(), "empty");
}

#[test]
fn rng_is_deterministic_and_spread() {
    let a: Vec<u64> = (0..5)
        .map({
            let mut r = Rng::new(7);
            move |_| r.range(0, 9)
        })
        .collect();
    let b: Vec<u64> = (0..5)
        .map({
            let mut r = Rng::new(7);
            move |_| r.range(0, 9)
        })
        .collect();
    assert_eq!(a, b);
    let mut r = Rng::new(0);
    let mut seen = [0u32; 10];
    for _ in 0..10_000 {
        seen[r.range(0, 9) as usize] += 1;
    }
    assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
}
