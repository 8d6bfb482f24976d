//! Deadlock detection for the lock services (issue #9, feature `services`): is a request
//! on a cycle of its wait-for graph?
//!
//! The graph (see [`crate::engine::Engine::waits_for`]): a waiting request waits for every
//! holder of its name that it conflicts with and for the request just ahead of it in the
//! queue (which waits for the one ahead of it, and so on: the same reachability as an
//! edge to each request ahead, with one edge instead of many); a held lock waits for the
//! other requests its owner is waiting for (its owner will not release it before they
//! are granted). A cycle through a request therefore means that none of its members can
//! ever be granted: a deadlock.
//!
//! Pure and deterministic, no panics; the search visits each node at most once and gives
//! up after `budget` nodes (then it reports nothing, never a false cycle).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::vec::Vec;

use crate::map::{IdKey, IdMap};

/// A wait-for graph: `waits_for(n)` appends the nodes `n` waits for.
pub trait WaitFor {
    type Node: IdKey + PartialEq;
    fn waits_for(&self, node: Self::Node, out: &mut Vec<Self::Node>);
}

/// A cycle through `start`, as the path `[start, n1, …, nk]` with `start → n1 → … → nk →
/// start`, each node once; `None` when there is none, or none was found within `budget`
/// visited nodes.
pub fn cycle_through<G: WaitFor>(graph: &G, start: G::Node, budget: usize) -> Option<Vec<G::Node>> {
    let mut seen: IdMap<G::Node, ()> = IdMap::default();
    // The DFS stack is the current path: each node with what it waits for, and how far
    // along that list the search is.
    let mut path: Vec<(G::Node, Vec<G::Node>, usize)> = Vec::new();
    let mut next = Vec::new();
    graph.waits_for(start, &mut next);
    seen.insert(start, ());
    path.push((start, next, 0));
    let mut visited = 1usize;
    loop {
        let node = {
            let top = path.last_mut()?;
            let Some(&node) = top.1.get(top.2) else {
                path.pop();
                continue;
            };
            top.2 += 1;
            node
        };
        if node == start {
            return Some(path.into_iter().map(|(n, _, _)| n).collect());
        }
        if seen.contains_key(node) {
            continue;
        }
        visited += 1;
        if visited > budget {
            return None;
        }
        seen.insert(node, ());
        let mut next = Vec::new();
        graph.waits_for(node, &mut next);
        path.push((node, next, 0));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    struct Adjacency(Vec<Vec<u32>>);

    impl WaitFor for Adjacency {
        type Node = u32;
        fn waits_for(&self, node: u32, out: &mut Vec<u32>) {
            out.extend(self.0.get(node as usize).into_iter().flatten().copied());
        }
    }

    /// Brute force: is `start` reachable from what it waits for?
    fn on_a_cycle(g: &Adjacency, start: u32) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<u32> = g.0[start as usize].clone();
        while let Some(n) = todo.pop() {
            if n == start {
                return true;
            }
            if seen.insert(n) {
                todo.extend(g.0[n as usize].iter().copied());
            }
        }
        false
    }

    #[test]
    fn two_tabs_holding_what_the_other_waits_for() {
        // 0: A's pending y → 1: B's held y → 2: B's pending x → 3: A's held x → 0.
        let g = Adjacency(vec![vec![1], vec![2], vec![3], vec![0], vec![3]]);
        assert_eq!(cycle_through(&g, 0, 100), Some(vec![0, 1, 2, 3]));
        assert_eq!(cycle_through(&g, 4, 100), None, "waits for the cycle, is not on it");
        assert_eq!(cycle_through(&Adjacency(vec![vec![0]]), 0, 100), Some(vec![0]));
        assert_eq!(cycle_through(&Adjacency(vec![vec![]]), 0, 100), None);
    }

    #[test]
    fn the_budget_bounds_the_search_and_never_invents_a_cycle() {
        // A long chain back to the start: found with budget, not without.
        let n = 1000u32;
        let g = Adjacency((0..n).map(|i| vec![(i + 1) % n]).collect());
        assert_eq!(cycle_through(&g, 0, 2000).map(|p| p.len()), Some(n as usize));
        assert_eq!(cycle_through(&g, 0, 10), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Every real cycle through the start is reported, and what is reported is one.
        #[test]
        fn matches_a_brute_force_search(
            edges in proptest::collection::vec(proptest::collection::vec(0u32..10, 0..4), 1..10),
            start in 0u32..10,
        ) {
            let n = edges.len() as u32;
            let g = Adjacency(edges.into_iter().map(|e| e.into_iter().filter(|&t| t < n).collect()).collect());
            let start = start % n;
            let found = cycle_through(&g, start, usize::MAX);
            prop_assert_eq!(found.is_some(), on_a_cycle(&g, start));
            if let Some(path) = found {
                prop_assert_eq!(path[0], start);
                prop_assert_eq!(path.iter().collect::<BTreeSet<_>>().len(), path.len(), "each node once");
                for (i, &a) in path.iter().enumerate() {
                    let b = *path.get(i + 1).unwrap_or(&start);
                    prop_assert!(g.0[a as usize].contains(&b), "{} → {} is no edge", a, b);
                }
            }
        }
    }
}
