//! The storage contract, written once and run on every backend: each case (in the files of
//! this directory) is a test on a fresh SQLite file (`sqlite::<case>`) and one on a fresh
//! database of a real, throwaway Postgres cluster (`postgres::<case>`), so a failure names the
//! case and the backend. A case sees only the `Store` trait, plus, where it must, a second
//! handle on the same database or raw SQL behind the store's back (the [`Db`] of `db.rs`).
//!
//! The Postgres tests share the test process's one cluster (see `common/postgres.rs`, which
//! also says how it is stopped). Where Postgres cannot be started they fail, saying what is
//! missing.

mod admin;
mod db;
mod executors;
mod late_start;
mod limits;
mod queues;
mod retention;
mod together;
mod versions;
mod waits;
mod workflows;

pub use admin::*;
pub use db::*;
pub use executors::*;
pub use late_start::*;
pub use limits::*;
pub use queues::*;
pub use retention::*;
pub use together::*;
pub use versions::*;
pub use waits::*;
pub use workflows::*;

/// One test per case per backend. Cases listed under `store` take `&dyn Store`; those under
/// `db` take the [`Db`], for a second handle or raw SQL.
macro_rules! contract {
    (store: [$($case:ident),* $(,)?], db: [$($db_case:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::Db::sqlite().await;
                    super::$case(&*db.store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $db_case() {
                    let db = super::Db::sqlite().await;
                    super::$db_case(&db).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::Db::postgres(stringify!($case)).await;
                    super::$case(&*db.store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $db_case() {
                    let db = super::Db::postgres(stringify!($db_case)).await;
                    super::$db_case(&db).await;
                }
            )*
        }
    };
}

contract! {
    store: [
        insert_is_idempotent_and_returns_the_original,
        steps_round_trip_including_failures,
        duplicate_step_is_rejected,
        begin_execution_counts_and_takes_ownership,
        finish_keeps_the_first_terminal_state,
        listing_filters_and_orders_newest_first,
        listing_filters_by_queue_time_range_and_offset,
        listing_filters_by_instance_id_and_parent,
        components_are_stored_once,
        workflow_statuses_reads_many_in_the_order_asked,
        lifecycle_rules_hold_end_to_end,
        enqueue_creates_enqueued_rows_and_direct_starts_record_started_at,
        claim_takes_priority_then_fifo_up_to_max,
        claim_respects_global_concurrency,
        claim_respects_the_rate_limit_window,
        deduplication_rejects_a_second_active_workflow_only,
        queue_depths_and_status_counts,
        cancel_stops_active_workflows_and_leaves_ended_ones,
        cancelled_since_names_the_cancels_after_a_moment,
        resume_restarts_all_but_successes,
        fork_copies_the_workflow_and_the_steps_before_the_fork_point,
        trap_runs_memory_limits_and_pauses_are_kept,
        retention_deletes_only_ended_workflows_older_than_the_cutoff,
        retention_in_batches_lets_writers_through,
        messages_are_received_once_in_send_order_with_their_record,
        events_keep_their_latest_value,
        bytes_held_counts_what_a_workflow_sent_set_and_wrote,
        streams_are_read_from_any_offset_and_end_at_their_close,
        changes_since_name_what_was_sent_set_and_written,
        leases_are_renewed_and_list_what_each_executor_owns,
        writes_under_a_stale_epoch_are_refused,
        a_dead_executors_pending_work_is_adopted_once,
        work_of_an_executor_without_a_lease_is_adoptable,
        the_adoption_view_counts_only_lapsed_work,
        partitioned_claims_take_partitions_in_turn_within_each_ones_limit,
        step_args_digests_round_trip,
        upgrade_switches_the_version_under_the_epoch_and_records_the_move,
        component_versions_are_named_once_and_count_workflows_in_flight,
        import_creates_the_workflow_as_it_was_once,
        continue_as_new_keeps_the_run_and_starts_the_next,
        step_slots_bound_concurrency_and_free_with_their_epoch,
        step_slots_bound_the_rate_per_window,
        topic_types_are_kept_with_the_component,
        writes_in_flight_together_each_get_their_own_answer,
        a_start_written_late_is_the_row_it_ran_on,
        a_start_that_ended_before_its_row_is_written_ended,
    ],
    db: [
        corrupt_rows_are_reported_as_corrupt,
        concurrent_claimers_never_share_a_workflow,
        concurrent_claims_from_two_handles_keep_the_limit,
        concurrent_takers_on_two_handles_keep_the_step_limit,
    ],
}
