//! Alerting: the pure state machine that decides what to notify, and the durable outbox.

pub mod engine;
pub mod outbox;

pub use engine::{Engine, Event, Notification, Problem, Rule, Severity};
