//! Workflow ids — what one may be, fresh ones, the ones derived for children — and random
//! numbers for what is not replayed. The rule itself is `reprise_protocol::ids`, shared with
//! the clients so both ends refuse the same ids in the same words.

use sha2::{Digest, Sha256};

pub use reprise_protocol::ids::{
    InvalidId, MAX_WORKFLOW_ID_LEN, allowed_in_id, fresh_random, new_workflow_id,
    validate_workflow_id,
};

/// A step's idempotency key: its workflow and its position (with the run, after a
/// continue-as-new), the same on every attempt and every recovery of the step.
pub(crate) fn idempotency_key(workflow_id: &str, run: u32, function_id: u32) -> String {
    format!("{workflow_id}/{}", position_key(run, function_id))
}

/// A position as the ids derived from it name it: `<position>` in a workflow's first run,
/// `<run>.<position>` once it continued as new, so a child, a sent message or an idempotency
/// key of one run is never another run's.
pub(crate) fn position_key(run: u32, position: u32) -> String {
    if run == 0 {
        position.to_string()
    } else {
        format!("{run}.{position}")
    }
}

/// The id of the child a parent starts at `position` without choosing one: `<parent>-<position>`,
/// the same on every replay, so a recovered parent finds its child. When that breaks the id rule
/// (a parent id near the length limit, or one stored before the rule existed) it is the parent
/// id's longest valid prefix that fits, then a digest of the whole parent id and the position:
/// still the same on every replay, still one per parent and position.
pub(crate) fn child_id(parent: &str, run: u32, position: u32) -> String {
    let position = position_key(run, position);
    let simple = format!("{parent}-{position}");
    // An id starting with `-` (from a parent stored as "") would read as a flag on the command
    // line.
    if validate_workflow_id(&simple).is_ok() && !simple.starts_with('-') {
        return simple;
    }
    let digest = hex::encode(&Sha256::digest(parent.as_bytes())[..8]);
    let suffix = format!("-{digest}-{position}");
    let room = MAX_WORKFLOW_ID_LEN.saturating_sub(suffix.len());
    let prefix: String = parent
        .chars()
        .take_while(|c| allowed_in_id(*c))
        .take(room)
        .collect();
    let prefix = if prefix.is_empty() { "child" } else { &prefix };
    format!("{prefix}{suffix}")
}

/// The longest topic, event key or stream key: they travel in wake-up notices.
pub(crate) const MAX_KEY_BYTES: usize = 256;

/// Why a topic or key is refused, if it is.
pub(crate) fn check_key(what: &str, key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "{what} of {} bytes is longer than the {MAX_KEY_BYTES} allowed",
            key.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_id_is_parent_dash_position_when_that_fits_the_rule() {
        assert_eq!(child_id("order-7", 0, 3), "order-7-3");
        assert_eq!(
            child_id("order-7", 2, 3),
            "order-7-2.3",
            "a later run's own child"
        );
        let parent = "p".repeat(MAX_WORKFLOW_ID_LEN - 2);
        assert_eq!(child_id(&parent, 0, 9), format!("{parent}-9"));
    }

    #[test]
    fn a_child_id_passes_the_rule_whatever_the_parent_id_and_stays_the_same() {
        let long = "p".repeat(MAX_WORKFLOW_ID_LEN);
        let other_long = format!("{}q", "p".repeat(MAX_WORKFLOW_ID_LEN - 1));
        // Ids stored before the rule existed may be anything.
        for parent in [long.as_str(), &other_long, "", "a/b", "x\0y", ".."] {
            for position in [0, 7, u32::MAX] {
                let id = child_id(parent, 0, position);
                assert_eq!(
                    validate_workflow_id(&id),
                    Ok(()),
                    "{parent:?} {position}: {id}"
                );
                assert!(!id.starts_with('-'), "{id}");
                assert_eq!(id, child_id(parent, 0, position), "deterministic");
            }
        }
        assert_ne!(child_id(&long, 0, 1), child_id(&long, 0, 2));
        assert_ne!(child_id(&long, 0, 1), child_id(&other_long, 0, 1));
        assert!(
            child_id(&long, 0, 1).starts_with("ppppp"),
            "{}",
            child_id(&long, 0, 1)
        );
    }
}
