/work/main/target-next/wasm32-unknown-unknown/release/deps/web_locks_wasm.d: src/lib.rs src/arbiter.rs src/deadlock.rs src/engine/mod.rs src/heap.rs src/map.rs src/protocol.rs src/bindings/mod.rs src/bindings/host.rs

/work/main/target-next/wasm32-unknown-unknown/release/deps/web_locks_wasm.wasm: src/lib.rs src/arbiter.rs src/deadlock.rs src/engine/mod.rs src/heap.rs src/map.rs src/protocol.rs src/bindings/mod.rs src/bindings/host.rs

/work/main/target-next/wasm32-unknown-unknown/release/deps/libweb_locks_wasm.rlib: src/lib.rs src/arbiter.rs src/deadlock.rs src/engine/mod.rs src/heap.rs src/map.rs src/protocol.rs src/bindings/mod.rs src/bindings/host.rs

src/lib.rs:
src/arbiter.rs:
src/deadlock.rs:
src/engine/mod.rs:
src/heap.rs:
src/map.rs:
src/protocol.rs:
src/bindings/mod.rs:
src/bindings/host.rs:
