//! TCP flows: a table of connections and, per direction, a bounded reassembler that turns
//! segments into an ordered byte stream.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod key;
pub mod reassembly;
pub mod seq;
mod table;

pub use key::{Endpoint, FlowKey, Side};
pub use reassembly::{ReassemblyLimits, ReassemblyStats, StreamChunk, StreamReassembler};
pub use table::{
    CloseReason, FlowEvent, FlowHandler, FlowInfo, FlowLimits, FlowStats, FlowTable, Inspect, SWEEP_INTERVAL,
};
