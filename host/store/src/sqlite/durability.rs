//! How much of a commit must reach the disk: the one durability setting, as the store's
//! connections (sqlx's and the step lane's) and the configuration spell it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteSynchronous;

/// How much of a commit must reach the disk before a step counts as recorded: the trade between
/// surviving a power cut and per-step latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is fsynced (`synchronous=FULL`): a recorded step survives a power cut or an
    /// OS crash. Costs one fsync per commit, shared by all requests of a batch.
    #[default]
    Synced,
    /// Commits survive the process crashing but not the machine (`synchronous=NORMAL` in WAL):
    /// the last commits before a power cut may be lost. Much faster on slow disks.
    Process,
}

impl Durability {
    /// The spelling used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Synced => "synced",
            Durability::Process => "process",
        }
    }

    pub(super) fn synchronous(self) -> SqliteSynchronous {
        match self {
            Durability::Synced => SqliteSynchronous::Full,
            Durability::Process => SqliteSynchronous::Normal,
        }
    }

    /// The value of SQLite's `synchronous` pragma at this level.
    pub fn pragma(self) -> &'static str {
        match self {
            Durability::Synced => "FULL",
            Durability::Process => "NORMAL",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "synced" => Ok(Durability::Synced),
            "process" => Ok(Durability::Process),
            other => Err(format!(
                "unknown durability {other:?}: expected \"synced\" or \"process\""
            )),
        }
    }
}
