//! What a workflow id may be, and fresh ones. The rule lives in this crate, which the server
//! and its clients share, so a client refuses a bad id before sending it, in the same words the
//! server would use.
//!
//! An id names a workflow in URLs (`/workflows/{id}`), in log lines and on the command line,
//! and is typed back by people: so it is short, printable and needs no escaping anywhere.

use std::fmt;

/// The longest workflow id, in bytes.
pub const MAX_WORKFLOW_ID_LEN: usize = 200;

/// The rule, as every [`InvalidId`] message ends.
const ALLOWED: &str =
    "a workflow id is 1 to 200 ASCII letters, digits and `-_.:@`, and not `.` or `..`";

/// Why a string is not a workflow id; the message says what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// `""` could be created but never named again.
    #[error("the workflow id is empty: {allowed}", allowed = ALLOWED)]
    Empty,
    #[error("the workflow id is {len} bytes long: {allowed}", allowed = ALLOWED)]
    TooLong { len: usize },
    /// A character outside the rule (a slash, a space, a control character, non-ASCII).
    #[error("the workflow id {id} has {found:?} at byte {at}: {allowed}", allowed = ALLOWED)]
    Character {
        /// The id as shown: quoted, and clipped when long.
        id: Shown,
        found: char,
        at: usize,
    },
    /// `.` and `..` mean something else in a path.
    #[error("the workflow id may not be {0:?}: {allowed}", allowed = ALLOWED)]
    DotSegment(String),
}

/// An id quoted for an error message, clipped so a 200,000-character id is not echoed whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Shown {
    fn of(id: &str) -> Shown {
        const SHOWN: usize = 40;
        match id.char_indices().nth(SHOWN) {
            Some((end, _)) => Shown(format!("{:?}…", &id[..end])),
            None => Shown(format!("{id:?}")),
        }
    }
}

/// Whether `id` may name a workflow: 1 to [`MAX_WORKFLOW_ID_LEN`] bytes of ASCII letters,
/// digits and `-_.:@`, and neither `.` nor `..`.
pub fn validate_workflow_id(id: &str) -> Result<(), InvalidId> {
    if id.is_empty() {
        return Err(InvalidId::Empty);
    }
    if id.len() > MAX_WORKFLOW_ID_LEN {
        return Err(InvalidId::TooLong { len: id.len() });
    }
    if let Some((at, found)) = id.char_indices().find(|(_, c)| !allowed_in_id(*c)) {
        return Err(InvalidId::Character {
            id: Shown::of(id),
            found,
            at,
        });
    }
    if id == "." || id == ".." {
        return Err(InvalidId::DotSegment(id.to_string()));
    }
    Ok(())
}

/// Whether `c` may appear in a workflow id (the character half of the rule).
pub fn allowed_in_id(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')
}

/// A fresh id, UUID-shaped in version 7's layout: the Unix time in milliseconds (48 bits), then
/// 74 random bits; it passes [`validate_workflow_id`]. Ids made later sort after earlier ones,
/// so the databases' primary-key indexes (of workflows, and of steps, which lead with it) take
/// new rows at their right edge: a batch of new workflows dirties a few pages, not one random
/// page each, and each commit writes that much less.
pub fn new_workflow_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        & 0xffff_ffff_ffff;
    let (a, b) = (fresh_random(), fresh_random());
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        ms >> 16,
        ms & 0xffff,
        a & 0x0fff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// 64 random bits from the OS-seeded hasher, the clock and a counter: not for cryptography,
/// enough that two ids made anywhere, even in the same nanosecond, differ. The host draws its
/// fresh random numbers here too.
pub fn fresh_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for id in [
            "a",
            "order-1234",
            "tenant_7:order.99@eu",
            "018f6b2e-7c1a-4b3e-9d2f-1a2b3c4d5e6f",
            "...",
            ".hidden",
            "a..b",
            &"x".repeat(MAX_WORKFLOW_ID_LEN),
        ] {
            assert_eq!(validate_workflow_id(id), Ok(()), "{id:?}");
        }
    }

    #[test]
    fn empty_long_dotted_and_odd_characters_are_refused_saying_why() {
        assert_eq!(validate_workflow_id(""), Err(InvalidId::Empty));
        let long = "x".repeat(MAX_WORKFLOW_ID_LEN + 1);
        assert_eq!(
            validate_workflow_id(&long),
            Err(InvalidId::TooLong { len: 201 })
        );
        assert_eq!(
            validate_workflow_id(".."),
            Err(InvalidId::DotSegment("..".into()))
        );
        assert_eq!(
            validate_workflow_id("."),
            Err(InvalidId::DotSegment(".".into()))
        );
        for (id, found, at) in [
            ("x\0y", '\0', 1),
            ("../../../etc/passwd", '/', 2),
            ("a b", ' ', 1),
            ("tab\there", '\t', 3),
            ("new\nline", '\n', 3),
            ("caf\u{e9}", '\u{e9}', 3),
            ("q?x=1", '?', 1),
            ("hash#1", '#', 4),
            ("per%20cent", '%', 3),
            ("back\\slash", '\\', 4),
            ("\u{7f}del", '\u{7f}', 0),
        ] {
            match validate_workflow_id(id) {
                Err(InvalidId::Character {
                    found: f, at: a, ..
                }) => assert_eq!((f, a), (found, at), "{id:?}"),
                other => panic!("{id:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_message_shows_the_id_clipped_and_the_rule() {
        let err = validate_workflow_id("x\0y").expect_err("NUL");
        let message = err.to_string();
        assert!(message.contains(r#""x\0y""#), "{message}");
        assert!(message.contains("'\\0' at byte 1"), "{message}");
        assert!(message.contains(ALLOWED), "{message}");

        let huge = format!("/{}", "a".repeat(200_000));
        let message = validate_workflow_id(&huge).expect_err("long").to_string();
        assert!(message.contains("200001 bytes"), "{message}");
        assert!(message.len() < 300, "not echoed whole: {message}");
        let slashed = format!("{}/", "a".repeat(150));
        let message = validate_workflow_id(&slashed)
            .expect_err("slash")
            .to_string();
        assert!(message.contains("'/' at byte 150"), "{message}");
        assert!(message.contains("aaaa\"…"), "clipped: {message}");
        assert!(message.len() < 300, "not echoed whole: {message}");
    }

    #[test]
    fn fresh_ids_sort_by_the_millisecond_they_were_made() {
        let first = new_workflow_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = new_workflow_id();
        assert!(first < later, "{first} then {later}");
        let ms = u64::from_str_radix(&first[..8], 16).unwrap() << 16
            | u64::from_str_radix(&first[9..13], 16).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now - ms < 60_000, "{first} names {ms}, now is {now}");
        assert_eq!(&first[14..15], "7", "{first}");
    }

    #[test]
    fn fresh_ids_pass_and_differ() {
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| new_workflow_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(validate_workflow_id(id), Ok(()), "{id}");
            assert_eq!(id.len(), 36, "{id}");
        }
    }
}
