//! Plain aligned tables for humans; every listing also has `--json` for programs.

use super::time::format_ms;
use reprise_store::WorkflowRecord;

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Shortens long values so a table stays on one line per row.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// The workflow listing used by `workflow list` and `recover`.
pub fn print_workflows(workflows: &[WorkflowRecord]) {
    let rows: Vec<Vec<String>> = workflows
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.name.clone(),
                w.status.to_string(),
                format_ms(w.created_at),
                w.queue_name.clone().unwrap_or_default(),
                w.instance.clone(),
                w.app_version.chars().take(12).collect(),
                w.executions.to_string(),
                w.trap_class.clone().unwrap_or_default(),
                clip(w.output.as_deref().or(w.error.as_deref()).unwrap_or(""), 48),
            ]
        })
        .collect();
    print(
        &[
            "ID",
            "NAME",
            "STATUS",
            "CREATED (UTC)",
            "QUEUE",
            "INSTANCE",
            "VERSION",
            "EXECUTIONS",
            "LAST TRAP",
            "OUTPUT / ERROR",
        ],
        &rows,
    );
}
