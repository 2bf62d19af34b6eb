//! shipwatch: post-deploy synthetic monitoring. Runs the production-deployment checklist as code.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, validated with positions for every problem.
//! - [`plan`]: a config turned into runnable checks for one environment, secrets resolved.
//! - [`assert`]: the assertion language, interpolation and redaction.
//! - [`net`]: the one HTTP/TLS engine, with per-phase timings and hard limits.
//! - [`probe`]: one file per check kind; results are data, never `Err`.
//! - [`runner`]: runs a plan's checks concurrently, with `--wait` retries.
//! - [`report`]: text, JSON, JUnit and Markdown, each written to any `Write`.
//! - [`cli`]: the command line; `main.rs` only maps its result to an exit code.

pub mod agent;
pub mod alert;
pub mod assert;
pub mod check;
pub mod checklist;
pub mod cli;
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
