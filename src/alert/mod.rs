//! Alerting: the pure state machine that decides what to notify.

pub mod engine;

pub use engine::{Engine, Event, Notification, Problem, Rule, Severity};
