//! Bounds on what the run-long trackers (the server summary and the posture inventory) keep.
//!
//! They hold a few facts per server and the distinct values seen there (user names, clients,
//! mechanisms, capability lists), all taken from the traffic: a spray of fake logins to random
//! addresses or with random user names would otherwise grow them for as long as the capture
//! runs. Past the bounds the counts go on, the new servers and values are not kept, the reports
//! say so (`truncated`), and a warning says which tracker filled up.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::hash::Hash;

use crate::keyed_hash::KeyedMap;

/// How much one tracker keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerLimits {
    /// Servers (protocol, address, port) tracked.
    pub servers: usize,
    /// Distinct values kept over all servers (a user name of about 30 bytes costs about 100 bytes
    /// with its set's slack).
    pub values: usize,
}

impl Default for TrackerLimits {
    /// About 30 MiB at most per tracker: 65 536 servers, 262 144 values.
    fn default() -> Self {
        TrackerLimits { servers: 65_536, values: 262_144 }
    }
}

/// What one tracker holds against its limits.
#[derive(Debug)]
pub struct Holdings {
    limits: TrackerLimits,
    /// Names the tracker in the warning.
    tracker: &'static str,
    values: usize,
    /// Events of servers past the limit, left out.
    untracked: u64,
    warned: bool,
}

impl Holdings {
    pub fn new(tracker: &'static str, limits: TrackerLimits) -> Self {
        Holdings { limits, tracker, values: 0, untracked: 0, warned: false }
    }

    /// The entry of the server `key` in `servers`, created if the tracker has room for one more;
    /// `None` (the event counted as left out) when it has not.
    pub fn entry<'m, K: Hash + Eq, V: Default>(
        &mut self,
        servers: &'m mut KeyedMap<K, V>,
        key: K,
    ) -> Option<&'m mut V> {
        if !servers.contains_key(&key) && !self.admit_server(servers.len()) {
            self.untracked += 1;
            return None;
        }
        Some(servers.entry(key).or_default())
    }

    /// Events of servers past the limit, left out.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Whether a new server may be tracked beside the `tracked` ones.
    pub fn admit_server(&mut self, tracked: usize) -> bool {
        let admitted = tracked < self.limits.servers;
        if !admitted {
            self.warn_once();
        }
        admitted
    }

    /// Whether one more distinct value of a server may be kept (it is then counted); if not,
    /// the server's `truncated` is set.
    pub fn keep_value(&mut self, truncated: &mut bool) -> bool {
        let admitted = self.admit_value();
        *truncated |= !admitted;
        admitted
    }

    /// Whether one more distinct value may be kept (it is then counted).
    pub fn admit_value(&mut self) -> bool {
        let admitted = self.values < self.limits.values;
        if admitted {
            self.values += 1;
        } else {
            self.warn_once();
        }
        admitted
    }

    fn warn_once(&mut self) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(
                tracker = self.tracker,
                servers = self.limits.servers,
                values = self.limits.values,
                "tracker full: further servers and distinct values are counted but not kept (reports say `truncated`)"
            );
        }
    }
}

/// Checks `value` against the published event schema (docs/schema/events.schema.json).
#[cfg(test)]
pub fn assert_matches_event_schema(value: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/events.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{value}\n{}", errors.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_values_are_admitted_up_to_the_limits() {
        let mut holdings = Holdings::new("test", TrackerLimits { servers: 2, values: 3 });
        assert!(holdings.admit_server(0) && holdings.admit_server(1));
        assert!(!holdings.admit_server(2));
        assert_eq!((0..4).map(|_| holdings.admit_value()).collect::<Vec<_>>(), [true, true, true, false]);
        assert!(holdings.warned);
        let mut truncated = false;
        assert!(!holdings.keep_value(&mut truncated) && truncated, "a value not kept marks its server");
    }
}
