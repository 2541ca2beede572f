//! The WHERE clause of a workflow listing, written once for every backend: each filter that is
//! set becomes a bound condition, never formatted text.

use sqlx::QueryBuilder;

use super::WorkflowFilter;

/// Appends ` WHERE … AND …` for the filters that are set (nothing when none is).
pub(super) fn push_filter_clauses<DB>(query: &mut QueryBuilder<DB>, filter: &WorkflowFilter)
where
    DB: sqlx::Database,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut joiner = " WHERE ";
    let mut and = |query: &mut QueryBuilder<DB>, clause: &str| {
        query.push(joiner).push(clause);
        joiner = " AND ";
    };
    if let Some(status) = filter.status {
        and(query, "status = ");
        query.push_bind(status.as_str().to_string());
    }
    if let Some(name) = &filter.name {
        and(query, "name = ");
        query.push_bind(name.clone());
    }
    if let Some(queue) = &filter.queue {
        and(query, "queue_name = ");
        query.push_bind(queue.clone());
    }
    if let Some(after) = filter.created_after {
        and(query, "created_at >= ");
        query.push_bind(after);
    }
    if let Some(before) = filter.created_before {
        and(query, "created_at < ");
        query.push_bind(before);
    }
}
