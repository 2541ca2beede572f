//! The physical floor a step's checkpoint is compared with: one INSERT of a row the size of a
//! step's and its COMMIT, straight through SQLite's C API on the calling thread, into a fresh
//! WAL file in the same directory with the store's pragmas. What a step costs beyond this is
//! the host's own: hand-offs between threads, statements, the guest's call.

use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::ptr;
use std::time::Instant;

use libsqlite3_sys as ffi;
use reprise_store::Durability;

/// A step's row, roughly: its ids, name, a small JSON output and times.
const ROW_OUTPUT: &str = r#"{"value":12345,"note":"a step's output of a realistic size"}"#;

/// Mean microseconds of `n` single-row INSERT + COMMIT transactions.
pub(super) fn raw_commit_us(dir: &Path, durability: Durability, n: u32) -> anyhow::Result<f64> {
    let path = CString::new(dir.join("floor.db").to_string_lossy().as_bytes())?;
    let db = Db::open(&path)?;
    let synchronous = durability.pragma();
    db.exec(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA foreign_keys=ON; \
         CREATE TABLE steps (workflow_id TEXT NOT NULL, function_id INTEGER NOT NULL, \
         name TEXT NOT NULL, output TEXT, error TEXT, attempts INTEGER NOT NULL, \
         started_at INTEGER NOT NULL, completed_at INTEGER NOT NULL, \
         PRIMARY KEY (workflow_id, function_id));"
    ))?;
    let insert = db.prepare(
        "INSERT INTO steps VALUES ('0190f5a2-7c4e-7d1b-9a3e-5f2d8c6b4a10', ?1, 'tick', ?2, NULL, 1, ?3, ?3)",
    )?;
    let output = CString::new(ROW_OUTPUT)?;
    let start = Instant::now();
    for i in 0..n {
        db.exec("BEGIN")?;
        // SAFETY: `insert` is a statement of `db`, still open; the text outlives the step
        // (SQLITE_STATIC is null: SQLite reads it during the step only).
        unsafe {
            ffi::sqlite3_bind_int64(insert, 1, i64::from(i));
            ffi::sqlite3_bind_text(insert, 2, output.as_ptr(), -1, None);
            ffi::sqlite3_bind_int64(insert, 3, i64::from(i));
            let stepped = ffi::sqlite3_step(insert);
            ffi::sqlite3_reset(insert);
            db.check(stepped, ffi::SQLITE_DONE, "insert")?;
        }
        db.exec("COMMIT")?;
    }
    let elapsed = start.elapsed();
    // SAFETY: finalized once, before the connection closes.
    unsafe { ffi::sqlite3_finalize(insert) };
    Ok(elapsed.as_secs_f64() * 1e6 / f64::from(n.max(1)))
}

/// One connection, closed when dropped.
struct Db(*mut ffi::sqlite3);

impl Db {
    fn open(path: &CStr) -> anyhow::Result<Db> {
        let mut handle = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
        // SAFETY: a valid C string and an out-pointer; the handle is closed by `Drop` even
        // when opening failed (SQLite allocates it then too).
        let opened =
            unsafe { ffi::sqlite3_open_v2(path.as_ptr(), &mut handle, flags, ptr::null()) };
        let db = Db(handle);
        db.check(opened, ffi::SQLITE_OK, "open")?;
        Ok(db)
    }

    fn exec(&self, sql: &str) -> anyhow::Result<()> {
        let sql = CString::new(sql)?;
        // SAFETY: an open connection and a valid C string; no callback.
        let done = unsafe {
            ffi::sqlite3_exec(self.0, sql.as_ptr(), None, ptr::null_mut(), ptr::null_mut())
        };
        self.check(done, ffi::SQLITE_OK, "exec")
    }

    fn prepare(&self, sql: &str) -> anyhow::Result<*mut ffi::sqlite3_stmt> {
        let sql = CString::new(sql)?;
        let mut statement = ptr::null_mut();
        // SAFETY: an open connection, a valid C string, an out-pointer.
        let prepared = unsafe {
            ffi::sqlite3_prepare_v2(self.0, sql.as_ptr(), -1, &mut statement, ptr::null_mut())
        };
        self.check(prepared, ffi::SQLITE_OK, "prepare")?;
        Ok(statement)
    }

    fn check(&self, code: c_int, expected: c_int, what: &str) -> anyhow::Result<()> {
        if code == expected {
            return Ok(());
        }
        // SAFETY: the connection's message is a C string valid until its next call.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) };
        anyhow::bail!("raw SQLite {what}: {}", message.to_string_lossy())
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: closed once; every statement was finalized.
        unsafe { ffi::sqlite3_close(self.0) };
    }
}
