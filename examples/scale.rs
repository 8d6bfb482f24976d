//! Engine scale: time per operation and memory as n grows (1k, 10k, 100k), with a
//! counting allocator. `cargo run --release --example scale` (run by `bench/run.mjs`).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use web_locks_wasm::engine::{ClientId, Engine, LockMode, RequestFlags, RequestId, RequestKey};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn key(c: u32, r: u64) -> RequestKey {
    RequestKey { client: ClientId(c), request: RequestId(r) }
}

fn name(s: &str) -> std::rc::Rc<[u16]> {
    s.encode_utf16().collect::<Vec<_>>().into()
}

fn main() {
    println!(
        "{:>8} {:>22} {:>22} {:>16} {:>16}",
        "n", "hold n names µs/op", "queue+drain n µs/op", "held bytes/lock", "queued bytes/req"
    );
    for n in [1_000u64, 10_000, 100_000] {
        let mut e = Engine::new();
        let mut out = Vec::new();
        let names: Vec<_> = (0..n).map(|i| name(&format!("name-{i}"))).collect();
        let base = LIVE.load(Relaxed);
        let t = Instant::now();
        for (i, nm) in names.iter().enumerate() {
            e.request(key(1, i as u64), nm.clone(), LockMode::Exclusive, RequestFlags::default(), &mut out).ok();
        }
        let hold_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let held_bytes = (LIVE.load(Relaxed) - base) as f64 / n as f64;
        out.clear();

        let one = name("one");
        let mid = LIVE.load(Relaxed);
        let t = Instant::now();
        for i in 0..n {
            e.request(key(2, i), one.clone(), LockMode::Exclusive, RequestFlags::default(), &mut out).ok();
        }
        let queued_bytes = (LIVE.load(Relaxed) - mid) as f64 / n as f64;
        out.clear();
        for i in 0..n {
            e.release(key(2, i), &mut out);
        }
        let drain_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        assert!(e.len() as u64 == n, "only the held names remain");
        println!("{n:>8} {hold_us:>22.3} {drain_us:>22.3} {held_bytes:>16.0} {queued_bytes:>16.0}");
    }
}
