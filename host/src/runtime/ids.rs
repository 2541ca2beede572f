//! Workflow ids — what one may be, fresh ones, the ones derived for children — and random
//! numbers for what is not replayed. The rule itself is `reprise_client::ids`, shared with
//! the clients so both ends refuse the same ids in the same words.

pub use reprise_client::ids::{
    InvalidId, MAX_WORKFLOW_ID_LEN, new_workflow_id, validate_workflow_id,
};

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
