//! Blocks of capture bytes that the reading thread shares with the workers: a threaded file run
//! hands a worker the place of a TCP payload in the block it was read into, not a copy of it.
//!
//! The file reader fills a block, then hands out frames that borrow it. While some worker still
//! holds a block (its batch points into it), the reader goes on in another one; a block comes
//! back to the reader once every holder has let it go (see the file reader's `RecordBuffer`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::ops::Range;
use std::sync::Arc;

/// Bytes read from a capture, read-only once shared. Cloning costs a reference count. No `Debug`:
/// the bytes are packets, passwords included.
#[derive(Clone)]
pub struct SharedBlock(Arc<Vec<u8>>);

impl SharedBlock {
    /// A zeroed block of `len` bytes (zeroed pages cost nothing until written).
    pub(super) fn new(len: usize) -> SharedBlock {
        SharedBlock(Arc::new(vec![0; len]))
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The block's bytes for writing, when nobody else holds the block.
    pub(super) fn exclusive(&mut self) -> Option<&mut Vec<u8>> {
        Arc::get_mut(&mut self.0)
    }

    /// Where `bytes` lies in this block, when it is a slice of it: a payload decoded from a frame
    /// of this block is, one rebuilt from IP fragments is not (it lives in the decoder).
    pub fn range_of(&self, bytes: &[u8]) -> Option<Range<usize>> {
        // Addresses only, never dereferenced: a slice starting inside the block's allocation is
        // part of it, because allocations do not overlap.
        let start = (bytes.as_ptr() as usize).checked_sub(self.0.as_ptr() as usize)?;
        let end = start.checked_add(bytes.len())?;
        (end <= self.0.len()).then_some(start..end)
    }

    /// Whether both are the same block (not merely equal bytes).
    pub fn is(&self, other: &SharedBlock) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_of_the_block_are_found_and_others_are_not() {
        let mut block = SharedBlock::new(64);
        block.exclusive().expect("nobody else holds it")[10..14].copy_from_slice(b"USER");
        let user = &block.bytes()[10..14];
        assert_eq!(block.range_of(user), Some(10..14));
        assert_eq!(block.range_of(&block.bytes()[60..64]), Some(60..64));
        let elsewhere = b"USER".to_vec();
        assert_eq!(block.range_of(&elsewhere), None);
        let other = SharedBlock::new(64);
        assert_eq!(block.range_of(&other.bytes()[..4]), None);
    }

    #[test]
    fn a_shared_block_cannot_be_written_until_every_holder_lets_go() {
        let mut block = SharedBlock::new(8);
        let held = block.clone();
        assert!(block.is(&held));
        assert!(!block.is(&SharedBlock::new(8)));
        assert!(block.exclusive().is_none());
        drop(held);
        assert!(block.exclusive().is_some());
    }
}
