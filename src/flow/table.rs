//! The flow table. (Being written.)

use super::{key::FlowKey, Side};

#[derive(Clone, Copy, Debug)]
pub struct FlowLimits;
#[derive(Clone, Debug, Default)]
pub struct FlowStats;
#[derive(Debug)]
pub enum CloseReason {}
#[derive(Debug)]
pub enum FlowEvent {}
#[derive(Debug)]
pub struct FlowInfo {
    pub key: FlowKey,
    pub client: Side,
}
pub struct FlowTable;
