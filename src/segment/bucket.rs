//! The one deterministic random split of customers, shared by segments (`bucket "x" in a..b`)
//! and campaigns (holdouts): the same salt puts a customer in the same bucket everywhere.

use sha2::{Digest, Sha256};

/// Number of random buckets: a customer's bucket is in `0..BUCKETS`.
pub const BUCKETS: u32 = 10_000;

/// The customer's random bucket (`0..10_000`) under `salt`: the first 7 bytes of
/// SHA-256(`salt` ‖ `:` ‖ `customer_id`) as a big-endian integer, modulo 10,000.
///
/// It is the unit of every random split: the segment leaf `bucket "x" in 0..1000` holds
/// exactly the customers [`Holdout::percent("x", 10)`](crate::campaign::Holdout::percent)
/// holds out. It is stable across versions, processes and machines, and
/// [`compile_sql`](super::compile_sql) computes the same value in PostgreSQL and BigQuery
/// (SHA-256 is built into both; 56 bits fit a signed 64-bit integer).
///
/// ```
/// use enishi::segment::bucket;
///
/// let b = bucket("spring", "c-1");
/// assert!(b < 10_000);
/// assert_eq!(b, bucket("spring", "c-1"));
/// ```
#[must_use]
pub fn bucket(salt: &str, customer_id: impl AsRef<str>) -> u32 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b":");
    h.update(customer_id.as_ref().as_bytes());
    let digest = h.finalize();
    let mut x = 0u64;
    for b in &digest[..7] {
        x = (x << 8) | u64::from(*b);
    }
    // x < 2^56, so the remainder always fits.
    u32::try_from(x % u64::from(BUCKETS)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_pinned() {
        // Pinned values (computed independently in Python from the documented definition):
        // a change here reshuffles every running experiment and holdout.
        assert_eq!(bucket("", ""), 8063);
        assert_eq!(bucket("exp-1", "c-42"), 7978);
        assert_eq!(bucket("spring", "c-1"), 6080);
        assert_eq!(bucket("salt", "c-1"), 3223);
    }
}
