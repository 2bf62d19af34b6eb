//! shipwatch: post-deploy synthetic monitoring. Runs the production-deployment checklist as code.
//!
//! # Layout
//!
//! From the bottom up; a module only uses the ones above it in this list.
//!
//! - [`units`]: durations, "did you mean", milliseconds, counts in words, RFC 3339 times.
//! - [`html`]: the streaming tag scanner behind page assets and SRI.
//! - [`crypto`]: the TLS crypto provider and HMAC, behind one switch (aws-lc or ring).
//! - [`security`]: the CSP, HSTS, cookie and Permissions-Policy parsers, and the grade.
//! - [`assert`]: the assertion language, interpolation and redaction.
//! - [`net`]: the one HTTP/TLS engine, with per-phase timings and hard limits.
//! - [`outcome`]: what a check produced: statuses, findings, errors, outcomes and attempts.
//! - [`doc`]: the spanned TOML tree and its diagnostics, with positions for every problem.
//! - [`check`]: one module per check kind (its keys, its job, its probe) and the kind registry.
//! - [`alert`]: the alert state machine and the durable outbox.
//! - [`report`]: text, JSON, JUnit and Markdown, each written to any `Write`.
//! - [`compare`]: a run against a baseline or a stable stack: the `regress.*` findings.
//! - [`config`]: the whole file: defaults, environments, secrets, checks, agent and alerts.
//! - [`checklist`]: the built-in checklist and the starter config `init` writes.
//! - [`plan`]: a config turned into runnable jobs for one environment, secrets resolved.
//! - [`runner`]: runs a plan's checks concurrently, with `--wait` retries.
//! - [`metrics`]: the Prometheus registry the agent serves.
//! - [`sink`]: email, Slack, webhook and Alertmanager, plus the sign-off.
//! - [`agent`]: the scheduler, the HTTP server, the status page and alert delivery.
//! - [`cli`]: the commands; `main.rs` only maps argv and the environment to them.

pub mod agent;
pub mod alert;
pub mod assert;
pub mod check;
pub mod checklist;
pub mod cli;
pub mod compare;
pub mod config;
pub mod crypto;
pub mod doc;
pub mod html;
pub mod metrics;
pub mod net;
pub mod outcome;
pub mod plan;
pub mod report;
pub mod runner;
pub mod security;
pub mod sink;
pub mod units;

/// The check kinds under their earlier name, for code written against it.
pub use check as probe;
