#![cfg(not(target_arch = "wasm32"))]
//! Multi-client simulation of delegation (protocol version 3): one [`Arbiter`], clients
//! that route every message through the real [`Delegation`] as the bindings do, random
//! requests on a few names (some shared, `ifAvailable`, `steal`, aborted while waiting),
//! queries, idle give-backs, crashes (in-flight messages lost or straggling, the arbiter
//! told after a delay) and arbiter restarts (a new arbiter recovers from what the clients
//! re-register, as js/coord.js runs it). Every message crosses the wire codec and a FIFO
//! channel per client with random delays.
//!
//! Checked, over many seeds:
//! * holds of an exclusive lock, as the clients saw them (local grants included),
//!   never overlap another hold of the same name; a stolen hold ends at the steal;
//! * R-20, within a client: its non-steal, non-`ifAvailable` requests on a name are
//!   granted in the order made;
//! * a query's answer lists every lock that some live client held throughout
//!   the query, and every request of the querying client made before the query and still
//!   waiting when the answer came;
//! * no request of a live client is lost: at quiescence all settled, the arbiter's engine
//!   is empty and nothing is owned or parked;
//! * without crashes or restarts the arbiter refuses no message.
//!
//! `SIM_SEEDS=n` changes how many seeds each test runs; `SIM_SEED=s` runs one seed and
//! prints its trace.

use std::collections::BTreeMap;

use web_locks_wasm::arbiter::Arbiter;
use web_locks_wasm::delegate::Delegation;
use web_locks_wasm::engine::*;
use web_locks_wasm::protocol::{ArbiterMsg, ClientMsg, Restored, WireLockInfo};

#[path = "common/sim_support.rs"]
mod sim_support;
use sim_support::{seed_list, Rng};

#[derive(Clone, Copy, Debug)]
struct Profile {
    clients: (u64, u64),
    jobs: (u64, u64),
    names: u64,
    shared: u64,
    if_available: u64,
    steal: u64,
    abort: u64,
    query: u64,
    /// Percent of clients that crash; of a crashed client's in-flight messages lost.
    crash: u64,
    lose: u64,
    /// Arbiter restarts per run (at random times).
    restarts: u64,
    max_delay: u64,
    max_hold: u64,
    max_gap: u64,
    max_detect: u64,
}

const BASE: Profile = Profile {
    clients: (1, 6),
    jobs: (1, 14),
    names: 3,
    shared: 30,
    if_available: 10,
    steal: 0,
    abort: 10,
    query: 40,
    crash: 0,
    lose: 0,
    restarts: 0,
    max_delay: 6,
    max_hold: 15,
    max_gap: 8,
    max_detect: 25,
};

#[derive(Clone, Debug)]
struct Job {
    name: Vec<u16>,
    mode: LockMode,
    flags: RequestFlags,
    hold: u64,
    abort_after: Option<u64>,
    /// Requests made at once (a burst on one name: a local queue).
    burst: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Holding,
    /// Stolen while holding: the callback runs on, the lock is gone.
    Broken,
    Done,
}

#[derive(Clone, Debug)]
struct Req {
    name: Vec<u16>,
    mode: LockMode,
    flags: RequestFlags,
    hold: u64,
    phase: Phase,
    position: Option<i64>,
    /// Index into `Sim::holds` while held.
    hold_index: Option<usize>,
    /// The step at which it was made.
    made: u64,
}

struct Client {
    conn: ClientId,
    label: Vec<u16>,
    alive: bool,
    deleg: Delegation,
    reqs: BTreeMap<u64, Req>,
    next_id: u64,
    queries: BTreeMap<u32, u64>,
    next_query: u32,
    jobs: Vec<Job>,
    idle_scheduled: bool,
}

#[derive(Clone, Debug)]
struct Hold {
    client: usize,
    id: u64,
    name: Vec<u16>,
    mode: LockMode,
    start: u64,
    end: Option<u64>,
}

#[derive(Debug)]
enum Ev {
    Start { client: usize, job: usize },
    Abort { client: usize, id: u64 },
    EndHold { client: usize, id: u64 },
    Query { client: usize },
    Idle { client: usize },
    Crash { client: usize },
    Detect { client: usize, epoch: u64 },
    Restart,
    Up { client: usize, epoch: u64, words: Vec<u16> },
    Down { client: usize, epoch: u64, words: Vec<u16> },
}

struct Sim {
    p: Profile,
    rng: Rng,
    arbiter: Arbiter,
    epoch: u64,
    now: u64,
    seq: u64,
    step: u64,
    events: BTreeMap<(u64, u64), Ev>,
    clients: Vec<Client>,
    last_up: Vec<u64>,
    last_down: Vec<u64>,
    holds: Vec<Hold>,
    /// Requests the arbiter stole: a grant still on its way starts a hold that is over.
    stolen: std::collections::BTreeSet<(usize, u64)>,
    crashes: u64,
    restarts: u64,
    grants: u64,
    local_grants: u64,
    handbacks: u64,
    queries: u64,
    trace: Option<Vec<String>>,
}

impl Sim {
    fn new(seed: u64, p: Profile, trace: bool) -> Self {
        let mut sim = Sim {
            p,
            rng: Rng::new(seed),
            arbiter: Arbiter::new(),
            epoch: 1,
            now: 0,
            seq: 0,
            step: 0,
            events: BTreeMap::new(),
            clients: Vec::new(),
            last_up: Vec::new(),
            last_down: Vec::new(),
            holds: Vec::new(),
            stolen: Default::default(),
            crashes: 0,
            restarts: 0,
            grants: 0,
            local_grants: 0,
            handbacks: 0,
            queries: 0,
            trace: trace.then(Vec::new),
        };
        let n = sim.rng.range(p.clients.0, p.clients.1);
        let mut horizon = 0;
        for i in 0..n {
            horizon = horizon.max(sim.spawn(i as usize));
        }
        for _ in 0..p.restarts {
            let at = sim.rng.range(1, horizon.max(2));
            sim.schedule(at, Ev::Restart);
        }
        sim
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("t={:<4} {}", self.now, f()));
        }
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((at, self.seq), ev);
    }

    /// A new client and its script; returns when its script ends, roughly.
    fn spawn(&mut self, index: usize) -> u64 {
        let label: Vec<u16> = format!("c{index}").encode_utf16().collect();
        let conn = self.arbiter.connect();
        let n = self.rng.range(self.p.jobs.0, self.p.jobs.1);
        let p = self.p;
        let jobs: Vec<Job> = (0..n)
            .map(|_| {
                let rng = &mut self.rng;
                let name = vec![0x61 + rng.range(0, p.names - 1) as u16];
                let roll = rng.range(0, 99);
                let steal = roll < p.steal;
                let if_available = !steal && roll < p.steal + p.if_available;
                let mode = if !steal && rng.chance(p.shared) { LockMode::Shared } else { LockMode::Exclusive };
                let abort_after = (!steal && !if_available && rng.chance(p.abort)).then(|| rng.range(0, p.max_hold));
                let burst = if rng.chance(20) { rng.range(2, 6) } else { 1 };
                Job {
                    name,
                    mode,
                    flags: RequestFlags { if_available, steal },
                    hold: rng.range(0, p.max_hold),
                    abort_after,
                    burst,
                }
            })
            .collect();
        let mut at = self.now;
        for job in 0..jobs.len() {
            at += self.rng.range(0, self.p.max_gap);
            self.schedule(at, Ev::Start { client: index, job });
        }
        if self.rng.chance(self.p.query) {
            for _ in 0..self.rng.range(1, 3) {
                let t = self.rng.range(0, at + self.p.max_hold);
                self.schedule(t, Ev::Query { client: index });
            }
        }
        if self.rng.chance(self.p.crash) {
            let t = self.rng.range(0, at + self.p.max_hold);
            self.schedule(t, Ev::Crash { client: index });
        }
        self.clients.push(Client {
            conn,
            label: label.clone(),
            alive: true,
            deleg: Delegation::new(),
            reqs: BTreeMap::new(),
            next_id: 1,
            queries: BTreeMap::new(),
            next_query: 1,
            jobs,
            idle_scheduled: false,
        });
        self.last_up.push(0);
        self.last_down.push(0);
        self.up(index, ClientMsg::Hello { client: label, restore: Vec::new() });
        at + self.p.max_hold
    }

    fn up(&mut self, client: usize, msg: ClientMsg) {
        let at = (self.now + self.rng.range(0, self.p.max_delay)).max(self.last_up[client]);
        self.last_up[client] = at;
        let epoch = self.epoch;
        self.schedule(at, Ev::Up { client, epoch, words: msg.encode() });
    }

    fn down(&mut self, client: usize, msg: &ArbiterMsg) {
        let at = (self.now + self.rng.range(0, self.p.max_delay)).max(self.last_down[client]);
        self.last_down[client] = at;
        let epoch = self.epoch;
        self.schedule(at, Ev::Down { client, epoch, words: msg.encode() });
    }

    /// The client sends `msg` through its delegation.
    fn send(&mut self, c: usize, msg: ClientMsg) -> Result<(), String> {
        let (mut send, mut local) = (Vec::new(), Vec::new());
        self.clients[c].deleg.outgoing(msg, true, &mut send, &mut local);
        self.after(c, send, local)
    }

    fn after(&mut self, c: usize, send: Vec<ClientMsg>, local: Vec<ArbiterMsg>) -> Result<(), String> {
        for m in send {
            if matches!(m, ClientMsg::Handback { .. }) {
                self.handbacks += 1;
            }
            self.log(|| format!("c{c} -> {m:?}"));
            self.up(c, m);
        }
        for a in local {
            self.log(|| format!("c{c} local {a:?}"));
            self.local_grants += u64::from(matches!(a, ArbiterMsg::Granted { .. }));
            self.answer(c, a)?;
        }
        if self.clients[c].deleg.maybe_idle() && !self.clients[c].idle_scheduled {
            self.clients[c].idle_scheduled = true;
            let at = self.now + self.rng.range(0, 3);
            self.schedule(at, Ev::Idle { client: c });
        }
        Ok(())
    }

    fn receive(&mut self, c: usize, msg: ArbiterMsg) -> Result<(), String> {
        let (mut send, mut local) = (Vec::new(), Vec::new());
        let rest = self.clients[c].deleg.incoming(msg, true, &mut send, &mut local);
        self.after(c, send, local)?;
        if let Some(m) = rest {
            self.answer(c, m)?;
        }
        Ok(())
    }

    fn start_hold(&mut self, c: usize, id: u64) -> Result<(), String> {
        let r = self.clients[c].reqs.get(&id).cloned().ok_or("grant of an unknown request")?;
        // R-20 within the client.
        if !r.flags.steal && !r.flags.if_available {
            for (&other, o) in self.clients[c].reqs.range(..id) {
                if o.name == r.name && o.phase == Phase::Waiting && !o.flags.steal && !o.flags.if_available {
                    return Err(format!(
                        "c{c}: request {id} granted before its earlier request {other} on the same name"
                    ));
                }
            }
        }
        // R-23 (a grant the arbiter already took back by a steal holds nothing).
        let over = self.stolen.contains(&(c, id));
        for h in self.holds.iter().filter(|_| !over) {
            if h.end.is_none() && h.name == r.name && (h.mode == LockMode::Exclusive || r.mode == LockMode::Exclusive) {
                return Err(format!(
                    "exclusion: c{c}/{id} ({:?}) granted on {:?} while c{}/{} ({:?}) holds it",
                    r.mode, r.name, h.client, h.id, h.mode
                ));
            }
        }
        self.holds.push(Hold {
            client: c,
            id,
            name: r.name.clone(),
            mode: r.mode,
            start: self.step,
            end: over.then_some(self.step),
        });
        let index = self.holds.len() - 1;
        if let Some(r) = self.clients[c].reqs.get_mut(&id) {
            r.phase = Phase::Holding;
            r.hold_index = Some(index);
        }
        self.grants += 1;
        let at = self.now + r.hold;
        self.schedule(at, Ev::EndHold { client: c, id });
        Ok(())
    }

    fn end_hold(&mut self, c: usize, id: u64) {
        if let Some(i) = self.clients[c].reqs.get(&id).and_then(|r| r.hold_index) {
            if self.holds[i].end.is_none() {
                self.holds[i].end = Some(self.step);
            }
        }
    }

    /// An answer (the arbiter's, or the local engine's) as the bindings handle it.
    fn answer(&mut self, c: usize, msg: ArbiterMsg) -> Result<(), String> {
        match msg {
            ArbiterMsg::Granted { id } => {
                let phase = self.clients[c].reqs.get(&id.0).map(|r| r.phase);
                match phase {
                    Some(Phase::Waiting) => self.start_hold(c, id.0)?,
                    // Aborted meanwhile: give the grant back.
                    None => self.send(c, ClientMsg::Release { id })?,
                    Some(p) => return Err(format!("c{c}: Granted {} while {p:?}", id.0)),
                }
            }
            ArbiterMsg::Queued { id, position } => {
                if let Some(r) = self.clients[c].reqs.get_mut(&id.0) {
                    r.position = Some(position);
                }
            }
            ArbiterMsg::Unavailable { id } => {
                if let Some(r) = self.clients[c].reqs.get_mut(&id.0) {
                    if !r.flags.if_available {
                        return Err(format!("c{c}: Unavailable for {} without ifAvailable", id.0));
                    }
                    r.phase = Phase::Done;
                }
            }
            ArbiterMsg::Stolen { id } => {
                self.end_hold(c, id.0);
                if let Some(r) = self.clients[c].reqs.get_mut(&id.0) {
                    if r.phase == Phase::Holding {
                        r.phase = Phase::Broken;
                    }
                }
            }
            ArbiterMsg::Snapshot { id, held, pending } => {
                let Some(sent) = self.clients[c].queries.remove(&id) else { return Ok(()) };
                self.check_snapshot(c, sent, &held, &pending)?;
            }
            ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => {
                return Err(format!("c{c}: delegation message reached the client: {msg:?}"))
            }
            // A spec request closed a cycle (feature `services`): a report only.
            #[cfg(feature = "services")]
            ArbiterMsg::DeadlockReport { .. } => {}
            // The lock services' answers: the simulation sends no lock service request.
            #[allow(unreachable_patterns)]
            other => return Err(format!("c{c}: unexpected {other:?}")),
        }
        Ok(())
    }

    /// what must be in the answer to a query that client `c` sent at `sent`.
    fn check_snapshot(
        &mut self,
        c: usize,
        sent: u64,
        held: &[WireLockInfo],
        pending: &[WireLockInfo],
    ) -> Result<(), String> {
        type Key = (Vec<u16>, Vec<u16>, LockMode);
        let count = |list: &[WireLockInfo]| {
            let mut m: BTreeMap<Key, usize> = BTreeMap::new();
            for i in list {
                *m.entry((i.client.clone(), i.name.clone(), i.mode)).or_default() += 1;
            }
            m
        };
        let mut want_held: BTreeMap<Key, usize> = BTreeMap::new();
        for h in &self.holds {
            let cl = &self.clients[h.client];
            let holding = cl.reqs.get(&h.id).is_some_and(|r| r.phase == Phase::Holding);
            if h.end.is_none() && h.start < sent && cl.alive && holding {
                *want_held.entry((cl.label.clone(), h.name.clone(), h.mode)).or_default() += 1;
            }
        }
        let mut want_pending: BTreeMap<Key, usize> = BTreeMap::new();
        let me = &self.clients[c];
        for r in me.reqs.values() {
            if r.phase == Phase::Waiting && r.made < sent && !r.flags.if_available {
                *want_pending.entry((me.label.clone(), r.name.clone(), r.mode)).or_default() += 1;
            }
        }
        for (want, got, what) in [(want_held, count(held), "held"), (want_pending, count(pending), "pending")] {
            for (k, n) in want {
                let have = got.get(&k).copied().unwrap_or(0);
                if have < n {
                    return Err(format!(
                        "c{c}: query sent at step {sent} lists {have} {what} {:?} on {:?} of {}, expected at least {n}",
                        k.2,
                        k.1,
                        String::from_utf16_lossy(&k.0)
                    ));
                }
            }
        }
        Ok(())
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Start { client: c, job } => {
                if !self.clients[c].alive {
                    return Ok(());
                }
                let j = self.clients[c].jobs[job].clone();
                for _ in 0..j.burst {
                    let id = self.clients[c].next_id;
                    self.clients[c].next_id += 1;
                    self.clients[c].reqs.insert(
                        id,
                        Req {
                            name: j.name.clone(),
                            mode: j.mode,
                            flags: j.flags,
                            hold: j.hold,
                            phase: Phase::Waiting,
                            position: None,
                            hold_index: None,
                            made: self.step,
                        },
                    );
                    if let Some(after) = j.abort_after {
                        self.schedule(self.now + after, Ev::Abort { client: c, id });
                    }
                    self.send(
                        c,
                        ClientMsg::Request { id: RequestId(id), name: j.name.clone(), mode: j.mode, flags: j.flags },
                    )?;
                }
            }
            Ev::Abort { client: c, id } => {
                if self.clients[c].alive && self.clients[c].reqs.get(&id).is_some_and(|r| r.phase == Phase::Waiting) {
                    self.clients[c].reqs.remove(&id);
                    self.send(c, ClientMsg::Release { id: RequestId(id) })?;
                }
            }
            Ev::EndHold { client: c, id } => {
                if !self.clients[c].alive {
                    return Ok(());
                }
                let phase = self.clients[c].reqs.get(&id).map(|r| r.phase);
                self.end_hold(c, id);
                if let Some(r) = self.clients[c].reqs.get_mut(&id) {
                    r.phase = Phase::Done;
                }
                if phase == Some(Phase::Holding) {
                    self.send(c, ClientMsg::Release { id: RequestId(id) })?;
                }
            }
            Ev::Query { client: c } => {
                if self.clients[c].alive {
                    let id = self.clients[c].next_query;
                    self.clients[c].next_query += 1;
                    self.clients[c].queries.insert(id, self.step);
                    self.queries += 1;
                    self.send(c, ClientMsg::Query { id })?;
                }
            }
            Ev::Idle { client: c } => {
                self.clients[c].idle_scheduled = false;
                if self.clients[c].alive {
                    let mut send = Vec::new();
                    self.clients[c].deleg.give_back_idle(&mut send);
                    self.after(c, send, Vec::new())?;
                }
            }
            Ev::Crash { client: c } => {
                if !self.clients[c].alive {
                    return Ok(());
                }
                self.crashes += 1;
                self.clients[c].alive = false;
                for h in self.holds.iter_mut().filter(|h| h.client == c && h.end.is_none()) {
                    h.end = Some(self.step);
                }
                let at = self.now + self.rng.range(0, self.p.max_detect);
                let epoch = self.epoch;
                self.schedule(at, Ev::Detect { client: c, epoch });
            }
            Ev::Detect { client: c, epoch } => {
                if epoch == self.epoch {
                    let mut out = Vec::new();
                    let label = self.clients[c].label.clone();
                    self.arbiter.gone(&label, &mut out);
                    self.deliver(out)?;
                }
            }
            Ev::Restart => self.restart()?,
            Ev::Up { client: c, epoch, words } => {
                if epoch != self.epoch {
                    return Ok(());
                }
                if !self.clients[c].alive && self.rng.chance(self.p.lose) {
                    return Ok(());
                }
                let msg = ClientMsg::decode(&words).map_err(|e| format!("decode up: {e:?}"))?;
                let mut out = Vec::new();
                let conn = self.clients[c].conn;
                self.arbiter.handle(conn, msg, &mut out);
                self.deliver(out)?;
            }
            Ev::Down { client: c, epoch, words } => {
                if epoch != self.epoch || !self.clients[c].alive {
                    return Ok(());
                }
                let msg = ArbiterMsg::decode(&words).map_err(|e| format!("decode down: {e:?}"))?;
                self.log(|| format!("c{c} <- {msg:?}"));
                self.receive(c, msg)?;
            }
        }
        Ok(())
    }

    /// The arbiter's output: a steal ends its victim's hold at once (the decision).
    fn deliver(&mut self, out: Vec<(ClientId, ArbiterMsg)>) -> Result<(), String> {
        for (to, msg) in out {
            let Some(c) = self.clients.iter().position(|x| x.conn == to) else { continue };
            if let ArbiterMsg::Stolen { id } = msg {
                self.end_hold(c, id.0);
                self.stolen.insert((c, id.0));
            }
            self.down(c, &msg);
        }
        Ok(())
    }

    /// The arbiter dies; a new one recovers from what the live clients re-register.
    fn restart(&mut self) -> Result<(), String> {
        self.restarts += 1;
        self.epoch += 1;
        self.log(|| "arbiter restart".into());
        self.arbiter = Arbiter::recovering();
        let mut live = Vec::new();
        for c in 0..self.clients.len() {
            self.clients[c].conn = self.arbiter.connect();
            self.last_up[c] = self.now;
            self.last_down[c] = self.now;
            if !self.clients[c].alive {
                continue;
            }
            live.push(self.clients[c].label.clone());
            self.clients[c].deleg.reset();
            let mut restore = Vec::new();
            let mut resend = Vec::new();
            for (&id, r) in &self.clients[c].reqs {
                match (r.phase, r.position) {
                    (Phase::Holding, _) => restore.push(Restored {
                        id: RequestId(id),
                        name: r.name.clone(),
                        mode: r.mode,
                        position: None,
                        extras: Default::default(),
                    }),
                    (Phase::Waiting, Some(p)) => restore.push(Restored {
                        id: RequestId(id),
                        name: r.name.clone(),
                        mode: r.mode,
                        position: Some(p),
                        extras: Default::default(),
                    }),
                    (Phase::Waiting, None) => resend.push(ClientMsg::Request {
                        id: RequestId(id),
                        name: r.name.clone(),
                        mode: r.mode,
                        flags: r.flags,
                    }),
                    _ => {}
                }
            }
            let label = self.clients[c].label.clone();
            self.up(c, ClientMsg::Hello { client: label, restore });
            for m in resend {
                self.send(c, m)?;
            }
            let queries: Vec<u32> = self.clients[c].queries.keys().copied().collect();
            for id in queries {
                self.send(c, ClientMsg::Query { id })?;
            }
        }
        let mut out = Vec::new();
        self.arbiter.begin_recovery(live, &mut out);
        self.deliver(out)
    }

    fn drive(&mut self) -> Result<(), String> {
        while let Some(((at, _), ev)) = self.events.pop_first() {
            self.now = at;
            self.step += 1;
            self.log(|| format!("{ev:?}").chars().take(160).collect());
            self.handle(ev)?;
            if self.step > 2_000_000 {
                return Err("no quiescence".into());
            }
        }
        for (c, cl) in self.clients.iter().enumerate() {
            if !cl.alive {
                continue;
            }
            for (id, r) in &cl.reqs {
                if matches!(r.phase, Phase::Waiting | Phase::Holding) {
                    return Err(format!("c{c}: request {id} never settled ({:?})", r.phase));
                }
            }
            if !cl.queries.is_empty() {
                return Err(format!("c{c}: a query never answered"));
            }
        }
        if !self.arbiter.engine().is_empty() {
            return Err(format!("at quiescence the engine still has {} entries", self.arbiter.engine().len()));
        }
        if self.arbiter.owns_any() {
            return Err("at quiescence a name is still owned or a message parked".into());
        }
        if self.crashes == 0 && self.restarts == 0 && self.arbiter.rejected != 0 {
            return Err(format!("the arbiter refused {} messages", self.arbiter.rejected));
        }
        Ok(())
    }
}

fn run(test: &str, p: Profile, default: u64) -> (u64, u64, u64, u64) {
    let (list, trace) = seed_list(test, default);
    let mut totals = (0, 0, 0, 0);
    for seed in list {
        let mut sim = Sim::new(seed, p, trace);
        let r = sim.drive();
        if let Some(t) = &sim.trace {
            for l in t {
                println!("{l}");
            }
        }
        if let Err(e) = r {
            panic!("seed {seed}: {e} (SIM_SEED={seed} prints the trace)");
        }
        totals.0 += sim.grants;
        totals.1 += sim.local_grants;
        totals.2 += sim.handbacks;
        totals.3 += sim.queries;
    }
    totals
}

#[test]
fn delegation_calm() {
    let t = run("delegation_calm", BASE, 3000);
    println!("grants {} (local {}), handbacks {}, queries {}", t.0, t.1, t.2, t.3);
    assert!(t.1 > t.0 / 10, "local grants should be common: {t:?}");
}

#[test]
fn delegation_with_steals() {
    run("delegation_with_steals", Profile { steal: 15, ..BASE }, 2000);
}

#[test]
fn delegation_with_crashes() {
    run("delegation_with_crashes", Profile { crash: 40, lose: 50, steal: 5, ..BASE }, 2000);
}

#[test]
fn delegation_with_arbiter_restarts() {
    run("delegation_with_arbiter_restarts", Profile { restarts: 2, crash: 20, lose: 50, steal: 5, ..BASE }, 2000);
}

#[test]
fn delegation_one_client() {
    let t = run("delegation_one_client", Profile { clients: (1, 1), query: 20, ..BASE }, 1000);
    assert!(t.1 > t.0 / 2, "one client: most grants local: {t:?}");
}
