//! What a commit settles before anyone hears of it: the commit count, and the database file's
//! identity. SQLite keeps writing to a file deleted or replaced under it (the open descriptor
//! outlives the name), and those commits vanish when the process exits. Only a check of the
//! name can tell.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// The file the writer opened, as the file system names it.
pub(super) struct FileIdentity {
    path: PathBuf,
    /// Device and inode; `None` where the platform does not give them (then only the name's
    /// existence is checked).
    id: Option<(u64, u64)>,
}

impl FileIdentity {
    /// The identity of the file at `path` now, or `None` for an in-memory database (nothing
    /// on disk to lose) or a path that cannot be read.
    pub(super) fn of(path: &Path) -> Option<FileIdentity> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileIdentity {
            path: path.to_path_buf(),
            id: inode(&metadata),
        })
    }

    /// Whether the name still leads to the file the writer opened: one `stat`, a microsecond
    /// beside the commit's fsync. The error is the path no longer leading there.
    pub(super) fn check(&self) -> Result<(), &Path> {
        let now = std::fs::metadata(&self.path).ok();
        let same = match (&now, self.id) {
            (None, _) => false,
            (Some(metadata), Some(id)) => inode(metadata) == Some(id),
            (Some(_), None) => true,
        };
        if same { Ok(()) } else { Err(&self.path) }
    }
}

/// What a commit must settle before its requests hear of it.
#[derive(Clone, Copy)]
pub(super) struct Committed<'a> {
    pub(super) count: &'a AtomicU64,
    pub(super) file: Option<&'a FileIdentity>,
}

impl Committed<'_> {
    /// Counts a commit and checks that it went to the file the database is named by: a commit
    /// to a deleted file is no commit at all. Returns the vanished file's error maker.
    pub(super) fn settle(self) -> Result<(), impl Fn() -> StoreError + use<>> {
        self.count.fetch_add(1, Ordering::Relaxed);
        match self.file.map(FileIdentity::check) {
            Some(Err(path)) => {
                let path = path.to_path_buf();
                let gone = move || StoreError::FileGone(path.clone());
                tracing::error!(error = %gone());
                Err(gone)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(unix)]
fn inode(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_fails_the_check() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.db");
        std::fs::write(&path, b"one").expect("write");
        // Held open, as SQLite holds it, so its inode is not reused.
        let _open = std::fs::File::open(&path).expect("open");
        let identity = FileIdentity::of(&path).expect("identity");
        identity.check().expect("same file");
        // A new file under the old name is not the file the writer holds open.
        let other = dir.path().join("b.db");
        std::fs::write(&other, b"two").expect("write");
        std::fs::rename(&other, &path).expect("replace");
        assert_eq!(identity.check(), Err(path.as_path()));
        std::fs::remove_file(&path).expect("delete");
        assert_eq!(identity.check(), Err(path.as_path()));
    }
}
