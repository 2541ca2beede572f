//! Fresh ids and random numbers for what is not replayed: workflow ids, and the values a
//! recorded call records.

/// A random UUID-shaped id.
pub fn new_workflow_id() -> String {
    let (a, b) = (fresh_random(), fresh_random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// 64 random bits from the OS-seeded hasher: not for cryptography, enough for jitter and ids.
pub(crate) fn fresh_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}
