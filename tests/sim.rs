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
//! * R-23: as the clients saw them, holds of an exclusive lock never overlap any other
//!   hold of the same name; a stolen holder's hold ends at the steal (R-50, R-53); after
//!   every arbiter step, the engine has no exclusive holder beside another holder;
//! * R-20: among non-steal requests for a name, grants follow arbiter arrival order;
//! * R-25: after every arbiter step, the head of every queue is blocked by the holders;
//! * R-41, R-42: `ifAvailable` is granted iff the queue is empty and the mode allows;
//! * R-51: a steal is granted at once;
//! * a request left waiting gets exactly one `Queued` ack, before its grant;
//! * every request settles exactly once (granted, unavailable, stolen, aborted) unless
//!   its client crashed or left; no message ever contradicts a client's state;
//! * R-80, R-81: `query()` never shows a disconnected client, nothing on a closed
//!   connection is served, and at quiescence the engine is empty.
//!
//!
//! The second half (`FSim`) adds arbiter failover as js/coord.js runs it: the arbiter dies,
//! possibly again while its successor recovers; see "Arbiter failover" below.
//!
//! `SIM_SEEDS=n` changes how many seeds each test runs; `SIM_SEED=s` runs one seed (of
//! every test) and prints its trace.

use std::collections::{BTreeMap, BTreeSet};

use web_locks_wasm::arbiter::Arbiter;
use web_locks_wasm::engine::*;
use web_locks_wasm::protocol::{ArbiterMsg, ClientMsg, Restored, WireLockInfo};

// ---------------------------------------------------------------------------------------
// Randomness (shared with tests/delegation_sim.rs).
// ---------------------------------------------------------------------------------------

#[path = "common/sim_support.rs"]
mod sim_support;
use sim_support::{seed_list, Rng};

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

fn random_job(rng: &mut Rng, p: &Profile) -> Job {
    let name = vec![u16::try_from(0x61 + rng.range(0, p.names - 1)).unwrap_or(0x61)];
    let roll = rng.range(0, 99);
    let steal = roll < p.steal;
    let if_available = !steal && roll < p.steal + p.if_available;
    let mode = if !steal && rng.chance(p.shared) { LockMode::Shared } else { LockMode::Exclusive };
    let abort_after = (!steal && !if_available && rng.chance(p.abort)).then(|| rng.range(0, p.max_hold));
    Job { name, mode, flags: RequestFlags { if_available, steal }, hold: rng.range(0, p.max_hold), abort_after }
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

    /// Connects a new client with a fresh script, starting now.
    fn spawn_client(&mut self) {
        let index = self.clients.len();
        let label: Vec<u16> = format!("client-{index}").encode_utf16().collect();
        let id = self.arbiter.connect();
        let n = self.rng.range(self.p.jobs.0, self.p.jobs.1);
        let jobs: Vec<Job> = (0..n).map(|_| random_job(&mut self.rng, &self.p)).collect();
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
                // Sent even after a steal: the victim's callback settles later (R-53).
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
                    #[cfg(feature = "services")]
                    ClientMsg::Acquire { .. } | ClientMsg::Renew { .. } | ClientMsg::QueryLabeled { .. } => {
                        unreachable!("the simulation sends no lock service messages")
                    }
                    ClientMsg::Ask { .. } | ClientMsg::Handback { .. } => {
                        unreachable!("delegation is simulated in tests/delegation_sim.rs")
                    }
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
                        // R-80: the context unloads; the arbiter drops everything it had.
                        self.detected[client] = true;
                        for r in self.arb.iter_mut().filter(|(k, _)| k.client == id).map(|(_, r)| r) {
                            r.state = ArbState::Gone;
                        }
                    }
                }
                // R-41, R-42: ifAvailable is granted iff the queue is empty and the mode allows.
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
                #[cfg(feature = "services")]
                ArbiterMsg::Expired { .. }
                | ArbiterMsg::TimedOut { .. }
                | ArbiterMsg::Renewed { .. }
                | ArbiterMsg::Deadlock { .. }
                | ArbiterMsg::Busy { .. } => {
                    unreachable!("no lock service messages here")
                }
                ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => unreachable!("no delegation here"),
                // A spec request closed a cycle: only a report, nothing changes.
                #[cfg(feature = "services")]
                ArbiterMsg::DeadlockReport { .. } => continue,
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
        // R-25: a queue pass stops only at a head that is blocked by the holders.
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

    /// R-20: a non-steal request is granted only when every non-steal request for the
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
            #[cfg(feature = "services")]
            ArbiterMsg::Expired { .. }
            | ArbiterMsg::TimedOut { .. }
            | ArbiterMsg::Renewed { .. }
            | ArbiterMsg::Deadlock { .. }
            | ArbiterMsg::Busy { .. } => {
                unreachable!("no lock service messages here")
            }
            ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => unreachable!("no delegation here"),
            // A spec request closed a cycle: only a report, nothing changes.
            #[cfg(feature = "services")]
            ArbiterMsg::DeadlockReport { .. } => return Ok(()),
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
            // R-61: a grant racing an abort is dropped; the abort's Release frees it.
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

/// R-23: an exclusive hold overlaps no other hold of its name. Holds are `[start, end)` in
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
    let (seeds, trace) = seed_list(test, default_seeds);
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

// =======================================================================================
// Arbiter failover, as js/coord.js runs it.
// =======================================================================================
//
// The arbiter context dies at random times: everything in flight to it is lost, and so is
// everything in flight from it (for some clients, a little of it still arrives). A new
// arbiter is elected after a while: it starts with `Arbiter::recovering()`, lists the
// probe databases (the clientIds of every live context, plus stale ones of contexts that
// died) and, once the listing arrives, calls `begin_recovery` with them. Its host watches
// every clientId it lists or hears from and reports `gone` once, after a random delay,
// for each of them that is dead. Clients hear of the new arbiter (its epoch) at random
// times and then do what `Client::switch` (src/bindings/mod.rs) does: a Hello with what
// they hold (granted, callback run or not) and what waits with an acknowledged queue
// position, then the unacknowledged requests again in id order, then their pending
// queries; from then on they drop messages of any other epoch. New clients join at any
// time, during recoveries too. A later arbiter may die before its recovery is over.
//
// Checked, besides what the single-arbiter simulation checks (R-25, R-41, R-42, R-51, one
// `Queued` ack per request left waiting, no message contradicting a client's state):
// * R-23 across failovers: as the clients saw them (from the grant's arrival, callback
//   run or not), exclusive holds never overlap another hold, except after a steal;
// * the recovery gate: a new arbiter sends nothing (no grant, ack or answer) before
//   `begin_recovery` and before every listed clientId re-registered or was reported gone;
// * R-20 across failovers: every request gets a FIFO ticket when it first reaches an
//   arbiter, and keeps it once its client got a `Queued` ack (however it comes back);
//   no non-steal request is granted while one with an earlier ticket, or an earlier one
//   of the same client, waits for the same name;
// * each arbiter's engine holds exactly what clients restored and sent since, and
//   refuses no restore;
// * R-72, R-80: a query answer lists exactly what the asking client holds and waits for
//   (as of its query, with the answers that reached it since), and only clients
//   registered with that arbiter and not gone;
// * at quiescence: the last arbiter ended its recovery and its engine is empty, every
//   live client switched to it, and every request and query of a live client settled.

/// A request across arbiters: which client (index), which of its requests.
type Rk = (usize, RequestId);

/// What a query answer must show for the client that asked: per request, its name, mode
/// and whether it is held (else waiting).
type Shadow = BTreeMap<RequestId, (Vec<u16>, LockMode, bool)>;

type Out = Vec<(ClientId, ArbiterMsg)>;

#[derive(Clone, Copy, Debug)]
struct Failover {
    /// Scripts, client faults (`crash`, `lose`, `rebirth`, `leave`) and delays, as above.
    base: Profile,
    /// How many times the arbiter dies at a random time.
    deaths: (u64, u64),
    /// Percent of new arbiters that die again soon after starting, mostly while recovering
    /// (at most two per run).
    relapse: u64,
    /// Percent of dead clients whose probe database a new arbiter still lists.
    stale: u64,
    /// Percent of arbiter deaths followed by a new client joining while the next one is
    /// elected or recovers.
    join: u64,
    /// Percent of clients to which a dead arbiter's in-flight messages still arrive for a
    /// while (and are then dropped if the client already switched).
    late: u64,
    /// Election delay; listing delay (`begin_recovery`); announcement delay (per client);
    /// delay of a granted callback's task.
    max_elect: u64,
    max_list: u64,
    max_learn: u64,
    max_task: u64,
    /// Keep a client that switched to a recovering arbiter alive until recovery ends (the
    /// `*_during_recovery*` tests turn this off to let it die or leave meanwhile).
    postpone: bool,
}

const FAILOVER: Failover = Failover {
    base: Profile { clients: (2, 6), jobs: (2, 10), names: 2, steal: 5, query: 50, ..CALM },
    deaths: (1, 3),
    relapse: 30,
    stale: 50,
    join: 60,
    late: 30,
    max_elect: 10,
    max_list: 15,
    max_learn: 15,
    max_task: 3,
    postpone: true,
};

/// A request as its client sees it (the bindings' phases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FSeen {
    /// `Phase::Queued`: sent, or to be sent once an arbiter is known.
    Waiting,
    /// `Phase::Granted` (callback task queued) or `Phase::Running { held: true }`; `stolen`
    /// once `Stolen` arrived (`Phase::Broken`).
    Holding { since: u64, running: bool, stolen: bool },
    /// Settled after a grant (the callback finished, or it was stolen).
    Released,
    /// `callback(null)` (ifAvailable).
    Unavailable,
    /// Aborted before its callback ran.
    Aborted,
}

#[derive(Clone, Debug)]
struct FReq {
    job: usize,
    seen: FSeen,
    /// The queue position of the last `Queued` ack (`Request::position`).
    position: Option<i64>,
    /// The FIFO ticket that goes with `position` (see `FSim::tickets`).
    ticket: Option<u64>,
    /// Epochs that acknowledged it.
    acks: BTreeSet<usize>,
}

struct FClient {
    label: Vec<u16>,
    alive: bool,
    crashed: bool,
    /// After a crash, its channel broke: the rest of its in-flight messages is lost.
    cut: bool,
    /// The arbiter (epoch) it registered with; 0: none yet (messages are not sent).
    epoch: usize,
    jobs: Vec<Job>,
    requests: BTreeMap<RequestId, FReq>,
    next_query: u32,
    /// Pending queries, with what the answer must show once sent.
    queries: BTreeMap<u32, Option<Shadow>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FState {
    /// Arrived while recovering: in the arbiter's buffer, not yet in the engine.
    Buffered,
    Queued,
    Held,
    Gone,
}

/// A request as one arbiter saw it.
#[derive(Clone, Debug)]
struct FArbReq {
    name: Vec<u16>,
    if_available: bool,
    steal: bool,
    /// FIFO order: taken from a global counter when the request first reaches an arbiter
    /// as a `Request`; kept across failovers once its client got a `Queued` ack for it.
    ticket: u64,
    state: FState,
    restored: bool,
    acked: bool,
}

/// One arbiter instance and what its host knows.
struct FArb {
    arbiter: Arbiter,
    alive: bool,
    /// The clientIds its listing found (indices), and whether `begin_recovery` ran.
    listed: Vec<usize>,
    began: bool,
    /// Recovery is over.
    served: bool,
    /// The connection of each client (a new one after `gone`, as the bus host does), and
    /// the client of every connection.
    conns: BTreeMap<usize, ClientId>,
    owner: BTreeMap<ClientId, usize>,
    /// Clients whose Hello it accepted, with that connection.
    registered: BTreeMap<usize, ClientId>,
    /// Probed clientIds; those reported `gone`; those gone or said Goodbye.
    watched: BTreeSet<usize>,
    gone: BTreeSet<usize>,
    closed: BTreeSet<usize>,
    reqs: BTreeMap<Rk, FArbReq>,
    /// The Releases it buffered while recovering, applied to `reqs` once it replays them.
    buffered_releases: Vec<Rk>,
    /// After its death: the clients its in-flight messages still reach.
    late: BTreeSet<usize>,
}

#[derive(Clone, Debug)]
enum FEv {
    Start {
        client: usize,
        job: usize,
    },
    Abort {
        client: usize,
        request: RequestId,
    },
    RunCallback {
        client: usize,
        request: RequestId,
    },
    EndHold {
        client: usize,
        request: RequestId,
    },
    Query {
        client: usize,
    },
    Crash {
        client: usize,
    },
    Leave {
        client: usize,
    },
    Join,
    /// The arbiter of `epoch` (or the current one, from the budget of deaths) dies.
    Kill {
        epoch: Option<usize>,
    },
    Elect,
    Begin {
        epoch: usize,
    },
    Learn {
        client: usize,
        epoch: usize,
    },
    Gone {
        epoch: usize,
        client: usize,
    },
    ToArbiter {
        client: usize,
        epoch: usize,
        words: Vec<u16>,
    },
    ToClient {
        client: usize,
        epoch: usize,
        words: Vec<u16>,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct FStats {
    requests: u64,
    grants: u64,
    steals: u64,
    unavailable: u64,
    aborts: u64,
    late_grants_after_abort: u64,
    crashes: u64,
    leaves: u64,
    joins_while_recovering: u64,
    deaths: u64,
    deaths_while_recovering: u64,
    recoveries: u64,
    restored_held: u64,
    restored_queued: u64,
    /// Restored holds that an arbiter had stolen (the victim never heard of it).
    restored_stolen: u64,
    /// Restored waiting requests that shared their name with an earlier restored one
    /// (their order is what the FIFO check protects).
    restored_behind: u64,
    /// Grants of requests that kept their ticket across a failover.
    carried_grants: u64,
    resent: u64,
    buffered: u64,
    stale_listed: u64,
    gone: u64,
    lost_to_dead: u64,
    lost_from_dead: u64,
    late_delivered: u64,
    old_epoch_dropped: u64,
    answers_checked: u64,
    postponed: u64,
}

impl FStats {
    fn add(&mut self, o: &FStats) {
        macro_rules! sum { ($($f:ident),*) => { $(self.$f += o.$f;)* } }
        sum!(
            requests,
            grants,
            steals,
            unavailable,
            aborts,
            late_grants_after_abort,
            crashes,
            leaves,
            joins_while_recovering,
            deaths,
            deaths_while_recovering,
            recoveries,
            restored_held,
            restored_queued,
            restored_stolen,
            restored_behind,
            carried_grants,
            resent,
            buffered,
            stale_listed,
            gone,
            lost_to_dead,
            lost_from_dead,
            late_delivered,
            old_epoch_dropped,
            answers_checked,
            postponed
        );
    }
}

struct FSim {
    p: Failover,
    rng: Rng,
    now: u64,
    step: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), FEv>,
    clients: Vec<FClient>,
    by_label: BTreeMap<Vec<u16>, usize>,
    last_up: Vec<u64>,
    last_down: Vec<u64>,
    /// Arbiter of epoch `e` is `arbs[e - 1]`.
    arbs: Vec<FArb>,
    deaths_left: u64,
    relapses_left: u64,
    /// The FIFO ticket counter (see `FArbReq::ticket`).
    tickets: u64,
    holds: Vec<Hold>,
    stolen_at: BTreeMap<RequestKey, u64>,
    stats: FStats,
    trace: Option<Vec<String>>,
}

fn key_of(rk: Rk) -> RequestKey {
    RequestKey { client: ClientId(rk.0 as u32), request: rk.1 }
}

impl FSim {
    fn new(seed: u64, p: Failover, trace: bool) -> Self {
        let mut sim = FSim {
            p,
            rng: Rng::new(seed),
            now: 0,
            step: 0,
            seq: 0,
            events: BTreeMap::new(),
            clients: Vec::new(),
            by_label: BTreeMap::new(),
            last_up: Vec::new(),
            last_down: Vec::new(),
            arbs: Vec::new(),
            deaths_left: 0,
            relapses_left: 2,
            tickets: 0,
            holds: Vec::new(),
            stolen_at: BTreeMap::new(),
            stats: FStats::default(),
            trace: trace.then(Vec::new),
        };
        let n = sim.rng.range(p.base.clients.0, p.base.clients.1);
        for _ in 0..n {
            sim.spawn_client();
        }
        // Every arbiter, the first one included, is born recovering.
        sim.elect();
        sim.deaths_left = sim.rng.range(p.deaths.0, p.deaths.1);
        let horizon = p.base.max_gap * p.base.jobs.1 + p.base.max_hold;
        for _ in 0..sim.deaths_left {
            let at = sim.rng.range(1, horizon);
            sim.schedule(at, FEv::Kill { epoch: None });
        }
        sim
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("t={:<4} step={:<5} {}", self.now, self.step, f()));
        }
    }

    fn schedule(&mut self, at: u64, ev: FEv) {
        self.seq += 1;
        self.events.insert((at, self.seq), ev);
    }

    /// The current arbiter's epoch, if it is alive.
    fn live_epoch(&self) -> Option<usize> {
        self.arbs.last().filter(|a| a.alive).map(|_| self.arbs.len())
    }

    fn arb(&mut self, epoch: usize) -> &mut FArb {
        &mut self.arbs[epoch - 1]
    }

    fn spawn_client(&mut self) {
        let index = self.clients.len();
        let b = self.p.base;
        let label: Vec<u16> = format!("client-{index}").encode_utf16().collect();
        let n = self.rng.range(b.jobs.0, b.jobs.1);
        let jobs: Vec<Job> = (0..n).map(|_| random_job(&mut self.rng, &b)).collect();
        let mut at = self.now;
        for job in 0..jobs.len() {
            at += self.rng.range(0, b.max_gap);
            self.schedule(at, FEv::Start { client: index, job });
        }
        for (percent, ev) in [
            (b.query, FEv::Query { client: index }),
            (b.query, FEv::Query { client: index }),
            (b.crash, FEv::Crash { client: index }),
            (b.leave, FEv::Leave { client: index }),
        ] {
            if self.rng.chance(percent) {
                let at = self.now + self.rng.range(0, b.max_gap * n + b.max_hold);
                self.schedule(at, ev);
            }
        }
        self.by_label.insert(label.clone(), index);
        self.clients.push(FClient {
            label,
            alive: true,
            crashed: false,
            cut: false,
            epoch: 0,
            jobs,
            requests: BTreeMap::new(),
            next_query: 1,
            queries: BTreeMap::new(),
        });
        self.last_up.push(0);
        self.last_down.push(0);
        // It asks who the arbiter is (WHO); the announcement comes back after a while.
        if let Some(epoch) = self.live_epoch() {
            let at = self.now + self.rng.range(0, self.p.max_learn);
            self.schedule(at, FEv::Learn { client: index, epoch });
        }
    }

    /// A new arbiter wins the election: born recovering, it lists the probe databases now
    /// and gets the listing after a while.
    fn elect(&mut self) {
        let epoch = self.arbs.len() + 1;
        let mut listed = Vec::new();
        for i in 0..self.clients.len() {
            if self.clients[i].alive {
                listed.push(i);
            } else if self.rng.chance(self.p.stale) {
                listed.push(i);
                self.stats.stale_listed += 1;
            }
        }
        self.log(|| format!("arbiter {epoch} elected; its listing: {listed:?}"));
        self.arbs.push(FArb {
            arbiter: Arbiter::recovering(),
            alive: true,
            listed,
            began: false,
            served: false,
            conns: BTreeMap::new(),
            owner: BTreeMap::new(),
            registered: BTreeMap::new(),
            watched: BTreeSet::new(),
            gone: BTreeSet::new(),
            closed: BTreeSet::new(),
            reqs: BTreeMap::new(),
            buffered_releases: Vec::new(),
            late: BTreeSet::new(),
        });
        let at = self.now + self.rng.range(0, self.p.max_list);
        self.schedule(at, FEv::Begin { epoch });
        for client in 0..self.clients.len() {
            if self.clients[client].alive {
                let at = self.now + self.rng.range(0, self.p.max_learn);
                self.schedule(at, FEv::Learn { client, epoch });
            }
        }
        if epoch > 1 && self.relapses_left > 0 && self.rng.chance(self.p.relapse) {
            self.relapses_left -= 1;
            let at = self.now + self.rng.range(0, self.p.max_list + self.p.max_learn);
            self.schedule(at, FEv::Kill { epoch: Some(epoch) });
        }
    }

    /// The host probes `client`'s database (once): if it is dead, `gone` follows.
    fn watch(&mut self, epoch: usize, client: usize) {
        if self.arb(epoch).watched.insert(client) && !self.clients[client].alive {
            let at = self.now + self.rng.range(0, self.p.base.max_detect);
            self.schedule(at, FEv::Gone { epoch, client });
        }
    }

    fn send(&mut self, client: usize, msg: ClientMsg) {
        let epoch = self.clients[client].epoch;
        if epoch == 0 {
            return; // no arbiter yet: `Client::switch` sends the state when one appears
        }
        let at = (self.now + self.rng.range(0, self.p.base.max_delay)).max(self.last_up[client]);
        self.last_up[client] = at;
        self.schedule(at, FEv::ToArbiter { client, epoch, words: msg.encode() });
    }

    /// What the arbiter should show for `client`, as far as the client knows.
    fn shadow(&self, client: usize) -> Shadow {
        let c = &self.clients[client];
        c.requests
            .iter()
            .filter_map(|(id, r)| {
                let j = &c.jobs[r.job];
                let held = match r.seen {
                    FSeen::Waiting => false,
                    FSeen::Holding { stolen: false, .. } => true,
                    _ => return None,
                };
                Some((*id, (j.name.clone(), j.mode, held)))
            })
            .collect()
    }

    fn send_query(&mut self, client: usize, id: u32) {
        if self.clients[client].epoch != 0 {
            self.send(client, ClientMsg::Query { id });
            let shadow = self.shadow(client);
            self.clients[client].queries.insert(id, Some(shadow));
        }
    }

    /// `Client::switch`: register with the arbiter of `epoch`.
    fn switch(&mut self, client: usize, epoch: usize) {
        self.clients[client].epoch = epoch;
        let c = &self.clients[client];
        let mut restore = Vec::new();
        let mut resend = Vec::new();
        for (id, r) in &c.requests {
            let j = &c.jobs[r.job];
            let position = match (r.seen, r.position) {
                (FSeen::Holding { stolen: false, .. }, _) => None,
                (FSeen::Waiting, Some(p)) => Some(p),
                (FSeen::Waiting, None) => {
                    resend.push(ClientMsg::Request { id: *id, name: j.name.clone(), mode: j.mode, flags: j.flags });
                    continue;
                }
                _ => continue,
            };
            restore.push(Restored {
                id: *id,
                name: j.name.clone(),
                mode: j.mode,
                position,
                extras: Default::default(),
            });
        }
        let label = c.label.clone();
        self.log(|| format!("client {client} switches to arbiter {epoch}: restore {restore:?}, resend {resend:?}"));
        self.stats.restored_held += restore.iter().filter(|r| r.position.is_none()).count() as u64;
        self.stats.restored_queued += restore.iter().filter(|r| r.position.is_some()).count() as u64;
        self.stats.resent += resend.len() as u64;
        self.send(client, ClientMsg::Hello { client: label, restore });
        for msg in resend {
            self.send(client, msg);
        }
        let queries: Vec<u32> = self.clients[client].queries.keys().copied().collect();
        for id in queries {
            self.send_query(client, id);
        }
    }

    fn end_hold(&mut self, client: usize, request: RequestId, since: u64) {
        let c = &self.clients[client];
        let j = &c.jobs[c.requests[&request].job];
        let hold =
            Hold { key: key_of((client, request)), name: j.name.clone(), mode: j.mode, start: since, end: self.step };
        self.holds.push(hold);
    }

    fn set_seen(&mut self, client: usize, request: RequestId, seen: FSeen) {
        if let Some(r) = self.clients[client].requests.get_mut(&request) {
            r.seen = seen;
        }
    }

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

    fn handle(&mut self, ev: FEv) -> Result<(), String> {
        match ev {
            FEv::Start { client, job } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let j = self.clients[client].jobs[job].clone();
                let id = RequestId(self.clients[client].requests.len() as u64 + 1);
                let r = FReq { job, seen: FSeen::Waiting, position: None, ticket: None, acks: BTreeSet::new() };
                self.clients[client].requests.insert(id, r);
                self.stats.requests += 1;
                self.log(|| format!("client {client} requests {id:?} {j:?}"));
                self.send(client, ClientMsg::Request { id, name: j.name, mode: j.mode, flags: j.flags });
                if let Some(after) = j.abort_after {
                    self.schedule(self.now + after, FEv::Abort { client, request: id });
                }
            }
            FEv::Abort { client, request } => {
                // The bindings' `abort`: before the callback runs (queued or granted).
                if !self.clients[client].alive {
                    return Ok(());
                }
                match self.clients[client].requests[&request].seen {
                    FSeen::Waiting => {}
                    FSeen::Holding { since, running: false, stolen: false } => self.end_hold(client, request, since),
                    _ => return Ok(()),
                }
                self.set_seen(client, request, FSeen::Aborted);
                self.stats.aborts += 1;
                self.log(|| format!("client {client} aborts {request:?}"));
                self.send(client, ClientMsg::Release { id: request });
            }
            FEv::RunCallback { client, request } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let FSeen::Holding { since, running: false, stolen } = self.clients[client].requests[&request].seen
                else {
                    return Ok(()); // aborted meanwhile
                };
                if stolen {
                    // Broken before its callback ran: the callback is skipped.
                    self.end_hold(client, request, since);
                    self.set_seen(client, request, FSeen::Released);
                } else {
                    self.set_seen(client, request, FSeen::Holding { since, running: true, stolen });
                    let c = &self.clients[client];
                    let hold = c.jobs[c.requests[&request].job].hold;
                    self.schedule(self.now + hold, FEv::EndHold { client, request });
                }
            }
            FEv::EndHold { client, request } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let FSeen::Holding { since, running: true, stolen } = self.clients[client].requests[&request].seen
                else {
                    return Err(format!("client {client} {request:?}: hold ended in an unexpected state"));
                };
                self.end_hold(client, request, since);
                self.set_seen(client, request, FSeen::Released);
                self.log(|| format!("client {client} releases {request:?}"));
                // A stolen lock is not released: the arbiter has forgotten it (`done`).
                if !stolen {
                    self.send(client, ClientMsg::Release { id: request });
                }
            }
            FEv::Query { client } => {
                if self.clients[client].alive {
                    let id = self.clients[client].next_query;
                    self.clients[client].next_query += 1;
                    self.clients[client].queries.insert(id, None);
                    self.send_query(client, id);
                }
            }
            FEv::Crash { client } | FEv::Leave { client } => {
                if !self.clients[client].alive {
                    return Ok(());
                }
                let epoch = self.clients[client].epoch;
                if self.p.postpone && epoch != 0 && self.live_epoch() == Some(epoch) && !self.arb(epoch).served {
                    self.stats.postponed += 1;
                    let at = self.now + self.rng.range(1, self.p.max_list);
                    self.schedule(at, ev);
                    return Ok(());
                }
                let crash = matches!(ev, FEv::Crash { .. });
                if crash {
                    self.stats.crashes += 1;
                    self.log(|| format!("client {client} crashes"));
                } else {
                    self.stats.leaves += 1;
                    self.log(|| format!("client {client} leaves"));
                    self.send(client, ClientMsg::Goodbye);
                }
                self.clients[client].alive = false;
                self.clients[client].crashed = crash;
                let holding: Vec<(RequestId, u64)> = self.clients[client]
                    .requests
                    .iter()
                    .filter_map(|(id, r)| match r.seen {
                        FSeen::Holding { since, .. } => Some((*id, since)),
                        _ => None,
                    })
                    .collect();
                for (request, since) in holding {
                    self.end_hold(client, request, since);
                }
                // Every live arbiter that probes it learns of the death after a while.
                for epoch in 1..=self.arbs.len() {
                    let a = &self.arbs[epoch - 1];
                    if a.alive && a.watched.contains(&client) {
                        let at = self.now + self.rng.range(0, self.p.base.max_detect);
                        self.schedule(at, FEv::Gone { epoch, client });
                    }
                }
                if self.rng.chance(self.p.base.rebirth) {
                    self.spawn_client();
                }
            }
            FEv::Join => {
                if self.live_epoch().is_none_or(|e| !self.arb(e).served) {
                    self.stats.joins_while_recovering += 1;
                }
                self.spawn_client();
                let index = self.clients.len() - 1;
                self.log(|| format!("client {index} joins"));
            }
            FEv::Kill { epoch } => {
                let Some(current) = self.live_epoch() else { return Ok(()) };
                match epoch {
                    Some(e) if e != current => return Ok(()),
                    Some(_) => {}
                    None if self.deaths_left == 0 => return Ok(()),
                    None => self.deaths_left -= 1,
                }
                self.stats.deaths += 1;
                if !self.arb(current).served {
                    self.stats.deaths_while_recovering += 1;
                }
                self.log(|| format!("arbiter {current} dies"));
                self.arb(current).alive = false;
                // Its in-flight messages are lost, except to some clients: those still arrive,
                // in order, maybe long after (then usually from an epoch left behind).
                for client in 0..self.clients.len() {
                    if self.rng.chance(self.p.late) {
                        self.arb(current).late.insert(client);
                        let shift = self.rng.range(0, self.p.max_elect + self.p.max_learn);
                        let in_flight: Vec<(u64, u64)> = self
                            .events
                            .iter()
                            .filter(|(_, ev)| matches!(ev, FEv::ToClient { client: c, epoch, .. } if *c == client && *epoch == current))
                            .map(|(k, _)| *k)
                            .collect();
                        for (at, seq) in in_flight {
                            if let Some(ev) = self.events.remove(&(at, seq)) {
                                self.events.insert((at + shift, seq), ev);
                            }
                        }
                    }
                }
                let at = self.now + self.rng.range(1, self.p.max_elect);
                self.schedule(at, FEv::Elect);
                if self.rng.chance(self.p.join) {
                    let at = self.now + self.rng.range(0, self.p.max_elect + self.p.max_list);
                    self.schedule(at, FEv::Join);
                }
            }
            FEv::Elect => self.elect(),
            FEv::Begin { epoch } => {
                if !self.arb(epoch).alive {
                    return Ok(());
                }
                let listed = self.arb(epoch).listed.clone();
                self.log(|| format!("arbiter {epoch}: begin_recovery({listed:?})"));
                self.arb(epoch).began = true;
                let labels: Vec<Vec<u16>> = listed.iter().map(|&c| self.clients[c].label.clone()).collect();
                let mut out = Vec::new();
                self.arb(epoch).arbiter.begin_recovery(labels, &mut out);
                for c in listed {
                    self.watch(epoch, c);
                }
                self.after_call(epoch, out, Vec::new())?;
            }
            FEv::Learn { client, epoch } => {
                if self.clients[client].alive && epoch > self.clients[client].epoch {
                    self.switch(client, epoch);
                }
            }
            FEv::Gone { epoch, client } => {
                if !self.arb(epoch).alive || !self.arb(epoch).gone.insert(client) {
                    return Ok(());
                }
                self.stats.gone += 1;
                self.log(|| format!("arbiter {epoch}: client {client} is gone"));
                let a = self.arb(epoch);
                a.closed.insert(client);
                // The bus host forgets the connection: a later message opens a new one.
                a.conns.remove(&client);
                for (_, r) in a.reqs.range_mut((client, RequestId(0))..=(client, RequestId(u64::MAX))) {
                    r.state = FState::Gone;
                }
                a.buffered_releases.retain(|rk| rk.0 != client);
                let label = self.clients[client].label.clone();
                let mut out = Vec::new();
                self.arb(epoch).arbiter.gone(&label, &mut out);
                if self.arb(epoch).arbiter.client(&label).is_some() {
                    return Err(format!("arbiter {epoch}: client {client} still registered after gone"));
                }
                self.after_call(epoch, out, Vec::new())?;
            }
            FEv::ToArbiter { client, epoch, words } => self.arbiter_receives(client, epoch, words)?,
            FEv::ToClient { client, epoch, words } => {
                let a = &self.arbs[epoch - 1];
                if !a.alive {
                    if a.late.contains(&client) {
                        self.stats.late_delivered += 1;
                    } else {
                        self.stats.lost_from_dead += 1;
                        return Ok(());
                    }
                }
                if !self.clients[client].alive {
                    return Ok(());
                }
                if self.clients[client].epoch != epoch {
                    // `clientReceive`: a message of another epoch is stale.
                    self.stats.old_epoch_dropped += 1;
                    return Ok(());
                }
                let msg = ArbiterMsg::decode(&words).map_err(|e| format!("arbiter message does not decode: {e:?}"))?;
                self.log(|| format!("client {client} <- arbiter {epoch}: {msg:?}"));
                self.receive(client, epoch, msg)?;
            }
        }
        Ok(())
    }

    fn arbiter_receives(&mut self, client: usize, epoch: usize, words: Vec<u16>) -> Result<(), String> {
        if !self.arb(epoch).alive {
            self.stats.lost_to_dead += 1;
            return Ok(());
        }
        if self.clients[client].crashed {
            if !self.clients[client].cut && self.rng.chance(self.p.base.lose) {
                self.clients[client].cut = true;
            }
            if self.clients[client].cut {
                return Ok(());
            }
        }
        let msg = ClientMsg::decode(&words).map_err(|e| format!("client message does not decode: {e:?}"))?;
        self.log(|| format!("arbiter {epoch} <- client {client}: {msg:?}"));
        let conn = match self.arb(epoch).conns.get(&client) {
            Some(&conn) => conn,
            None => {
                let a = self.arb(epoch);
                let conn = a.arbiter.connect();
                a.conns.insert(client, conn);
                a.owner.insert(conn, client);
                self.watch(epoch, client);
                conn
            }
        };
        let recovering = self.arb(epoch).arbiter.is_recovering();
        let member = {
            let a = &self.arbs[epoch - 1];
            a.registered.get(&client) == Some(&conn) && !a.closed.contains(&client)
        };
        // R-41, R-42 and R-51 for a request served at once.
        let mut try_grantable = None;
        let mut steal = None;
        if let ClientMsg::Request { id, name, mode, flags } = &msg {
            if member && !recovering {
                if flags.if_available {
                    let snap = self.arb(epoch).arbiter.engine().snapshot();
                    try_grantable = Some(((client, *id), grantable_now(&snap, name, *mode)));
                }
                if flags.steal {
                    steal = Some((client, *id));
                }
            }
        }
        let rejected = self.arb(epoch).arbiter.rejected;
        let mut out = Vec::new();
        self.arb(epoch).arbiter.handle(conn, msg.clone(), &mut out);
        let mut processed = Vec::new();
        match msg {
            #[cfg(feature = "services")]
            ClientMsg::Acquire { .. } | ClientMsg::Renew { .. } | ClientMsg::QueryLabeled { .. } => {
                unreachable!("the simulation sends no lock service messages")
            }
            ClientMsg::Ask { .. } | ClientMsg::Handback { .. } => {
                unreachable!("delegation is simulated in tests/delegation_sim.rs")
            }
            ClientMsg::Hello { client: label, restore } => {
                let accepted = self.arb(epoch).arbiter.client(&label) == Some(conn);
                if !accepted {
                    if !self.arb(epoch).gone.contains(&client) {
                        return Err(format!("arbiter {epoch} refused the Hello of live client {client}"));
                    }
                    return self.after_call(epoch, out, processed);
                }
                if self.arb(epoch).gone.contains(&client) {
                    return Err(format!("arbiter {epoch} registered client {client}, which it knows is gone"));
                }
                // (A Hello that ends the recovery also replays what was buffered, which may
                // be refused: that case is left to the engine check in `after_call`.)
                let replayed = !self.arb(epoch).arbiter.is_recovering() && !self.arb(epoch).served;
                if self.arb(epoch).arbiter.rejected != rejected && !replayed {
                    return Err(format!("arbiter {epoch} refused part of the restore of client {client}: {restore:?}"));
                }
                self.arb(epoch).registered.insert(client, conn);
                for r in restore {
                    let rk = (client, r.id);
                    let ticket = match r.position {
                        None => 0,
                        Some(_) => self.clients[client].requests[&r.id].ticket.ok_or("restored without a ticket")?,
                    };
                    let a = self.arb(epoch);
                    if r.position.is_some()
                        && a.reqs.values().any(|q| q.restored && q.state == FState::Queued && q.name == r.name)
                    {
                        self.stats.restored_behind += 1;
                    }
                    if r.position.is_none() && self.stolen_at.contains_key(&key_of(rk)) {
                        self.stats.restored_stolen += 1;
                    }
                    let state = if r.position.is_some() { FState::Queued } else { FState::Held };
                    let q = FArbReq {
                        name: r.name,
                        if_available: false,
                        steal: false,
                        ticket,
                        state,
                        restored: true,
                        acked: false,
                    };
                    self.arb(epoch).reqs.insert(rk, q);
                }
            }
            ClientMsg::Request { id, name, flags, .. } => {
                if member {
                    // A request whose client holds an ack (of an earlier arbiter) keeps its
                    // place, however it comes back (the bindings restore it in the Hello).
                    let ticket = match self.clients[client].requests.get(&id).and_then(|r| r.ticket) {
                        Some(ticket) => ticket,
                        None => {
                            self.tickets += 1;
                            self.tickets
                        }
                    };
                    let state = if recovering { FState::Buffered } else { FState::Queued };
                    let q = FArbReq {
                        name,
                        if_available: flags.if_available,
                        steal: flags.steal,
                        ticket,
                        state,
                        restored: false,
                        acked: false,
                    };
                    if self.arb(epoch).reqs.insert((client, id), q).is_some() {
                        return Err(format!("client {client} sent {id:?} twice to arbiter {epoch}"));
                    }
                    if recovering {
                        self.stats.buffered += 1;
                    } else {
                        processed.push((client, id));
                    }
                }
            }
            ClientMsg::Release { id } => {
                if member {
                    if recovering {
                        self.arb(epoch).buffered_releases.push((client, id));
                    } else if let Some(r) = self.arb(epoch).reqs.get_mut(&(client, id)) {
                        r.state = FState::Gone;
                    }
                }
            }
            ClientMsg::Goodbye => {
                let a = self.arb(epoch);
                a.closed.insert(client);
                for (_, r) in a.reqs.range_mut((client, RequestId(0))..=(client, RequestId(u64::MAX))) {
                    r.state = FState::Gone;
                }
                a.buffered_releases.retain(|rk| rk.0 != client);
            }
            ClientMsg::Query { .. } => {}
        }
        if let Some((rk, grantable)) = try_grantable {
            let want = if grantable { ArbiterMsg::Granted { id: rk.1 } } else { ArbiterMsg::Unavailable { id: rk.1 } };
            if !out.contains(&(conn, want.clone())) {
                return Err(format!("ifAvailable {rk:?}: expected {want:?}, got {out:?} (R-41, R-42)"));
            }
        }
        if let Some(rk) = steal {
            if !out.contains(&(conn, ArbiterMsg::Granted { id: rk.1 })) {
                return Err(format!("steal {rk:?} not granted at once (R-51): {out:?}"));
            }
        }
        self.after_call(epoch, out, processed)
    }

    /// Checks one step of the arbiter of `epoch` (its output `out`, for the requests it
    /// `processed`), then sends the messages on.
    fn after_call(&mut self, epoch: usize, out: Out, mut processed: Vec<Rk>) -> Result<(), String> {
        let recovering = self.arb(epoch).arbiter.is_recovering();
        let ended = !recovering && !self.arb(epoch).served;
        if ended {
            self.log(|| format!("arbiter {epoch} ends its recovery"));
            self.stats.recoveries += 1;
            let a = self.arb(epoch);
            a.served = true;
            for (rk, r) in a.reqs.iter_mut() {
                if r.state == FState::Buffered {
                    r.state = FState::Queued;
                    processed.push(*rk);
                }
            }
        }
        // Nothing is served before every listed client re-registered or is gone.
        if !out.is_empty() {
            let a = &self.arbs[epoch - 1];
            let missing: Vec<usize> =
                a.listed.iter().filter(|c| !a.registered.contains_key(c) && !a.gone.contains(c)).copied().collect();
            if recovering || !a.began || !missing.is_empty() {
                return Err(format!(
                    "arbiter {epoch} answered while recovering (began: {}, still recovering: {recovering}, \
                     not re-registered: {missing:?}): {out:?}",
                    a.began
                ));
            }
        }
        let mut owners = Vec::new();
        let mut granted: Vec<Rk> = Vec::new();
        for (conn, msg) in &out {
            let owner = self.arbs[epoch - 1].owner.get(conn).copied();
            let client = owner.ok_or_else(|| format!("arbiter {epoch} wrote to unknown {conn:?}"))?;
            owners.push(client);
            if let ArbiterMsg::Granted { id } = msg {
                granted.push((client, *id));
            }
        }
        let mut grant_index = 0;
        for ((_, msg), &client) in out.iter().zip(&owners) {
            if self.arbs[epoch - 1].closed.contains(&client) {
                return Err(format!("arbiter {epoch} served client {client}, which is gone: {msg:?}"));
            }
            let a = &self.arbs[epoch - 1];
            let engine = a.arbiter.engine();
            match msg {
                #[cfg(feature = "services")]
                ArbiterMsg::Expired { .. }
                | ArbiterMsg::TimedOut { .. }
                | ArbiterMsg::Renewed { .. }
                | ArbiterMsg::Deadlock { .. }
                | ArbiterMsg::Busy { .. } => {
                    unreachable!("no lock service messages here")
                }
                ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => unreachable!("no delegation here"),
                // A spec request closed a cycle: only a report, nothing changes.
                #[cfg(feature = "services")]
                ArbiterMsg::DeadlockReport { .. } => continue,
                ArbiterMsg::Granted { id } => {
                    grant_index += 1;
                    let rk = (client, *id);
                    let Some(r) = a.reqs.get(&rk) else {
                        return Err(format!("arbiter {epoch} granted {rk:?}, never requested"));
                    };
                    if r.state != FState::Queued {
                        return Err(format!("arbiter {epoch} granted {rk:?} in state {:?}", r.state));
                    }
                    // R-20, across failovers: no non-steal request with an earlier ticket, nor
                    // an earlier one of the same client, is overtaken (still queued after this
                    // step, or granted later in it).
                    if !r.steal {
                        let later = &granted[grant_index..];
                        let overtaken = a.reqs.iter().find(|(rk2, q)| {
                            **rk2 != rk
                                && !q.steal
                                && q.name == r.name
                                && q.state == FState::Queued
                                && (q.ticket < r.ticket || (rk2.0 == rk.0 && rk2.1 < rk.1))
                                && (later.contains(rk2)
                                    || a.registered
                                        .get(&rk2.0)
                                        .is_some_and(|&c| engine.is_queued(RequestKey { client: c, request: rk2.1 })))
                        });
                        if let Some((earlier, q)) = overtaken {
                            return Err(format!(
                                "arbiter {epoch} granted {rk:?} (ticket {}) before {earlier:?} (ticket {}) (R-20)",
                                r.ticket, q.ticket
                            ));
                        }
                    }
                    if r.restored {
                        self.stats.carried_grants += 1;
                    }
                    self.stats.grants += 1;
                    if let Some(r) = self.arb(epoch).reqs.get_mut(&rk) {
                        r.state = FState::Held;
                    }
                }
                ArbiterMsg::Queued { id, .. } => {
                    let rk = (client, *id);
                    match a.reqs.get(&rk) {
                        Some(r) if r.state == FState::Queued && !r.steal && !r.restored && !r.acked => {}
                        other => return Err(format!("arbiter {epoch}: {rk:?} acknowledged in state {other:?}")),
                    }
                    if let Some(r) = self.arb(epoch).reqs.get_mut(&rk) {
                        r.acked = true;
                    }
                }
                ArbiterMsg::Unavailable { id } => {
                    let rk = (client, *id);
                    match a.reqs.get(&rk) {
                        Some(r) if r.state == FState::Queued && r.if_available => {}
                        other => return Err(format!("arbiter {epoch}: {rk:?} unavailable in state {other:?}")),
                    }
                    self.stats.unavailable += 1;
                    if let Some(r) = self.arb(epoch).reqs.get_mut(&rk) {
                        r.state = FState::Gone;
                    }
                }
                ArbiterMsg::Stolen { id } => {
                    let rk = (client, *id);
                    let Some(r) = a.reqs.get(&rk).filter(|r| r.state == FState::Held) else {
                        return Err(format!("arbiter {epoch}: {rk:?} stolen while not held"));
                    };
                    let stealer = granted.iter().any(|g| a.reqs.get(g).is_some_and(|s| s.steal && s.name == r.name));
                    if !stealer {
                        return Err(format!("arbiter {epoch}: {rk:?} stolen without a steal"));
                    }
                    self.stats.steals += 1;
                    self.stolen_at.entry(key_of(rk)).or_insert(self.step);
                    if let Some(r) = self.arb(epoch).reqs.get_mut(&rk) {
                        r.state = FState::Gone;
                    }
                }
                ArbiterMsg::Snapshot { held, pending, .. } => {
                    // R-80: only clients registered with this arbiter and not gone.
                    for i in held.iter().chain(pending) {
                        let shown = self.by_label.get(&i.client).copied();
                        let ok = shown.is_some_and(|c| a.registered.contains_key(&c) && !a.closed.contains(&c));
                        if !ok {
                            return Err(format!("arbiter {epoch}: query shows {i:?}, not a live client of it"));
                        }
                    }
                }
            }
        }
        if ended {
            // The Releases it buffered were replayed after the grants of its restored queues.
            let a = self.arb(epoch);
            for rk in std::mem::take(&mut a.buffered_releases) {
                if let Some(r) = a.reqs.get_mut(&rk) {
                    r.state = FState::Gone;
                }
            }
        }
        let a = &self.arbs[epoch - 1];
        let engine = a.arbiter.engine();
        // A request left waiting is acknowledged with its position, once.
        for rk in processed {
            let Some(&c) = a.registered.get(&rk.0) else { continue };
            if engine.is_queued(RequestKey { client: c, request: rk.1 }) {
                let acks =
                    out.iter().filter(|(to, m)| *to == c && matches!(m, ArbiterMsg::Queued { id, .. } if *id == rk.1));
                if acks.count() != 1 {
                    return Err(format!("arbiter {epoch}: {rk:?} left waiting without one Queued ack: {out:?}"));
                }
            }
        }
        // The engine agrees with what the clients restored and sent since.
        for (rk, r) in &a.reqs {
            let (queued, held) = match a.registered.get(&rk.0) {
                Some(&c) => {
                    let key = RequestKey { client: c, request: rk.1 };
                    (engine.is_queued(key), engine.is_held(key))
                }
                None => (false, false),
            };
            if queued != (r.state == FState::Queued) || held != (r.state == FState::Held) {
                return Err(format!("arbiter {epoch}: {rk:?} engine queued={queued} held={held}, expected {r:?}"));
            }
        }
        if a.served {
            // R-25: a queue pass stops only at a head that is blocked by the holders.
            let snap = engine.snapshot();
            let mut per_name: BTreeMap<&[u16], (usize, usize)> = BTreeMap::new();
            for i in &snap.held {
                let e = per_name.entry(&i.name).or_default();
                e.0 += 1;
                e.1 += usize::from(i.mode == LockMode::Exclusive);
            }
            let mut heads: BTreeSet<&[u16]> = BTreeSet::new();
            for i in &snap.pending {
                if heads.insert(&i.name) {
                    let (holders, exclusive) = per_name.get(i.name.as_ref()).copied().unwrap_or_default();
                    let blocked = match i.mode {
                        LockMode::Exclusive => holders > 0,
                        LockMode::Shared => exclusive > 0,
                    };
                    if !blocked {
                        return Err(format!("arbiter {epoch}: head {i:?} is grantable but still queued (R-25)"));
                    }
                }
            }
        }
        for (conn, msg) in out {
            let client = self.arbs[epoch - 1].owner[&conn];
            let at = (self.now + self.rng.range(0, self.p.base.max_delay)).max(self.last_down[client]);
            self.last_down[client] = at;
            self.schedule(at, FEv::ToClient { client, epoch, words: msg.encode() });
        }
        Ok(())
    }

    /// `Client::receive`, for a message of the client's own epoch.
    fn receive(&mut self, client: usize, epoch: usize, msg: ArbiterMsg) -> Result<(), String> {
        let request = match msg {
            #[cfg(feature = "services")]
            ArbiterMsg::Expired { .. }
            | ArbiterMsg::TimedOut { .. }
            | ArbiterMsg::Renewed { .. }
            | ArbiterMsg::Deadlock { .. }
            | ArbiterMsg::Busy { .. } => {
                unreachable!("no lock service messages here")
            }
            ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => unreachable!("no delegation here"),
            // A spec request closed a cycle: only a report, nothing changes.
            #[cfg(feature = "services")]
            ArbiterMsg::DeadlockReport { .. } => return Ok(()),
            ArbiterMsg::Granted { id }
            | ArbiterMsg::Unavailable { id }
            | ArbiterMsg::Stolen { id }
            | ArbiterMsg::Queued { id, .. } => id,
            ArbiterMsg::Snapshot { id, held, pending } => {
                let shadow = match self.clients[client].queries.remove(&id) {
                    Some(Some(shadow)) => shadow,
                    other => return Err(format!("client {client}: answer to query {id}, pending as {other:?}")),
                };
                // R-72 after recovery: the answer lists exactly what this client holds and
                // waits for, as of its query (answers to it arrived since).
                let label = &self.clients[client].label;
                let mine = |list: &[WireLockInfo]| {
                    let mut v: Vec<(Vec<u16>, LockMode)> =
                        list.iter().filter(|i| i.client == *label).map(|i| (i.name.clone(), i.mode)).collect();
                    v.sort();
                    v
                };
                let expect = |h: bool| {
                    let mut v: Vec<(Vec<u16>, LockMode)> =
                        shadow.values().filter(|s| s.2 == h).map(|s| (s.0.clone(), s.1)).collect();
                    v.sort();
                    v
                };
                let (shown_held, shown_pending) = (mine(&held), mine(&pending));
                if shown_held != expect(true) || shown_pending != expect(false) {
                    return Err(format!(
                        "client {client}: query {id} of arbiter {epoch} shows held {shown_held:?}, pending \
                         {shown_pending:?}; the client has held {:?}, pending {:?}",
                        expect(true),
                        expect(false)
                    ));
                }
                self.stats.answers_checked += 1;
                return Ok(());
            }
        };
        let rk = (client, request);
        let Some(r) = self.clients[client].requests.get(&request).cloned() else {
            return Err(format!("client {client}: {msg:?} for a request never made"));
        };
        // What a query sent earlier must now show.
        for shadow in self.clients[client].queries.values_mut().flatten() {
            match msg {
                ArbiterMsg::Granted { .. } => {
                    if let Some(s) = shadow.get_mut(&request) {
                        s.2 = true;
                    }
                }
                ArbiterMsg::Unavailable { .. } | ArbiterMsg::Stolen { .. } => {
                    shadow.remove(&request);
                }
                _ => {}
            }
        }
        let flags = self.clients[client].jobs[r.job].flags;
        let next = match (&msg, r.seen) {
            (ArbiterMsg::Queued { position, .. }, FSeen::Waiting) => {
                let ticket = self.arbs[epoch - 1].reqs.get(&rk).map(|q| q.ticket);
                let c = self.clients[client].requests.get_mut(&request).ok_or("vanished")?;
                if !c.acks.insert(epoch) {
                    return Err(format!("client {client}: {request:?} acknowledged twice by arbiter {epoch}"));
                }
                c.position = Some(*position);
                c.ticket = ticket;
                FSeen::Waiting
            }
            (ArbiterMsg::Granted { .. }, FSeen::Waiting) => {
                let at = self.now + self.rng.range(0, self.p.max_task);
                self.schedule(at, FEv::RunCallback { client, request });
                FSeen::Holding { since: self.step, running: false, stolen: false }
            }
            // Aborted meanwhile: the bindings give the grant straight back.
            (ArbiterMsg::Granted { .. }, FSeen::Aborted) => {
                self.stats.late_grants_after_abort += 1;
                self.send(client, ClientMsg::Release { id: request });
                FSeen::Aborted
            }
            (ArbiterMsg::Unavailable { .. }, FSeen::Waiting) if flags.if_available => FSeen::Unavailable,
            (ArbiterMsg::Stolen { .. }, FSeen::Holding { since, running, stolen: false }) => {
                FSeen::Holding { since, running, stolen: true }
            }
            // The bindings forgot these requests: the message is ignored.
            (ArbiterMsg::Queued { .. } | ArbiterMsg::Stolen { .. }, FSeen::Aborted)
            | (ArbiterMsg::Stolen { .. }, FSeen::Released) => r.seen,
            _ => return Err(format!("client {client}: {msg:?} from arbiter {epoch} while {:?}", r.seen)),
        };
        self.set_seen(client, request, next);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        let epoch = self.arbs.len();
        let a = &self.arbs[epoch - 1];
        if a.arbiter.is_recovering() {
            let missing: Vec<usize> =
                a.listed.iter().filter(|c| !a.registered.contains_key(c) && !a.gone.contains(c)).copied().collect();
            return Err(format!(
                "arbiter {epoch} never ended its recovery (began: {}; listed {:?}; not re-registered: {missing:?}; \
                 registered {:?}; reported gone {:?})",
                a.began,
                a.listed,
                a.registered.keys().collect::<Vec<_>>(),
                a.gone
            ));
        }
        if !a.arbiter.engine().is_empty() {
            return Err(format!("engine not empty at quiescence: {:?}", a.arbiter.engine().snapshot()));
        }
        for (i, c) in self.clients.iter().enumerate() {
            if !c.alive {
                continue;
            }
            if c.epoch != epoch {
                return Err(format!("client {i} never switched to arbiter {epoch}"));
            }
            if let Some(id) = c.queries.keys().next() {
                return Err(format!("client {i}: query {id} never answered"));
            }
            for (request, r) in &c.requests {
                if matches!(r.seen, FSeen::Waiting | FSeen::Holding { .. }) {
                    return Err(format!("client {i} request {request:?} never settled: {:?}", r.seen));
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

fn run_failover(test: &str, p: Failover, default_seeds: u64) -> FStats {
    let (seeds, trace) = seed_list(test, default_seeds);
    let mut total = FStats::default();
    for seed in seeds {
        let mut sim = FSim::new(seed, p, trace);
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
// Failover tests.
// ---------------------------------------------------------------------------------------

/// The arbiter dies one to three times per run, sometimes again during the next recovery;
/// clients crash, leave, come back and join meanwhile. Exclusion and FIFO hold across
/// every failover, nothing is granted before the listed clients are back or gone, every
/// request settles, queries show what clients hold and wait for.
#[test]
fn r20_r80_sim_arbiter_failover_keeps_exclusion_and_fifo() {
    let p = Failover { base: Profile { crash: 20, lose: 30, rebirth: 40, leave: 10, ..FAILOVER.base }, ..FAILOVER };
    let s = run_failover("failover", p, 300);
    assert!(s.deaths > 300 && s.deaths_while_recovering > 20 && s.recoveries > 500, "{s:?}");
}

/// Without client faults, with one name, long holds and up to four deaths: long restored
/// queues whose order must survive every failover, many restored holds, many queries.
#[test]
fn r20_r72_sim_arbiter_failover_restores_queues_in_order() {
    let p =
        Failover { base: Profile { names: 1, max_hold: 30, abort: 10, ..FAILOVER.base }, deaths: (2, 4), ..FAILOVER };
    let s = run_failover("failover_order", p, 150);
    assert!(s.restored_behind > 1000 && s.carried_grants > 1000 && s.restored_held > 100, "{s:?}");
    assert!(s.answers_checked > 500 && s.old_epoch_dropped > 0 && s.late_delivered > 0, "{s:?}");
}

/// Steals across failovers: a victim that never heard of its steal restores its lock, a
/// stealer whose grant was lost steals again; victims' holds end at the (first) steal.
#[test]
fn r50_r53_sim_arbiter_failover_with_steals() {
    let p = Failover { base: Profile { steal: 20, crash: 15, rebirth: 50, max_hold: 30, ..FAILOVER.base }, ..FAILOVER };
    let s = run_failover("failover_steals", p, 150);
    assert!(s.steals > 300 && s.restored_held > 50 && s.restored_stolen > 0, "{s:?}");
}

/// The same as `r20_r80_sim_arbiter_failover_keeps_exclusion_and_fifo`, except that a
/// client that already switched to a recovering arbiter may die or leave before the
/// recovery ends: no answer while recovering, and the recovery still ends (both were
/// bugs once; see the two regression tests below).
#[test]
fn r80_sim_arbiter_failover_clients_die_during_recovery() {
    let p = Failover {
        base: Profile { crash: 20, lose: 30, rebirth: 40, leave: 10, ..FAILOVER.base },
        postpone: false,
        ..FAILOVER
    };
    run_failover("failover_die_recovering", p, 300);
}

fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// A context that re-registered with a recovering arbiter goes away (Goodbye, or its
/// probe fires: `gone`) while another listed context, which holds `x`, has not
/// re-registered yet. Regression: `disconnect` used to run `Engine::terminate`, which
/// reprocessed the queue of `x` and granted it at once: two exclusive holders.
#[test]
fn r80_disconnect_during_recovery_grants_nothing() {
    let x = |id, position| Restored {
        id: RequestId(id),
        name: units("x"),
        mode: LockMode::Exclusive,
        position,
        extras: Default::default(),
    };
    for goodbye in [true, false] {
        let mut a = Arbiter::recovering();
        let mut out = Vec::new();
        // "holder" holds x (granted by the arbiter that died); "first", then "second" wait.
        a.begin_recovery([units("holder"), units("first"), units("second")], &mut out);
        let first = a.connect();
        a.handle(first, ClientMsg::Hello { client: units("first"), restore: vec![x(1, Some(0))] }, &mut out);
        let second = a.connect();
        a.handle(second, ClientMsg::Hello { client: units("second"), restore: vec![x(1, Some(1))] }, &mut out);
        assert!(out.is_empty() && a.is_recovering());
        if goodbye {
            a.handle(first, ClientMsg::Goodbye, &mut out);
        } else {
            a.gone(&units("first"), &mut out);
        }
        assert!(a.is_recovering(), "still waiting for 'holder'");
        assert_eq!(out, vec![], "granted while 'holder', which holds x, has not re-registered (goodbye: {goodbye})");
    }
}

/// The listing a new arbiter gets from `indexedDB.databases()` was taken when it was
/// elected; meanwhile a listed context registered, died, and its probe fired (`gone`).
/// Regression: `begin_recovery` used to wait for that clientId again, and the host never
/// reports it a second time (js/coord.js probes each clientId once), so the recovery
/// never ended and nothing was ever granted.
#[test]
fn r80_gone_before_begin_recovery_does_not_stall_it() {
    let mut a = Arbiter::recovering();
    let mut out = Vec::new();
    let dying = a.connect();
    a.handle(dying, ClientMsg::Hello { client: units("dying"), restore: vec![] }, &mut out);
    a.gone(&units("dying"), &mut out);
    let other = a.connect();
    a.handle(other, ClientMsg::Hello { client: units("other"), restore: vec![] }, &mut out);
    let request = ClientMsg::Request {
        id: RequestId(1),
        name: units("x"),
        mode: LockMode::Exclusive,
        flags: RequestFlags::default(),
    };
    a.handle(other, request, &mut out);
    a.begin_recovery([units("dying"), units("other")], &mut out);
    assert!(!a.is_recovering(), "waits for 'dying', reported gone before the listing arrived");
    assert_eq!(out, vec![(other, ArbiterMsg::Granted { id: RequestId(1) })]);
}
