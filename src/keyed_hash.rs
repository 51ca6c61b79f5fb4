//! Hash maps keyed by what the traffic carries (flow keys, fragment ids, server addresses, user
//! names), hashed with a secret seed.
//!
//! With an unkeyed hash an attacker on the monitored network can craft keys that all hash alike
//! (FxHash, fast as it is, can be inverted: the second word of an IPv6 address can undo what the
//! first did to its state), and every lookup in the map becomes a scan of it: a flood of such
//! connections would stall the capture. foldhash, seeded per map from the operating system's
//! random source (through std's `RandomState`), costs about what FxHash does on short keys.
//!
//! Nothing may depend on the order these maps iterate in, which changes from run to run: what is
//! listed is sorted first.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;

/// A map keyed by traffic.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedHasher>;
/// A set of values taken from traffic.
pub type KeyedSet<K> = HashSet<K, KeyedHasher>;

/// foldhash with a random seed of its own (see the module documentation).
#[derive(Clone)]
pub struct KeyedHasher(SeedableRandomState);

impl std::fmt::Debug for KeyedHasher {
    /// The seed is what keeps an attacker from crafting collisions: never printed (foldhash's own
    /// `Debug` prints it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher(..)")
    }
}

impl Default for KeyedHasher {
    fn default() -> Self {
        let seed = std::hash::RandomState::new().hash_one(0u8);
        KeyedHasher(SeedableRandomState::with_seed(seed, SharedSeed::global_random()))
    }
}

impl BuildHasher for KeyedHasher {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hasher_has_its_own_seed() {
        let hashes: HashSet<u64> = (0..64).map(|_| KeyedHasher::default().hash_one("user@example.test")).collect();
        assert_eq!(hashes.len(), 64);
    }

    #[test]
    fn one_hasher_hashes_alike_what_is_equal() {
        let hasher = KeyedHasher::default();
        assert_eq!(hasher.hash_one(String::from("a")), hasher.hash_one("a"));
        assert_ne!(hasher.hash_one("a"), hasher.hash_one("b"));
    }

    #[test]
    fn debug_output_never_shows_the_seed() {
        let map: KeyedMap<u8, u8> = KeyedMap::default();
        assert_eq!(format!("{:?}", map.hasher()), "KeyedHasher(..)");
    }
}
