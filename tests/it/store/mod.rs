//! The store: the contract every backend keeps, run on SQLite and Postgres (`contract/`), and
//! what a store does with a hand-edited row, a full disk and old workflows.

mod combining;
mod contract;
mod corrupt_rows;
mod disk_full;
mod locked;
mod reconnect;
mod retention;
