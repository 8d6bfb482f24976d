//! The wasm module's memory allocator, in place of the standard library's dlmalloc (about
//! 8 KB of wasm; this is a tenth of that).
//!
//! Power-of-two size classes from 8 bytes up, one free list per class, blocks carved from
//! memory that `memory.grow` adds. Correct for a long-running, single-threaded module:
//!
//! - **Alignment.** A request of `size` bytes aligned to `align` gets a block of class
//!   `c`, `2^c = max(8, size, align)` rounded up to a power of two. Every block of class `c`
//!   starts at a multiple of `min(2^c, 64 KiB)`, which `align` divides (a larger `align` is
//!   refused: null).
//! - **No overlap.** New blocks come from `[next, end)`, memory never handed out; the gap
//!   that aligning `next` skips is cut into aligned blocks that go to their free lists. A
//!   freed block goes back to the list of its class (the caller passes the same layout, so
//!   the same class) and is handed out again only from there.
//! - **Freeing works.** A freed block is reused by the next request of its class, so the
//!   heap never holds more blocks of a class than were ever live at once (plus the
//!   alignment gaps). Blocks are not merged: memory reused by one size class is not
//!   offered to another. wasm memory never shrinks anyway.
//!
//! The logic is plain code over a [`Memory`], tested natively on a simulated memory;
//! `global` puts it behind `#[global_allocator]` in the package's wasm module.
#![allow(unsafe_code)]

/// What the heap needs from the memory it manages.
pub trait Memory {
    /// `memory.grow`: adds `pages` of 64 KiB; the old size in bytes, or `None`.
    fn grow(&mut self, pages: usize) -> Option<usize>;
    /// Reads the free-list link stored in the free block at `addr`.
    ///
    /// # Safety
    /// `addr` is a free block of this heap.
    unsafe fn load(&self, addr: usize) -> usize;
    /// Stores a free-list link in the free block at `addr`.
    ///
    /// # Safety
    /// `addr` is a block of this heap that nobody else uses.
    unsafe fn store(&mut self, addr: usize, link: usize);
}

pub const PAGE: usize = 1 << 16;
const MIN_CLASS: u32 = 3;
const CLASSES: usize = usize::BITS as usize;

/// The allocator's state; addresses are byte offsets in the memory, 0 is null.
pub struct Heap {
    /// The first free block of each class (0: none); each holds the next one's address.
    free: [usize; CLASSES],
    /// Memory in `[next, end)` has never been handed out.
    next: usize,
    end: usize,
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    pub const fn new() -> Self {
        Heap { free: [0; CLASSES], next: 0, end: 0 }
    }

    /// The class of a request, or `None` when it cannot be served.
    pub fn class(size: usize, align: usize) -> Option<u32> {
        if align > PAGE {
            return None;
        }
        let c = size.max(align).max(1 << MIN_CLASS).checked_next_power_of_two()?.trailing_zeros();
        Some(c)
    }

    /// A block for `size` bytes aligned to `align`, or 0.
    ///
    /// # Safety
    /// `memory` is the memory of every earlier call.
    pub unsafe fn alloc(&mut self, memory: &mut impl Memory, size: usize, align: usize) -> usize {
        let Some(c) = Self::class(size, align) else { return 0 };
        let Some(head) = self.free.get_mut(c as usize) else { return 0 };
        if *head != 0 {
            let block = *head;
            *head = memory.load(block);
            return block;
        }
        let size = 1usize << c;
        loop {
            let start = match self.next.checked_add(size.min(PAGE) - 1) {
                Some(n) => n & !(size.min(PAGE) - 1),
                None => return 0,
            };
            match start.checked_add(size) {
                Some(stop) if stop <= self.end => {
                    self.carve(memory, start);
                    self.next = stop;
                    return start;
                }
                Some(stop) => {
                    // Grow by what is missing, whole pages.
                    let pages = (stop - self.end).div_ceil(PAGE);
                    let Some(old) = memory.grow(pages) else { return 0 };
                    if old != self.end {
                        // Someone else grew memory meanwhile: start over at our new pages.
                        self.carve(memory, self.end);
                        self.next = old;
                    }
                    self.end = old.saturating_add(pages * PAGE);
                }
                None => return 0,
            }
        }
    }

    /// Cuts `[next, to)` into blocks as large as their alignment allows, free for reuse.
    unsafe fn carve(&mut self, memory: &mut impl Memory, to: usize) {
        while self.next.saturating_add(1 << MIN_CLASS) <= to {
            let mut c = self.next.trailing_zeros().min(CLASSES as u32 - 1);
            while self.next.saturating_add(1 << c) > to {
                c -= 1;
            }
            self.push(memory, self.next, c);
            self.next += 1 << c;
        }
    }

    unsafe fn push(&mut self, memory: &mut impl Memory, block: usize, c: u32) {
        if let Some(head) = self.free.get_mut(c as usize) {
            memory.store(block, *head);
            *head = block;
        }
    }

    /// Frees a block that `alloc` returned for the same `size` and `align`.
    ///
    /// # Safety
    /// As for `GlobalAlloc::dealloc`.
    pub unsafe fn dealloc(&mut self, memory: &mut impl Memory, block: usize, size: usize, align: usize) {
        if let Some(c) = Self::class(size, align) {
            self.push(memory, block, c);
        }
    }
}

/// The heap as the global allocator of the package's wasm module (feature `slim`; other
/// builds keep the standard library's allocator).
#[cfg(all(target_arch = "wasm32", feature = "slim", not(feature = "api"), not(target_feature = "atomics")))]
pub mod global {
    use super::{Heap, Memory, PAGE};
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    struct Linear;

    impl Memory for Linear {
        fn grow(&mut self, pages: usize) -> Option<usize> {
            match core::arch::wasm32::memory_grow(0, pages) {
                usize::MAX => None,
                old => Some(old * PAGE),
            }
        }
        unsafe fn load(&self, addr: usize) -> usize {
            (addr as *const usize).read()
        }
        unsafe fn store(&mut self, addr: usize, link: usize) {
            (addr as *mut usize).write(link)
        }
    }

    pub struct Allocator(UnsafeCell<Heap>);

    // Sound because this module only exists without the `atomics` target feature: such a
    // wasm module has one thread, and the allocator never calls back into itself.
    unsafe impl Sync for Allocator {}

    unsafe impl GlobalAlloc for Allocator {
        /// Out of memory traps here, as `handle_alloc_error` would (a panic traps), but
        /// without the message that it formats for nobody.
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match (*self.0.get()).alloc(&mut Linear, layout.size(), layout.align()) {
                0 => core::arch::wasm32::unreachable(),
                block => block as *mut u8,
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            (*self.0.get()).dealloc(&mut Linear, ptr as usize, layout.size(), layout.align())
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if Heap::class(new_size, layout.align()) == Heap::class(layout.size(), layout.align()) {
                return ptr; // the block is large enough already
            }
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator(UnsafeCell::new(Heap::new()));
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A simulated linear memory: `base` bytes of data and stack, then what `grow` adds.
    struct Sim {
        bytes: Vec<u8>,
        limit: usize,
    }

    impl Sim {
        fn new(base: usize) -> Self {
            Sim { bytes: vec![0; base], limit: 64 << 20 }
        }
    }

    impl Memory for Sim {
        fn grow(&mut self, pages: usize) -> Option<usize> {
            let old = self.bytes.len();
            if old + pages * PAGE > self.limit {
                return None;
            }
            self.bytes.resize(old + pages * PAGE, 0);
            Some(old)
        }
        unsafe fn load(&self, addr: usize) -> usize {
            usize::from_le_bytes(self.bytes[addr..addr + 8].try_into().unwrap())
        }
        unsafe fn store(&mut self, addr: usize, link: usize) {
            self.bytes[addr..addr + 8].copy_from_slice(&link.to_le_bytes());
        }
    }

    /// Live blocks: address → (size, fill byte); checks alignment, bounds, no overlap, and
    /// that no other block's use changed a block's contents.
    struct Checker {
        heap: Heap,
        mem: Sim,
        live: BTreeMap<usize, (usize, usize, u8)>,
    }

    impl Checker {
        fn new(base: usize) -> Self {
            Checker { heap: Heap::new(), mem: Sim::new(base), live: BTreeMap::new() }
        }

        fn alloc(&mut self, size: usize, align: usize, fill: u8) -> usize {
            let a = unsafe { self.heap.alloc(&mut self.mem, size, align) };
            assert_ne!(a, 0, "out of memory for {size}/{align}");
            assert_eq!(a % align, 0, "alignment of {a:#x} for {size}/{align}");
            assert!(a + size <= self.mem.bytes.len(), "out of bounds");
            if let Some((&b, &(bs, _, _))) = self.live.range(..=a).next_back() {
                assert!(b + bs.max(8) <= a, "overlaps the block at {b:#x}");
            }
            if let Some((&b, _)) = self.live.range(a..).next() {
                assert!(a + size.max(8) <= b, "overlaps the block at {b:#x}");
            }
            self.mem.bytes[a..a + size].fill(fill);
            self.live.insert(a, (size, align, fill));
            a
        }

        fn free(&mut self, a: usize) {
            let (size, align, fill) = self.live.remove(&a).unwrap();
            assert!(self.mem.bytes[a..a + size].iter().all(|&b| b == fill), "block at {a:#x} was overwritten");
            unsafe { self.heap.dealloc(&mut self.mem, a, size, align) };
        }
    }

    #[test]
    fn classes() {
        assert_eq!(Heap::class(0, 1), Some(3));
        assert_eq!(Heap::class(8, 8), Some(3));
        assert_eq!(Heap::class(9, 1), Some(4));
        assert_eq!(Heap::class(1, 64), Some(6));
        assert_eq!(Heap::class(PAGE + 1, 8), Some(17));
        assert_eq!(Heap::class(1, PAGE * 2), None);
        assert_eq!(Heap::class(usize::MAX, 1), None);
    }

    #[test]
    fn freed_blocks_are_reused_and_memory_stops_growing() {
        let mut c = Checker::new(3 * PAGE + 40);
        let sizes = [1, 8, 12, 24, 100, 4000, 70_000, 33, 16];
        let mut grown = 0;
        for round in 0..50 {
            let blocks: Vec<usize> =
                sizes.iter().enumerate().map(|(i, &s)| c.alloc(s, 1 << (i % 4), (round + i) as u8)).collect();
            for a in blocks {
                c.free(a);
            }
            if round == 0 {
                grown = c.mem.bytes.len();
            }
            assert_eq!(c.mem.bytes.len(), grown, "memory grew in round {round}");
        }
    }

    #[test]
    fn out_of_memory_is_null_not_a_panic() {
        let mut c = Checker::new(PAGE);
        c.mem.limit = 4 * PAGE;
        assert_eq!(unsafe { c.heap.alloc(&mut c.mem, 8 * PAGE, 8) }, 0);
        assert_eq!(unsafe { c.heap.alloc(&mut c.mem, usize::MAX / 2, 8) }, 0);
        // Smaller requests still work afterwards.
        c.alloc(100, 8, 1);
    }

    #[test]
    fn memory_grown_by_someone_else_is_left_alone() {
        let mut c = Checker::new(PAGE);
        let a = c.alloc(24, 8, 1);
        let foreign = c.mem.grow(1).unwrap();
        c.mem.bytes[foreign..foreign + PAGE].fill(0xEE);
        for i in 0..5000 {
            c.alloc(40, 8, i as u8);
        }
        assert!(c.mem.bytes[foreign..foreign + PAGE].iter().all(|&b| b == 0xEE), "foreign page used");
        c.free(a);
    }

    #[test]
    fn large_blocks_then_small_ones() {
        let mut c = Checker::new(17 * PAGE);
        c.mem.limit = 512 << 20;
        let mut live = Vec::new();
        // A vector growing to 2 MB by doubling, as realloc does it: alloc, copy, free.
        let mut v = c.alloc(8, 2, 1);
        let mut cap = 8;
        while cap < (2 << 20) {
            let n = c.alloc(cap * 2, 2, (cap % 251) as u8);
            c.free(v);
            v = n;
            cap *= 2;
        }
        live.push(v);
        live.push(c.alloc((2 << 20) + 8, 4, 7)); // an Rc<[u16]> of it
        live.push(c.alloc(2 << 20, 2, 8));
        for i in 0..2000 {
            live.push(c.alloc(1 + i % 200, 8, i as u8));
        }
        for a in live.drain(..) {
            c.free(a);
        }
        for i in 0..2000 {
            live.push(c.alloc(1 + i % 300, 4, i as u8));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(usize, u32),
        Free(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (prop_oneof![8 => 1usize..64, 4 => 1usize..5000, 1 => 60_000usize..140_000], 0u32..7).prop_map(|(s, a)| Op::Alloc(s, a)),
            2 => any::<usize>().prop_map(Op::Free),
        ]
    }

    proptest! {
        #[test]
        fn blocks_are_aligned_disjoint_and_kept_intact(ops in proptest::collection::vec(op(), 0..200), base in 1usize..200) {
            let mut c = Checker::new(base * 8 + PAGE);
            let mut peaks = [0usize; CLASSES];
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Alloc(size, align) => {
                        c.alloc(size, 1 << align, i as u8);
                    }
                    Op::Free(pick) => {
                        if !c.live.is_empty() {
                            let a = *c.live.keys().nth(pick % c.live.len()).unwrap();
                            c.free(a);
                        }
                    }
                }
                let mut now = [0usize; CLASSES];
                for &(s, a, _) in c.live.values() {
                    let k = Heap::class(s, a).unwrap();
                    now[k as usize] += 1 << k;
                }
                for (p, n) in peaks.iter_mut().zip(now) {
                    *p = (*p).max(n);
                }
            }
            // Never more memory than the peak of each class (blocks are reused), plus as
            // much again for alignment gaps (each under the size of the block that made
            // it), plus the last page's rest.
            let peak: usize = peaks.iter().sum();
            for a in c.live.keys().copied().collect::<Vec<_>>() {
                c.free(a);
            }
            prop_assert!(c.mem.bytes.len() <= base * 8 + PAGE + 2 * peak + PAGE, "{} bytes for class peaks of {}", c.mem.bytes.len(), peak);
        }
    }
}
