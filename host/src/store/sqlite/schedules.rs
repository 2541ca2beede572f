//! The writer's requests for schedules: single statements, run where the writer runs them.

use sqlx::Sqlite;
use sqlx::sqlite::SqliteConnection;

use super::outcome::{Outcome, Reply};
use crate::store::StoreError;
use crate::store::schedules::{ScheduleRecord, Schedules};

pub(in crate::store) enum ScheduleWrite {
    Put {
        schedule: ScheduleRecord,
        replace: bool,
        reply: Reply<bool>,
    },
    Pause {
        name: String,
        paused: bool,
        reply: Reply<bool>,
    },
    Delete {
        name: String,
        reply: Reply<bool>,
    },
    Advance {
        name: String,
        fired: i64,
        reply: Reply<()>,
    },
}

impl ScheduleWrite {
    pub(super) fn reject(self, err: StoreError) {
        match self {
            ScheduleWrite::Put { reply, .. }
            | ScheduleWrite::Pause { reply, .. }
            | ScheduleWrite::Delete { reply, .. } => drop(reply.send(Err(err))),
            ScheduleWrite::Advance { reply, .. } => drop(reply.send(Err(err))),
        }
    }

    pub(super) async fn apply(self, conn: &mut SqliteConnection) -> Outcome {
        match self {
            ScheduleWrite::Put {
                schedule,
                replace,
                reply,
            } => Outcome::held(reply, Sqlite::put_schedule(conn, &schedule, replace).await),
            ScheduleWrite::Pause {
                name,
                paused,
                reply,
            } => Outcome::held(reply, Sqlite::pause_schedule(conn, &name, paused).await),
            ScheduleWrite::Delete { name, reply } => {
                Outcome::held(reply, Sqlite::delete_schedule(conn, &name).await)
            }
            ScheduleWrite::Advance { name, fired, reply } => {
                Outcome::held(reply, Sqlite::advance_schedule(conn, &name, fired).await)
            }
        }
    }
}

impl Schedules for Sqlite {}
