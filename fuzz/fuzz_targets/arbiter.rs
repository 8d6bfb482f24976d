//! The arbiter (and its engine) driven by any sequence of connections, messages from any
//! connection (forged ids, duplicate and unknown requests, Hellos with restores, lock
//! service requests), deaths, recoveries and clock steps. It must never panic, and never
//! hold two conflicting locks on a name unless all but one of them were re-registered
//! (a restore may bring back a steal's victim that never heard of it).
#![no_main]
use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use web_locks_wasm::arbiter::Arbiter;
use web_locks_wasm::engine::{ClientId, LockMode, RequestFlags, RequestId};
use web_locks_wasm::protocol::{ClientMsg, Extras, Restored};

struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
}

fn name(b: u8) -> Vec<u16> {
    vec![u16::from(b % 3) + 0x61]
}
fn label(b: u8) -> Vec<u16> {
    vec![u16::from(b % 5) + 0x30]
}
fn mode(b: u8) -> LockMode {
    if b & 1 == 0 {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let mut a = if data.first().is_some_and(|b| b & 1 == 1) { Arbiter::recovering() } else { Arbiter::new() };
    let mut out = Vec::new();
    let mut conns: Vec<ClientId> = Vec::new();
    let mut restored: BTreeSet<(ClientId, RequestId)> = BTreeSet::new();
    let mut now = 0u64;
    while let Some(op) = input.next() {
        let x = input.next().unwrap_or(0);
        let y = input.next().unwrap_or(0);
        let conn = |i: u8| conns.get(usize::from(i) % conns.len().max(1)).copied().unwrap_or(ClientId(u32::from(i)));
        match op % 14 {
            0 => conns.push(a.connect()),
            1 => {
                let c = conn(x);
                let mut restore = Vec::new();
                for i in 0..(y % 3) {
                    let id = RequestId(u64::from(y.wrapping_add(i) % 8));
                    let position = if (y >> 2) & 1 == 0 { None } else { Some(i64::from(y % 7) - 3) };
                    if position.is_none() {
                        restored.insert((c, id));
                    }
                    restore.push(Restored {
                        id,
                        name: name(y >> 3),
                        mode: mode(y >> 5),
                        position,
                        extras: Extras::default(),
                    });
                }
                a.handle(c, ClientMsg::Hello { client: label(y), restore }, &mut out);
            }
            2 | 3 => {
                let flags = RequestFlags { if_available: y & 2 != 0, steal: y & 4 != 0 };
                let msg = ClientMsg::Request {
                    id: RequestId(u64::from(y % 8)),
                    name: name(y >> 3),
                    mode: mode(y >> 6),
                    flags,
                };
                a.handle(conn(x), msg, &mut out);
            }
            4 | 5 => a.handle(conn(x), ClientMsg::Release { id: RequestId(u64::from(y % 8)) }, &mut out),
            6 => a.handle(conn(x), ClientMsg::Query { id: u32::from(y) }, &mut out),
            7 => a.handle(conn(x), ClientMsg::Goodbye, &mut out),
            8 => a.gone(&label(y), &mut out),
            9 => a.begin_recovery((0..(y % 4)).map(|i| label(y.wrapping_add(i))), &mut out),
            10 => {
                let extras = Extras {
                    label: (y & 1 == 0).then(|| label(y)),
                    ttl: (y & 2 == 0).then_some(u32::from(x % 50)),
                    timeout: (y & 4 == 0).then_some(u32::from(x % 30)),
                };
                let flags = RequestFlags { if_available: y & 8 != 0, steal: y & 16 != 0 };
                let msg = ClientMsg::Acquire {
                    id: RequestId(u64::from(y % 8)),
                    name: name(y >> 5),
                    mode: mode(x),
                    flags,
                    extras,
                };
                a.handle(conn(x), msg, &mut out);
                if y & 32 != 0 {
                    a.handle(
                        conn(x),
                        ClientMsg::Renew { id: RequestId(u64::from(y % 8)), ttl: u32::from(x % 40) },
                        &mut out,
                    );
                }
            }
            11 => {
                now += u64::from(y);
                a.advance(now, &mut out);
            }
            // Delegation: an Ask, and a handback whose entries (a holder's claims, like a
            // Hello's) the arbiter takes over.
            12 => {
                let flags = RequestFlags { if_available: y & 2 != 0, steal: y & 4 != 0 };
                let msg = ClientMsg::Ask { id: RequestId(u64::from(y % 8)), name: name(y >> 3), mode: mode(y >> 6), flags };
                a.handle(conn(x), msg, &mut out);
            }
            _ => {
                let c = conn(x);
                let mut entries = Vec::new();
                for i in 0..(y % 4) {
                    let id = RequestId(u64::from(y.wrapping_add(i) % 8));
                    let position = if (y >> 2) & 1 == 0 && i == 0 { None } else { Some(i64::from(i) - 1) };
                    if position.is_none() {
                        restored.insert((c, id));
                    }
                    entries.push(Restored { id, name: name(y >> 3), mode: mode(y >> 5), position, extras: Extras::default() });
                }
                a.handle(c, ClientMsg::Handback { name: name(y >> 3), entries }, &mut out);
            }
        }
        out.clear();
        // Conflicting holders only with restored ones.
        let snap = a.engine().snapshot();
        for (i, h) in snap.held.iter().enumerate() {
            for g in snap.held.iter().skip(i + 1) {
                if h.name == g.name && (h.mode == LockMode::Exclusive || g.mode == LockMode::Exclusive) {
                    let r = |l: &web_locks_wasm::engine::LockInfo| restored.contains(&(l.client, l.request));
                    assert!(r(h) || r(g), "two conflicting holders, neither restored: {h:?} {g:?}");
                }
            }
        }
    }
});
