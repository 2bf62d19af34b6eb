//! The agent's alerting: feeds each run to the alert engine, persists its state, puts
//! notifications in the outbox, and delivers them per sink ([`delivery`]).

mod delivery;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use crate::alert::outbox::{DeadLetter, DeadLetters, Entry, Outbox, load_states, write_atomic};
use crate::alert::{Engine, Notification, Rule};
use crate::config::QuietSpec;
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::sink::Sink;

/// How often a firing alert is posted again to sinks that time alerts out.
const REFRESH_S: u64 = 60;
/// Notifications dropped undelivered that the status page lists.
const DROPS_SHOWN: usize = 20;

/// What the alerting part of a configuration says.
#[derive(Clone, Default)]
pub struct Settings {
    pub rule: Rule,
    pub overrides: BTreeMap<String, Rule>,
    pub sinks: Vec<Sink>,
    pub quiet: Vec<QuietSpec>,
    pub status_url: String,
    pub backlog: crate::config::Backlog,
    /// State changes within this window of the first go to a sink together.
    pub batch_window: std::time::Duration,
}

/// Notifications the outbox dropped undelivered (too old, or beyond its bound), for the page.
#[derive(Debug, Clone, Default)]
pub struct Dropped {
    pub expired: u64,
    pub overflowed: u64,
    /// The latest, newest last: when, why, and which notification for which sink.
    pub latest: std::collections::VecDeque<String>,
}

/// Shared by the recorder and the dispatchers.
pub struct Alerting {
    engine: Mutex<Engine>,
    outbox: Mutex<Outbox>,
    settings: RwLock<Settings>,
    state_path: PathBuf,
    refreshed: Mutex<BTreeMap<String, u64>>,
    /// The alert states changed and are not on disk yet. They are written only once every
    /// notification they led to is on disk (or delivered): a state must never say "notified"
    /// about a notification that a crash would lose.
    state_dirty: Mutex<bool>,
    /// Why `state_dir` could not be written, while that lasts.
    storage_error: Mutex<Option<String>>,
    dead: DeadLetters,
    dropped: Mutex<Dropped>,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Alerting {
    /// Opens `state_dir`: the alert states and the outbox a previous run left.
    pub fn open(
        state_dir: &std::path::Path,
        settings: Settings,
    ) -> Result<Alerting, super::AgentError> {
        std::fs::create_dir_all(state_dir).map_err(|source| super::AgentError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let state_path = state_dir.join("alerts.json");
        let (states, warning) = load_states(&state_path);
        if let Some(w) = warning {
            tracing::error!("{w}");
        }
        let (outbox, warnings) =
            Outbox::open(&state_dir.join("outbox")).map_err(super::AgentError::Outbox)?;
        for w in warnings {
            tracing::error!("{w}");
        }
        let mut engine = Engine {
            default_rule: settings.rule.clone(),
            overrides: settings.overrides.clone(),
            states,
        };
        // A crash between writing the outbox and the state leaves the outbox ahead.
        let mut replayed = false;
        for e in outbox.entries() {
            replayed |= engine.replay(&e.notification);
        }
        Ok(Alerting {
            engine: Mutex::new(engine),
            outbox: Mutex::new(outbox),
            settings: RwLock::new(settings),
            state_path,
            refreshed: Mutex::new(BTreeMap::new()),
            state_dirty: Mutex::new(replayed),
            storage_error: Mutex::new(None),
            dead: DeadLetters::new(state_dir.join("dead")),
            dropped: Mutex::new(Dropped::default()),
        })
    }

    /// The notifications receivers refused for good, oldest first.
    pub(crate) fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead
            .list()
            .into_iter()
            .filter_map(|(_, l)| l.ok())
            .collect()
    }

    /// What the outbox dropped undelivered since the agent started.
    pub fn dropped(&self) -> Dropped {
        self.dropped.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn batch_window(&self) -> std::time::Duration {
        self.settings
            .read()
            .map(|s| s.batch_window)
            .unwrap_or_default()
    }

    fn status_url(&self) -> String {
        self.settings
            .read()
            .map(|s| s.status_url.clone())
            .unwrap_or_default()
    }

    /// What waits for `sink`, oldest first.
    fn backlog(&self, sink: &str) -> Vec<Entry> {
        self.outbox
            .lock()
            .map(|o| o.pending_for(sink))
            .unwrap_or_default()
    }

    /// Forgets delivered entries and lets the state they held back be written.
    fn delivered(&self, seqs: &[u64], metrics: &Metrics) {
        if let Ok(mut o) = self.outbox.lock() {
            o.remove(seqs);
            metrics.queue_depth.set(o.len() as i64);
        }
        self.flush(metrics);
    }

    /// Moves refused entries to the dead-letter folder. False when the folder cannot be written:
    /// the entries then stay in the outbox.
    fn bury(&self, entries: &[Entry], answer: &str, metrics: &Metrics) -> bool {
        let at = now_s();
        for e in entries {
            let letter = DeadLetter {
                sink: e.sink.clone(),
                notification: e.notification.clone(),
                answer: answer.to_string(),
                at,
            };
            if let Err(err) = self.dead.bury(e.seq, &letter) {
                self.storage_failed(
                    metrics,
                    format!(
                        "cannot write the dead-letter folder {}: {err}",
                        self.dead.dir().display()
                    ),
                );
                return false;
            }
            tracing::error!(
                sink = %e.sink,
                check = %e.notification.check,
                env = %e.notification.env,
                fingerprint = %e.notification.fingerprint,
                "the receiver refused a notification for good: {answer}; it is kept in {} for `shipwatch notify --retry-dead`",
                self.dead.dir().display()
            );
            self.delivered(&[e.seq], metrics);
        }
        true
    }

    /// Drops what the backlog limits say must go, counting and logging each.
    fn prune(&self, metrics: &Metrics) {
        let backlog = self.settings.read().map(|s| s.backlog).unwrap_or_default();
        let gone = match self.outbox.lock() {
            Ok(mut o) => o.prune(backlog.max, backlog.max_age, now_s()),
            Err(_) => return,
        };
        if gone.is_empty() {
            return;
        }
        let Ok(mut dropped) = self.dropped.lock() else {
            return;
        };
        for (e, why) in gone {
            let reason = match why {
                crate::alert::outbox::Drop::Expired => {
                    dropped.expired += 1;
                    format!(
                        "older than outbox_max_age ({} s)",
                        backlog.max_age.as_secs()
                    )
                }
                crate::alert::outbox::Drop::Overflow => {
                    dropped.overflowed += 1;
                    format!("beyond outbox_max ({} waiting)", backlog.max)
                }
            };
            let n = &e.notification;
            tracing::error!(
                sink = %e.sink, check = %n.check, env = %n.env, fingerprint = %n.fingerprint,
                "a notification was dropped undelivered: {reason}"
            );
            metrics.count_notifications(&e.sink, why.outcome(), 1);
            dropped.latest.push_back(format!(
                "{} · {} · {} {} ({}) for {}: {reason}",
                crate::units::rfc3339(now_s()),
                n.env,
                n.check,
                n.event.as_str(),
                n.fingerprint,
                e.sink
            ));
            if dropped.latest.len() > DROPS_SHOWN {
                dropped.latest.pop_front();
            }
        }
        drop(dropped);
        self.flush(metrics);
    }

    /// Why notifications cannot be written to `state_dir` right now, if they cannot.
    pub(crate) fn storage_problem(&self) -> Option<String> {
        self.storage_error.lock().ok()?.clone()
    }

    /// Writes what only memory holds: outbox entries first, then the alert states once every
    /// entry is on disk. Called after every run and by the delivery loops, so a `state_dir` that
    /// comes back is written again without a restart.
    pub fn flush(&self, metrics: &Metrics) {
        let outbox_ok = match self.outbox.lock() {
            Ok(mut o) if !o.durable() => match o.persist() {
                Ok(()) => true,
                Err(e) => {
                    self.storage_failed(metrics, format!("cannot write the outbox: {e}"));
                    false
                }
            },
            Ok(_) => true,
            Err(_) => false,
        };
        let Ok(mut dirty) = self.state_dirty.lock() else {
            return;
        };
        if !outbox_ok {
            return;
        }
        if *dirty {
            let bytes = self
                .engine
                .lock()
                .ok()
                .and_then(|e| serde_json::to_vec(&e.states).ok());
            let written = bytes.map(|b| {
                if let Some(dir) = self.state_path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                write_atomic(&self.state_path, &b)
            });
            match written {
                Some(Ok(())) => *dirty = false,
                Some(Err(e)) => {
                    self.storage_failed(metrics, format!("cannot save the alert state: {e}"));
                    return;
                }
                None => return,
            }
        }
        if let Ok(mut err) = self.storage_error.lock()
            && err.take().is_some()
        {
            tracing::info!("state_dir is writable again; every notification is on disk");
        }
    }

    fn storage_failed(&self, metrics: &Metrics, why: String) {
        metrics.outbox_write_errors.inc();
        if let Ok(mut err) = self.storage_error.lock() {
            if err.is_none() {
                tracing::error!("{why}; notifications are kept in memory and written again");
            }
            *err = Some(why);
        }
    }

    /// New rules and sinks after a reload; alert states and the outbox carry over.
    pub(crate) fn configure(&self, settings: Settings) {
        if let Ok(mut e) = self.engine.lock() {
            e.default_rule = settings.rule.clone();
            e.overrides = settings.overrides.clone();
        }
        if let Ok(mut s) = self.settings.write() {
            *s = settings;
        }
    }

    pub fn sinks(&self) -> Vec<Sink> {
        self.settings
            .read()
            .map(|s| s.sinks.clone())
            .unwrap_or_default()
    }

    /// Takes in one run: state changes become notifications in the outbox, and are returned so
    /// the history can keep them as incidents.
    pub fn observe(&self, o: &Outcome, metrics: &Metrics) -> Option<Notification> {
        let now = now_s();
        let Ok(mut engine) = self.engine.lock() else {
            return None;
        };
        let note = engine.observe(o, now);
        let firing = engine.firing(&o.name, &o.environment);
        let refresh = if note.is_none() {
            engine.refresh(o, now)
        } else {
            None
        };
        drop(engine);
        metrics.set_firing(o, firing.map(|s| s.as_str()));
        if let Some(n) = &note {
            // The outbox first, then the state: a restart neither loses nor repeats the change.
            self.enqueue(n, |_| true, metrics);
            if let Ok(mut dirty) = self.state_dirty.lock() {
                *dirty = true;
            }
        }
        if let Some(n) = refresh {
            let key = n.fingerprint.clone();
            let due = self.refreshed.lock().map(|mut r| {
                let last = r.entry(key).or_insert(0);
                let due = now >= *last + REFRESH_S;
                if due {
                    *last = now;
                }
                due
            });
            if due.unwrap_or(false) {
                self.enqueue(
                    &n,
                    |s| matches!(s.to, crate::sink::Receiver::Alertmanager { .. }),
                    metrics,
                );
            }
        }
        self.flush(metrics);
        metrics
            .queue_depth
            .set(self.outbox.lock().map_or(0, |o| o.len() as i64));
        note
    }

    fn quiet(&self, n: &Notification) -> bool {
        let Ok(s) = self.settings.read() else {
            return false;
        };
        let t = n.at as i64;
        s.quiet.iter().any(|q| {
            t >= q.start && t < q.end && (q.checks.is_empty() || q.checks.contains(&n.check))
        })
    }

    fn enqueue(&self, n: &Notification, wanted: impl Fn(&Sink) -> bool, metrics: &Metrics) {
        if self.quiet(n) {
            tracing::info!(check = %n.check, env = %n.env, "notification held back by a quiet window");
            return;
        }
        let Ok(mut outbox) = self.outbox.lock() else {
            return;
        };
        let mut failed = None;
        for sink in self.sinks().iter().filter(|s| s.accepts(n) && wanted(s)) {
            if let Err(e) = outbox.push(&sink.name, n.clone()) {
                failed = Some(format!("cannot write the outbox: {e}"));
            }
        }
        drop(outbox);
        if let Some(why) = failed {
            self.storage_failed(metrics, why);
        }
    }
}
