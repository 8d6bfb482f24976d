#![cfg(all(not(target_arch = "wasm32"), feature = "services"))]
//! Multi-client simulation of the lock services (issue #9) on one [`Arbiter`], with a
//! virtual clock, crashes and arbiter restarts.
//!
//! Clients send spec requests and lock service requests (`Acquire` with labels, leases and
//! wait limits), release, renew, query; they crash (the arbiter is told `gone`) and new
//! ones arrive; the arbiter is replaced now and then, and the live clients re-register
//! what they hold and wait for, with what is left of each lease and wait on their clock.
//! The clock only moves forward, and stops at every deadline the arbiter asks for
//! (`poll_timeout`). Every message crosses the wire codec.
//!
//! Checked after every step, over many seeds:
//! * exclusion: no holder beside a conflicting holder, in the engine and as the clients
//!   see it (a client's held set is exactly what the engine says it holds);
//! * a lease ends exactly when due (`ttl` after the grant or the last renew, on the clock
//!   of the arbiter that granted it), never earlier, also across a restart;
//! * a wait limit ends the wait when due, the request leaves its queue and is never
//!   granted afterwards;
//! * labels: a labeled query shows every request's own label (and none for spec
//!   requests); `Busy` names the label of a current holder;
//! * `Deadlock` only ever answers a waiting `Acquire`, which is then gone;
//! * at the end, with every lock released, the engine is empty.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use web_locks_wasm::arbiter::Arbiter;
use web_locks_wasm::engine::{ClientId, LockMode, RequestFlags, RequestId};
use web_locks_wasm::protocol::{ArbiterMsg, ClientMsg, Extras, Restored};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Sent; `position` once acknowledged; `wait_due` its wait limit's deadline.
    Waiting { position: Option<i64>, wait_due: Option<u64> },
    /// Granted; `lease_due` when its lease runs out.
    Held { lease_due: Option<u64> },
}

#[derive(Clone, Debug)]
struct Req {
    name: String,
    mode: LockMode,
    flags: RequestFlags,
    label: Option<String>,
    ttl: Option<u32>,
    service: bool,
    state: State,
}

struct Client {
    label: String,
    conn: ClientId,
    next: u64,
    reqs: BTreeMap<u64, Req>,
    /// Renews sent and not answered yet: (id, ttl), in order.
    renews: Vec<(u64, u32)>,
}

struct Sim {
    rng: Rng,
    arbiter: Arbiter,
    now: u64,
    clients: Vec<Client>,
    born: u32,
    stats: BTreeMap<&'static str, u64>,
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn u(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn conflicts(a: LockMode, b: LockMode) -> bool {
    a == LockMode::Exclusive || b == LockMode::Exclusive
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            arbiter: Arbiter::new(),
            now: 1_000,
            clients: Vec::new(),
            born: 0,
            stats: BTreeMap::new(),
        };
        sim.arbiter.advance(sim.now, &mut Vec::new());
        for _ in 0..3 {
            sim.join();
        }
        sim
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    fn join(&mut self) {
        self.born += 1;
        let label = format!("client-{}", self.born);
        let conn = self.arbiter.connect();
        let mut out = Vec::new();
        self.arbiter.handle(conn, wire(ClientMsg::Hello { client: u(&label), restore: vec![] }), &mut out);
        self.clients.push(Client { label, conn, next: 1, reqs: BTreeMap::new(), renews: Vec::new() });
        self.deliver(out);
    }

    fn send(&mut self, c: usize, msg: ClientMsg) {
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!("{} <- {}: {msg:?}", self.now, self.clients[c].label);
        }
        let mut out = Vec::new();
        let conn = self.clients[c].conn;
        self.arbiter.handle(conn, wire(msg), &mut out);
        self.deliver(out);
    }

    fn deliver(&mut self, out: Vec<(ClientId, ArbiterMsg)>) {
        for (conn, msg) in out {
            let msg = ArbiterMsg::decode(&msg.encode()).expect("arbiter message decodes");
            let Some(c) = self.clients.iter().position(|c| c.conn == conn) else {
                panic!("a message for a client that is gone: {msg:?}");
            };
            self.receive(c, msg);
        }
    }

    fn receive(&mut self, c: usize, msg: ArbiterMsg) {
        let now = self.now;
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!("{now} -> {}: {msg:?}", self.clients[c].label);
        }
        let client = &mut self.clients[c];
        match msg {
            ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => panic!("no delegation here: {msg:?}"),
            ArbiterMsg::Queued { id, position } => match client.reqs.get_mut(&id.0) {
                Some(Req { state: State::Waiting { position: p, .. }, .. }) => *p = Some(position),
                other => panic!("Queued for {other:?}"),
            },
            ArbiterMsg::Granted { id } => {
                let r = client.reqs.get_mut(&id.0).unwrap_or_else(|| panic!("Granted for unknown request {id:?}"));
                let State::Waiting { wait_due, .. } = r.state else { panic!("Granted twice: {r:?}") };
                if let Some(d) = wait_due {
                    assert!(now <= d, "granted at {now} after its wait ran out at {d}");
                }
                r.state = State::Held { lease_due: r.ttl.map(|t| now + u64::from(t)) };
                self.count("granted");
            }
            ArbiterMsg::Unavailable { id } | ArbiterMsg::Busy { id, .. } => {
                let r = client.reqs.remove(&id.0).expect("unavailable: known");
                assert!(r.flags.if_available, "unavailable without ifAvailable");
                assert_eq!(matches!(msg, ArbiterMsg::Busy { .. }), r.service, "Busy answers exactly the Acquires");
                if let ArbiterMsg::Busy { holder, .. } = &msg {
                    // One current holder's label, if any has one.
                    let labels: Vec<Option<Vec<u16>>> = self
                        .clients
                        .iter()
                        .flat_map(|c| c.reqs.values())
                        .filter(|h| h.name == r.name && matches!(h.state, State::Held { .. }))
                        .map(|h| h.label.as_deref().map(u))
                        .collect();
                    assert!(!labels.is_empty(), "Busy, yet nobody holds {}", r.name);
                    match holder {
                        Some(l) => assert!(labels.contains(&Some(l.clone())), "Busy names {l:?}, not a holder"),
                        None => {
                            assert!(labels.iter().all(Option::is_none), "Busy names nobody, yet a holder has a label")
                        }
                    }
                }
                self.count("unavailable");
            }
            ArbiterMsg::Stolen { id } => {
                let r = client.reqs.remove(&id.0).expect("stolen: known");
                assert!(matches!(r.state, State::Held { .. }), "stolen while not held");
                self.count("stolen");
            }
            ArbiterMsg::Expired { id } => {
                let r = client.reqs.remove(&id.0).expect("expired: known");
                let State::Held { lease_due: Some(due) } = r.state else { panic!("expired without a lease: {r:?}") };
                assert_eq!(now, due, "a lease ended at {now}, due at {due}");
                self.count("expired");
            }
            ArbiterMsg::TimedOut { id } => {
                let r = client.reqs.remove(&id.0).expect("timed out: known");
                let State::Waiting { wait_due: Some(due), .. } = r.state else { panic!("timed out while {r:?}") };
                assert_eq!(now, due, "a wait ended at {now}, due at {due}");
                self.count("timed out");
            }
            ArbiterMsg::Deadlock { id, cycle } => {
                let r = client.reqs.remove(&id.0).expect("deadlock: known");
                assert!(r.service && matches!(r.state, State::Waiting { .. }), "Deadlock for {r:?}");
                assert!(cycle.len() >= 2, "a cycle of {}", cycle.len());
                self.count("deadlock");
            }
            ArbiterMsg::DeadlockReport { id, .. } => {
                let r = &client.reqs[&id.0];
                assert!(!r.service && matches!(r.state, State::Waiting { .. }), "DeadlockReport for {r:?}");
                self.count("deadlock report");
            }
            ArbiterMsg::Renewed { id, held } => {
                let i = client.renews.iter().position(|&(r, _)| r == id.0).expect("an answer to a renew");
                let (_, ttl) = client.renews.remove(i);
                match client.reqs.get_mut(&id.0) {
                    Some(Req { state: State::Held { lease_due }, .. }) => {
                        assert!(held, "renew refused for a lock the client holds");
                        *lease_due = Some(now + u64::from(ttl));
                        self.count("renewed");
                    }
                    _ => assert!(!held, "renewed a lock the client no longer holds"),
                }
            }
            ArbiterMsg::Snapshot { held, pending, .. } => {
                for (info, want_held) in held.iter().map(|i| (i, true)).chain(pending.iter().map(|i| (i, false))) {
                    let owner = self.clients.iter().find(|c| u(&c.label) == info.client).expect("a live client");
                    let r = owner
                        .reqs
                        .values()
                        .find(|r| {
                            u(&r.name) == info.name
                                && r.mode == info.mode
                                && matches!(r.state, State::Held { .. }) == want_held
                        })
                        .unwrap_or_else(|| panic!("the snapshot shows {info:?}, which its client does not have"));
                    let _ = r;
                    let labels: Vec<Option<Vec<u16>>> = owner
                        .reqs
                        .values()
                        .filter(|r| u(&r.name) == info.name && matches!(r.state, State::Held { .. }) == want_held)
                        .map(|r| r.label.as_deref().map(u))
                        .collect();
                    assert!(labels.contains(&info.label), "label {:?} not among {labels:?}", info.label);
                    if want_held {
                        if let Some(left) = info.expires_in {
                            let dues: Vec<u64> = owner
                                .reqs
                                .values()
                                .filter_map(|r| match r.state {
                                    State::Held { lease_due: Some(d) } if u(&r.name) == info.name => Some(d - self.now),
                                    _ => None,
                                })
                                .collect();
                            assert!(dues.contains(&u64::from(left)), "expires_in {left} not among {dues:?}");
                        }
                    }
                }
                self.count("snapshot");
            }
        }
    }

    /// The engine and the clients agree on who holds what, and nothing conflicts.
    fn check(&self) {
        if self.arbiter.is_recovering() {
            return;
        }
        let snap = self.arbiter.engine().snapshot();
        for (i, a) in snap.held.iter().enumerate() {
            for b in &snap.held[i + 1..] {
                assert!(!(a.name == b.name && conflicts(a.mode, b.mode)), "two conflicting holders of {:?}", a.name);
            }
        }
        let mut seen = 0;
        for c in &self.clients {
            for (id, r) in &c.reqs {
                if let State::Held { .. } = r.state {
                    seen += 1;
                    assert!(
                        snap.held.iter().any(|h| h.client == c.conn && h.request == RequestId(*id)),
                        "{} thinks it holds {id} ({}), the engine does not",
                        c.label,
                        r.name
                    );
                }
            }
        }
        assert_eq!(seen, snap.held.len(), "the engine has holders no client knows of");
    }

    fn act(&mut self) {
        if self.clients.is_empty() || self.rng.chance(3) {
            self.join();
            return;
        }
        let c = self.rng.below(self.clients.len() as u64) as usize;
        match self.rng.below(100) {
            0..=39 => self.request(c),
            40..=64 => {
                let ids: Vec<u64> = self.clients[c].reqs.keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    self.clients[c].reqs.remove(&id);
                    self.send(c, ClientMsg::Release { id: RequestId(id) });
                }
            }
            65..=74 => {
                let held: Vec<u64> = self.clients[c]
                    .reqs
                    .iter()
                    .filter(|(_, r)| matches!(r.state, State::Held { .. }))
                    .map(|(id, _)| *id)
                    .collect();
                if !held.is_empty() {
                    let id = held[self.rng.below(held.len() as u64) as usize];
                    let ttl = 1 + self.rng.below(150) as u32;
                    self.clients[c].renews.push((id, ttl));
                    self.send(c, ClientMsg::Renew { id: RequestId(id), ttl });
                }
            }
            75..=79 => self.send(c, ClientMsg::QueryLabeled { id: 1 }),
            80..=82 => {
                // A crash: the arbiter learns of it (the probe).
                let gone = self.clients.remove(c);
                let mut out = Vec::new();
                self.arbiter.gone(&u(&gone.label), &mut out);
                self.deliver(out);
                self.count("crash");
            }
            83 => self.restart(),
            _ => self.tick(),
        }
    }

    fn request(&mut self, c: usize) {
        let name = NAMES[self.rng.below(NAMES.len() as u64) as usize].to_string();
        let mode = if self.rng.chance(30) { LockMode::Shared } else { LockMode::Exclusive };
        let mut flags = RequestFlags::default();
        if self.rng.chance(10) {
            flags.if_available = true;
        } else if mode == LockMode::Exclusive && self.rng.chance(4) {
            flags.steal = true;
        }
        let service = self.rng.chance(75);
        let label = (service && self.rng.chance(60)).then(|| format!("L{}", self.rng.below(4)));
        let ttl = (service && self.rng.chance(50)).then(|| 1 + self.rng.below(200) as u32);
        let timeout = (service && !flags.if_available && self.rng.chance(40)).then(|| self.rng.below(150) as u32);
        let client = &mut self.clients[c];
        let id = client.next;
        client.next += 1;
        let wait_due = timeout.map(|t| self.now + u64::from(t));
        client.reqs.insert(
            id,
            Req {
                name: name.clone(),
                mode,
                flags,
                label: label.clone(),
                ttl,
                service,
                state: State::Waiting { position: None, wait_due },
            },
        );
        let msg = if service {
            ClientMsg::Acquire {
                id: RequestId(id),
                name: u(&name),
                mode,
                flags,
                extras: Extras { label: label.as_deref().map(u), ttl, timeout },
            }
        } else {
            ClientMsg::Request { id: RequestId(id), name: u(&name), mode, flags }
        };
        self.send(c, msg);
    }

    /// The clock moves on, stopping at every deadline the arbiter asked for.
    fn tick(&mut self) {
        let target = self.now + self.rng.below(60);
        loop {
            let due = self.arbiter.poll_timeout().filter(|&d| d <= target);
            self.now = due.unwrap_or(target).max(self.now);
            let mut out = Vec::new();
            self.arbiter.advance(self.now, &mut out);
            self.deliver(out);
            self.check();
            if due.is_none() {
                break;
            }
        }
    }

    /// The arbiter is replaced: the live clients re-register, each with what is left of
    /// its leases and waits; renews in flight are sent again.
    fn restart(&mut self) {
        self.count("restart");
        self.arbiter = Arbiter::recovering();
        // No connection of the old arbiter may be mistaken for one of the new.
        for c in &mut self.clients {
            c.conn = ClientId(u32::MAX);
        }
        let mut out = Vec::new();
        self.arbiter.advance(self.now, &mut out);
        self.arbiter.begin_recovery(self.clients.iter().map(|c| u(&c.label)), &mut out);
        self.deliver(out);
        for c in 0..self.clients.len() {
            let conn = self.arbiter.connect();
            self.clients[c].conn = conn;
            let now = self.now;
            let client = &self.clients[c];
            let mut restore = Vec::new();
            let mut resend = Vec::new();
            for (id, r) in &client.reqs {
                let (position, left) = match r.state {
                    State::Held { lease_due } => (None, lease_due.map(|d| (d - now) as u32)),
                    State::Waiting { position: Some(p), wait_due } => (Some(p), wait_due.map(|d| (d - now) as u32)),
                    State::Waiting { position: None, .. } => {
                        resend.push(*id);
                        continue;
                    }
                };
                let held = position.is_none();
                restore.push(Restored {
                    id: RequestId(*id),
                    name: u(&r.name),
                    mode: r.mode,
                    position,
                    extras: Extras {
                        label: r.label.as_deref().map(u),
                        ttl: if held { left } else { r.ttl },
                        timeout: if held { None } else { left },
                    },
                });
            }
            let renews = client.renews.clone();
            let hello = ClientMsg::Hello { client: u(&client.label), restore };
            self.send(c, hello);
            // A request the old arbiter never acknowledged can only be an ifAvailable or
            // steal answered at once, or a plain one: the simulation delivers at once, so
            // every waiting request has its position. Nothing to resend.
            assert!(resend.is_empty(), "unacknowledged requests: {resend:?}");
            for (id, ttl) in renews {
                self.send(c, ClientMsg::Renew { id: RequestId(id), ttl });
            }
        }
        self.check();
    }

    /// Everyone releases everything; the engine is then empty.
    fn drain(&mut self) {
        for c in 0..self.clients.len() {
            let ids: Vec<u64> = self.clients[c].reqs.keys().copied().collect();
            for id in ids {
                self.clients[c].reqs.remove(&id);
                self.send(c, ClientMsg::Release { id: RequestId(id) });
            }
        }
        let snap = self.arbiter.engine().snapshot();
        assert!(snap.held.is_empty() && snap.pending.is_empty(), "left at the end: {snap:?}");
    }
}

fn wire(msg: ClientMsg) -> ClientMsg {
    ClientMsg::decode(&msg.encode()).expect("client message decodes")
}

#[test]
fn leases_waits_labels_and_restarts_keep_exclusion_and_time() {
    let mut total: BTreeMap<&'static str, u64> = BTreeMap::new();
    let only: Option<u64> = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok());
    for seed in 1..=400u64 {
        if only.is_some_and(|o| o != seed) {
            continue;
        }
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!("seed {seed}");
        }
        let mut sim = Sim::new(seed);
        for _ in 0..600 {
            sim.act();
            sim.check();
        }
        // Let every lease and wait run out that will.
        for _ in 0..20 {
            sim.tick();
        }
        sim.drain();
        for (k, v) in sim.stats {
            *total.entry(k).or_default() += v;
        }
    }
    println!("{total:?}");
    // The run exercised what it claims to.
    for what in [
        "granted",
        "expired",
        "timed out",
        "renewed",
        "stolen",
        "unavailable",
        "restart",
        "crash",
        "snapshot",
        "deadlock",
    ] {
        assert!(total.get(what).copied().unwrap_or(0) > 0, "no {what} in the whole run: {total:?}");
    }
}
