//! A real `reprise serve`: its API and client crate, hostile clients, the web UI in a real
//! browser, JSON logs, traces over OTLP, schedules, the approval driven from outside, and
//! starts that survive a lossy network.

mod access;
mod approval;
mod enqueue_retry;
pub(crate) mod fulfilment;
mod hostile_clients;
mod json_logs;
mod quotas;
mod reach;
mod schedules;
pub(crate) mod serve;
mod telemetry;
mod versions;
mod web_ui;
