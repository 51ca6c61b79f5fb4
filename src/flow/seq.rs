//! TCP sequence-number arithmetic modulo 2^32 (RFC 793 §3.3, RFC 1982): comparisons by signed
//! difference, never panicking on wrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

/// `a - b` as a signed distance, correct when the two are less than 2^31 apart.
pub fn diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// `a` comes strictly before `b`.
pub fn before(a: u32, b: u32) -> bool {
    diff(a, b) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        assert_eq!(diff(5, u32::MAX - 4), 10);
        assert_eq!(diff(u32::MAX - 4, 5), -10);
        assert!(before(u32::MAX, 0));
        assert!(!before(0, u32::MAX));
        assert!(before(1, 2));
        assert_eq!(diff(7, 7), 0);
    }
}
