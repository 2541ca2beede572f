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
    if let Some(instance) = &filter.instance {
        and(query, "instance = ");
        query.push_bind(instance.clone());
    }
    if let Some(parent) = &filter.parent {
        and(query, "parent_workflow_id = ");
        query.push_bind(parent.clone());
    }
    if let Some(version) = &filter.app_version {
        and(query, "app_version LIKE ");
        query.push_bind(format!("{}%", escape_like(version)));
        query.push(" ESCAPE '\\'");
    }
    if let Some(text) = &filter.id_contains {
        // LIKE with its wildcards escaped: the text matches only itself.
        and(query, "workflow_id LIKE ");
        query.push_bind(format!("%{}%", escape_like(text)));
        query.push(" ESCAPE '\\'");
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

/// `text` with LIKE's wildcards and its escape character escaped.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
