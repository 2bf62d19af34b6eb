//! The alert state machine. Pure: `observe(outcome, now)` returns what to notify, and it never
//! reads the clock or does I/O, so every sequence can be tested with made-up times.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::outcome::Status;

/// When an alert fires and resolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Consecutive failed runs before firing.
    pub failures: u32,
    /// Alternatively: fire when `failures` of the last `of` runs failed.
    pub window: Option<u32>,
    /// Consecutive passing runs before resolving.
    pub successes: u32,
    /// Seconds between reminders while firing; 0 for none.
    pub repeat_s: u64,
    pub send_resolved: bool,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            failures: 3,
            window: None,
            successes: 2,
            repeat_s: 4 * 3600,
            send_resolved: true,
        }
    }
}

/// How bad a firing alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Firing,
    Escalated,
    Reminder,
    Resolved,
    /// `shipwatch notify --test`: a message to prove the sink works, never an alert.
    Test,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Firing => "firing",
            Event::Escalated => "escalated",
            Event::Reminder => "reminder",
            Event::Resolved => "resolved",
            Event::Test => "test",
        }
    }
}

/// A finding as a message shows it: expected vs actual, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub status: String,
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

/// One thing to tell the receivers. The fingerprint (check, env, start) is stable across
/// reminders, resolve and restarts, so receivers can deduplicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub fingerprint: String,
    pub event: Event,
    pub check: String,
    pub kind: String,
    pub env: String,
    pub severity: Severity,
    pub problems: Vec<Problem>,
    /// Unix seconds of the first failed run of this alert.
    pub first_failure: u64,
    /// Unix seconds the alert fired.
    pub started_at: u64,
    /// Unix seconds of this notification.
    pub at: u64,
    pub failed_runs: u32,
    /// The finding that fired the alert; stable for its lifetime.
    #[serde(default)]
    pub finding: String,
}

#[cfg(test)]
impl Notification {
    /// A critical firing notification for `check` in `prod`, for tests.
    pub(crate) fn sample(check: &str) -> Notification {
        Notification {
            fingerprint: format!("prod:{check}:1"),
            event: Event::Firing,
            check: check.into(),
            kind: "http".into(),
            env: "prod".into(),
            severity: Severity::Critical,
            problems: vec![],
            first_failure: 1,
            started_at: 1,
            at: 1,
            failed_runs: 3,
            finding: "http.status".into(),
        }
    }
}

/// The per-check state that survives restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub firing: Option<Severity>,
    pub started_at: u64,
    pub first_failure: Option<u64>,
    pub failed_runs: u32,
    pub consecutive_failures: u32,
    pub consecutive_passes: u32,
    pub recent: VecDeque<bool>,
    pub last_notified: u64,
    /// The finding that made the alert fire, kept so receivers see one stable alert.
    #[serde(default)]
    pub finding: String,
}

/// Every check's alert state and the rules that drive it.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub default_rule: Rule,
    pub overrides: BTreeMap<String, Rule>,
    pub states: BTreeMap<String, AlertState>,
}

fn severity_of(o: &Outcome) -> Option<Severity> {
    match o.status {
        Status::Pass => None,
        Status::Warn => Some(Severity::Warning),
        Status::Fail | Status::Error => Some(Severity::Critical),
    }
}

fn problems(o: &Outcome) -> Vec<Problem> {
    let mut out: Vec<Problem> = o
        .findings
        .iter()
        .filter(|f| f.status >= Status::Warn)
        .map(|f| Problem {
            id: f.id.clone(),
            status: f.status.as_str().into(),
            message: f.message.clone(),
            expected: f.expected.clone(),
            actual: f.actual.clone(),
        })
        .collect();
    if let Some(e) = &o.error {
        out.insert(
            0,
            Problem {
                id: format!("{}.run", o.kind),
                status: "error".into(),
                message: format!("{}: {}", e.kind, e.message),
                expected: None,
                actual: None,
            },
        );
    }
    out
}

fn notification(
    o: &Outcome,
    st: &AlertState,
    event: Event,
    severity: Severity,
    now: u64,
) -> Notification {
    Notification {
        fingerprint: format!("{}:{}:{}", o.environment, o.name, st.started_at),
        event,
        check: o.name.clone(),
        kind: o.kind.to_string(),
        env: o.environment.clone(),
        severity,
        problems: problems(o),
        first_failure: st.first_failure.unwrap_or(now),
        started_at: st.started_at,
        at: now,
        failed_runs: st.failed_runs,
        finding: st.finding.clone(),
    }
}

/// The state key of a check in an environment.
pub fn key(check: &str, env: &str) -> String {
    format!("{env}/{check}")
}

impl Engine {
    fn rule(&self, check: &str) -> &Rule {
        self.overrides.get(check).unwrap_or(&self.default_rule)
    }

    /// Takes in one run at `now` (Unix seconds) and says what to notify, if anything.
    pub fn observe(&mut self, o: &Outcome, now: u64) -> Option<Notification> {
        let rule = self.rule(&o.name).clone();
        let st = self.states.entry(key(&o.name, &o.environment)).or_default();
        let sev = severity_of(o);
        let before = st.firing;
        let failed = sev.is_some();
        st.recent.push_back(failed);
        while st.recent.len() > rule.window.unwrap_or(rule.failures).max(1) as usize {
            st.recent.pop_front();
        }
        if failed {
            st.consecutive_failures += 1;
            st.consecutive_passes = 0;
            st.failed_runs += 1;
            st.first_failure.get_or_insert(now);
        } else {
            st.consecutive_passes += 1;
            st.consecutive_failures = 0;
        }
        let trips = match rule.window {
            Some(_) => st.recent.iter().filter(|f| **f).count() as u32 >= rule.failures,
            None => st.consecutive_failures >= rule.failures,
        };
        let event = match (st.firing, sev) {
            (None, Some(s)) if trips => {
                st.firing = Some(s);
                st.started_at = now;
                st.finding = problems(o)
                    .first()
                    .map(|p| p.id.clone())
                    .unwrap_or_default();
                Some(Event::Firing)
            }
            (None, None) => {
                // A pass before the alert fired forgets the failures that led nowhere.
                if rule.window.is_none() || !st.recent.iter().any(|f| *f) {
                    st.first_failure = None;
                    st.failed_runs = 0;
                }
                None
            }
            (None, Some(_)) => None,
            (Some(cur), Some(s)) if s > cur => {
                st.firing = Some(s);
                Some(Event::Escalated)
            }
            (Some(_), Some(_)) if rule.repeat_s > 0 && now >= st.last_notified + rule.repeat_s => {
                Some(Event::Reminder)
            }
            (Some(_), Some(_)) => None,
            (Some(_), None) if st.consecutive_passes >= rule.successes => {
                st.firing = None;
                Some(Event::Resolved)
            }
            (Some(_), None) => None,
        }?;
        st.last_notified = now;
        let n = notification(
            o,
            st,
            event,
            st.firing.or(before).or(sev).unwrap_or(Severity::Warning),
            now,
        );
        if event == Event::Resolved {
            st.first_failure = None;
            st.failed_runs = 0;
            st.recent.clear();
            if !rule.send_resolved {
                return None;
            }
        }
        Some(n)
    }

    /// A refresh of a firing alert, for receivers that time alerts out (Alertmanager). It changes
    /// no state; `None` when the check is not firing.
    pub fn refresh(&self, o: &Outcome, now: u64) -> Option<Notification> {
        let st = self.states.get(&key(&o.name, &o.environment))?;
        Some(notification(o, st, Event::Reminder, st.firing?, now))
    }

    /// Brings a check's state up to a notification found in the outbox. The outbox is written
    /// before the state file, so after a crash between the two writes the outbox is the later
    /// truth: without this, a firing alert would never resolve, or fire again under a new
    /// fingerprint. Returns whether the state changed.
    pub(crate) fn replay(&mut self, n: &Notification) -> bool {
        let st = self.states.entry(key(&n.check, &n.env)).or_default();
        let before = st.clone();
        match n.event {
            Event::Firing | Event::Escalated | Event::Reminder => {
                if n.started_at > st.started_at || (st.firing.is_none() && st.started_at == 0) {
                    st.firing = Some(n.severity);
                    st.started_at = n.started_at;
                    st.first_failure = Some(n.first_failure);
                    st.failed_runs = n.failed_runs;
                    st.finding = n.finding.clone();
                    st.consecutive_passes = 0;
                    st.last_notified = st.last_notified.max(n.at);
                } else if n.started_at == st.started_at && st.firing.is_some() {
                    st.firing = st.firing.max(Some(n.severity));
                }
            }
            // A test message never reaches the outbox; nothing to bring up to date.
            Event::Test => {}
            Event::Resolved => {
                if st.firing.is_some() && n.started_at == st.started_at {
                    st.firing = None;
                    st.first_failure = None;
                    st.failed_runs = 0;
                    st.consecutive_failures = 0;
                    st.recent.clear();
                    st.last_notified = st.last_notified.max(n.at);
                }
            }
        }
        *st != before
    }

    /// Whether a check's alert fires now, and how badly.
    pub fn firing(&self, check: &str, env: &str) -> Option<Severity> {
        self.states.get(&key(check, env)).and_then(|s| s.firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Finding, ProbeError};

    fn run(status: Status) -> Outcome {
        let err = ProbeError {
            kind: "dns",
            message: "x".into(),
        };
        let mut o = Outcome::could_not_run("api", "http", "prod", err);
        o.error = None;
        o.status = status;
        if status != Status::Pass {
            let fs = if status == Status::Warn {
                Status::Warn
            } else {
                Status::Fail
            };
            o.findings =
                vec![Finding::new("http.status", fs, "status 503").with_values("== 200", "503")];
        }
        o
    }

    /// Feeds statuses one minute apart; returns the events with the minute they happened.
    fn feed(engine: &mut Engine, seq: &[Status], start: u64) -> Vec<(u64, Event, Severity)> {
        seq.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let now = start + 60 * i as u64;
                engine
                    .observe(&run(*s), now)
                    .map(|n| ((now - start) / 60, n.event, n.severity))
            })
            .collect()
    }

    use Status::{Fail as F, Pass as P, Warn as W};

    #[test]
    fn replaying_the_outbox_catches_the_state_up() {
        let mut fired = Engine::default();
        let events: Vec<Notification> = [F, F, F, P, P]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| fired.observe(&run(*s), 100 + i as u64))
            .collect();
        assert_eq!(events.len(), 2);
        // The state file never saw the firing: replaying it makes the alert fire.
        let mut e = Engine::default();
        assert!(e.replay(&events[0]));
        assert_eq!(e.firing("api", "prod"), Some(Severity::Critical));
        assert!(!e.replay(&events[0]), "replay is idempotent");
        assert!(e.replay(&events[1]));
        assert_eq!(e.firing("api", "prod"), None);
        // A firing older than the episode the state knows changes nothing.
        assert!(!e.replay(&events[0]));
    }

    #[test]
    fn three_failures_fire_two_passes_resolve() {
        let mut e = Engine::default();
        let events = feed(&mut e, &[F, F, P, F, F, F, F, P, P], 0);
        assert_eq!(
            events,
            [
                (5, Event::Firing, Severity::Critical),
                (8, Event::Resolved, Severity::Critical)
            ]
        );
        assert_eq!(e.firing("api", "prod"), None);
    }

    #[test]
    fn reminders_repeat_while_firing() {
        let mut e = Engine {
            default_rule: Rule {
                repeat_s: 180,
                ..Rule::default()
            },
            ..Engine::default()
        };
        let events = feed(&mut e, &[F; 10], 0);
        let minutes: Vec<(u64, Event)> = events.iter().map(|(m, ev, _)| (*m, *ev)).collect();
        assert_eq!(
            minutes,
            [
                (2, Event::Firing),
                (5, Event::Reminder),
                (8, Event::Reminder)
            ]
        );
    }

    #[test]
    fn warning_escalates_to_critical() {
        let mut e = Engine::default();
        let events = feed(&mut e, &[W, W, W, W, F, F, P, P], 0);
        assert_eq!(
            events,
            [
                (2, Event::Firing, Severity::Warning),
                (4, Event::Escalated, Severity::Critical),
                (7, Event::Resolved, Severity::Critical)
            ]
        );
    }

    #[test]
    fn a_window_rule_fires_on_flapping_checks() {
        let mut e = Engine {
            default_rule: Rule {
                failures: 3,
                window: Some(5),
                ..Rule::default()
            },
            ..Engine::default()
        };
        let events = feed(&mut e, &[F, P, F, P, F, P, P], 0);
        assert_eq!(
            events,
            [
                (4, Event::Firing, Severity::Critical),
                (6, Event::Resolved, Severity::Critical)
            ]
        );
        let mut strict = Engine::default();
        assert!(
            feed(&mut strict, &[F, P, F, P, F, P, P], 0).is_empty(),
            "consecutive rule ignores flapping"
        );
    }

    #[test]
    fn per_check_overrides_and_silent_resolve() {
        let mut e = Engine::default();
        e.overrides.insert(
            "api".into(),
            Rule {
                failures: 1,
                successes: 1,
                send_resolved: false,
                ..Rule::default()
            },
        );
        assert_eq!(
            feed(&mut e, &[F, P], 0),
            [(0, Event::Firing, Severity::Critical)]
        );
        assert_eq!(
            e.firing("api", "prod"),
            None,
            "resolved even though no message went out"
        );
    }

    #[test]
    fn the_fingerprint_is_stable_for_one_alert() {
        let mut e = Engine {
            default_rule: Rule {
                failures: 1,
                repeat_s: 60,
                ..Rule::default()
            },
            ..Engine::default()
        };
        let a = e.observe(&run(F), 1000).unwrap();
        let b = e.observe(&run(F), 1060).unwrap();
        assert_eq!((a.event, b.event), (Event::Firing, Event::Reminder));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint, "prod:api:1000");
        assert_eq!(b.problems[0].actual.as_deref(), Some("503"));
        assert_eq!((b.first_failure, b.failed_runs), (1000, 2));
    }
}
