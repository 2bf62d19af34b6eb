//! Delivery of one sink's backlog. Each round cuts the notifications that are due, oldest first,
//! into a message of at most `max_batch` notifications and `max_bytes`, and sends it.
//!
//! - Backoff is per notification: what failed waits (1 s doubling to 5 min, with jitter) while
//!   new notifications go at once. A success means the receiver is back, so what waits on our
//!   own backoff becomes due again.
//! - A `Retry-After` (on 429 or 503) is the receiver speaking about itself: nothing goes to it
//!   before that time.
//! - A message refused as too large, or for something in it (413, 400, 422), is split: its
//!   notifications go in messages of at most half its size. A single notification still
//!   refused, or any refused by an endpoint-level error (401, 403, 404, …), goes to the
//!   dead-letter folder and never blocks the ones behind it.
//! - Each check's notifications arrive in order: one waits while an older one of the same check
//!   is still undelivered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Alerting;
use crate::alert::Notification;
use crate::alert::outbox::Entry;
use crate::metrics::Metrics;
use crate::sink::{Failure, Sink};

/// How often an idle sink looks for new notifications.
const IDLE: Duration = Duration::from_millis(200);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// When the dead-letter folder cannot be written, a refused notification waits this long.
const BURY_RETRY: Duration = Duration::from_secs(60);

/// Where one outbox entry stands with this sink.
#[derive(Debug, Clone, Copy)]
struct Track {
    due: Instant,
    backoff: Duration,
    /// The most notifications it may share a message with (itself included), lowered each time
    /// a message holding it is refused as a whole.
    limit: usize,
}

fn key(n: &Notification) -> (&str, &str) {
    (&n.env, &n.check)
}

/// The next message: due entries, oldest first, up to the batch and byte bounds, skipping any
/// whose check has an older entry that is not going in this message.
fn cut<'a>(
    backlog: &'a [Entry],
    tracks: &BTreeMap<u64, Track>,
    now: Instant,
    max_batch: usize,
    fits: &mut dyn FnMut(&[Notification], &Notification) -> bool,
) -> Vec<&'a Entry> {
    let mut blocked: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut batch: Vec<&Entry> = Vec::new();
    let mut notes: Vec<Notification> = Vec::new();
    let mut limit = max_batch.max(1);
    for e in backlog {
        let k = key(&e.notification);
        let Some(t) = tracks.get(&e.seq) else {
            continue;
        };
        if blocked.contains(&k) {
            continue;
        }
        if t.due > now {
            blocked.insert(k);
            continue;
        }
        let room = limit.min(t.limit);
        if !batch.is_empty() && batch.len() >= room {
            break;
        }
        // Asked even for the first one, which goes whatever its size.
        if !fits(&notes, &e.notification) && !batch.is_empty() {
            break;
        }
        limit = room;
        batch.push(e);
        notes.push(e.notification.clone());
    }
    batch
}

/// A spread of 0.8–1.2 for backoffs, so agents that failed together do not retry together.
struct Jitter(u64);

impl Jitter {
    fn new(seed: &str) -> Jitter {
        let mixed = seed.bytes().fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Jitter(mixed | 1)
    }

    fn spread(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        d.mul_f64(0.8 + 0.4 * ((self.0 >> 11) as f64 / (1u64 << 53) as f64))
    }
}

impl Alerting {
    /// Delivers one sink's backlog for ever. Entries leave the outbox only once accepted or
    /// buried in the dead-letter folder.
    pub async fn deliver(
        self: Arc<Self>,
        sink: Sink,
        engine: crate::net::Engine,
        metrics: Arc<Metrics>,
    ) {
        let mut tracks: BTreeMap<u64, Track> = BTreeMap::new();
        let mut paused_until = Instant::now();
        // New notifications wait until the batch window that the first of them opened closes,
        // so checks failing seconds apart after one bad deploy still make one message.
        let mut window_closes = Instant::now();
        let mut jitter = Jitter::new(&sink.name);
        let count = |outcome: &str, n: usize| {
            metrics
                .notifications
                .get_or_create(&vec![
                    ("sink".to_string(), sink.name.clone()),
                    ("outcome".to_string(), outcome.to_string()),
                ])
                .inc_by(n as u64);
        };
        loop {
            self.prune(&metrics);
            let backlog = self.backlog(&sink.name);
            let now = Instant::now();
            let present: BTreeSet<u64> = backlog.iter().map(|e| e.seq).collect();
            tracks.retain(|seq, _| present.contains(seq));
            for e in &backlog {
                if tracks.contains_key(&e.seq) {
                    continue;
                }
                if window_closes <= now {
                    window_closes = now + self.batch_window();
                }
                tracks.insert(
                    e.seq,
                    Track {
                        due: window_closes,
                        backoff: FIRST_BACKOFF,
                        limit: usize::MAX,
                    },
                );
            }
            let status_url = self.status_url();
            // The message's size, estimated as its frame plus each notification's own share.
            let overhead = sink.size(&[], &status_url);
            let mut used = overhead;
            let mut fits = |so_far: &[Notification], next: &Notification| {
                let own = sink
                    .size(std::slice::from_ref(next), &status_url)
                    .saturating_sub(overhead)
                    + 1;
                if so_far.is_empty() {
                    used = overhead;
                }
                let fit = used + own <= sink.max_bytes;
                if fit || so_far.is_empty() {
                    used += own;
                }
                fit
            };
            let batch: Vec<Entry> = if now < paused_until {
                Vec::new()
            } else {
                cut(&backlog, &tracks, now, sink.max_batch, &mut fits)
                    .into_iter()
                    .cloned()
                    .collect()
            };
            if batch.is_empty() {
                self.flush(&metrics);
                let next_due = tracks.values().map(|t| t.due).min().unwrap_or(now + IDLE);
                let wake = next_due
                    .max(paused_until)
                    .saturating_duration_since(now)
                    .clamp(Duration::from_millis(10), IDLE);
                tokio::time::sleep(wake).await;
                continue;
            }
            let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
            let notes: Vec<Notification> = batch.iter().map(|e| e.notification.clone()).collect();
            match sink.notify(&engine, &notes, &status_url).await {
                Ok(()) => {
                    self.delivered(&seqs, &metrics);
                    count("sent", seqs.len());
                    // The receiver is back: what waits on our own backoff goes now.
                    let now = Instant::now();
                    for t in tracks.values_mut() {
                        t.due = t.due.min(now);
                        t.backoff = FIRST_BACKOFF;
                    }
                }
                Err(Failure::Transient { why, retry_after }) => {
                    count("failed", 1);
                    let now = Instant::now();
                    let wait = match retry_after {
                        Some(wait) => {
                            paused_until = now + wait;
                            wait
                        }
                        None => {
                            let mut longest = Duration::ZERO;
                            for s in &seqs {
                                if let Some(t) = tracks.get_mut(s) {
                                    let wait = jitter.spread(t.backoff);
                                    longest = longest.max(wait);
                                    t.due = now + wait;
                                    t.backoff = (t.backoff * 2).min(MAX_BACKOFF);
                                }
                            }
                            longest
                        }
                    };
                    tracing::warn!(
                        sink = %sink.name,
                        notifications = seqs.len(),
                        "delivery failed, retrying in {:.1} s: {why}",
                        wait.as_secs_f64()
                    );
                }
                Err(Failure::Rejected { why, split: true }) if seqs.len() > 1 => {
                    count("failed", 1);
                    tracing::warn!(
                        sink = %sink.name,
                        notifications = seqs.len(),
                        "the receiver refused a message of {} notifications; sending them in halves: {why}",
                        seqs.len()
                    );
                    let (first, second) = seqs.split_at(seqs.len() / 2);
                    for (half, size) in [(first, first.len()), (second, second.len())] {
                        for s in half {
                            if let Some(t) = tracks.get_mut(s) {
                                t.limit = size;
                            }
                        }
                    }
                }
                Err(Failure::Rejected { why, .. }) => {
                    count("rejected", seqs.len());
                    if !self.bury(&batch, &why, &metrics) {
                        let later = Instant::now() + BURY_RETRY;
                        for s in &seqs {
                            if let Some(t) = tracks.get_mut(s) {
                                t.due = later;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Event, Severity};

    fn entry(seq: u64, check: &str) -> Entry {
        Entry {
            seq,
            sink: "s".into(),
            durable: true,
            notification: Notification {
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
                failed_runs: 1,
                finding: String::new(),
            },
        }
    }

    fn track(due: Instant, limit: usize) -> Track {
        Track {
            due,
            backoff: FIRST_BACKOFF,
            limit,
        }
    }

    fn seqs(batch: &[&Entry]) -> Vec<u64> {
        batch.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_waiting_notification_holds_back_its_check_only() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let backlog = [entry(1, "a"), entry(2, "b"), entry(3, "a"), entry(4, "c")];
        let mut tracks = BTreeMap::new();
        tracks.insert(1, track(later, usize::MAX));
        for s in 2..=4 {
            tracks.insert(s, track(now, usize::MAX));
        }
        let mut always = |_: &[Notification], _: &Notification| true;
        let batch = cut(&backlog, &tracks, now, 50, &mut always);
        assert_eq!(seqs(&batch), [2, 4], "a's second event waits for its first");
    }

    #[test]
    fn messages_keep_to_the_batch_byte_and_split_bounds() {
        let now = Instant::now();
        let backlog: Vec<Entry> = (1..=10).map(|s| entry(s, &format!("c{s}"))).collect();
        let mut tracks: BTreeMap<u64, Track> =
            (1..=10).map(|s| (s, track(now, usize::MAX))).collect();
        let mut always = |_: &[Notification], _: &Notification| true;
        assert_eq!(cut(&backlog, &tracks, now, 4, &mut always).len(), 4);
        let mut three = |so_far: &[Notification], _: &Notification| so_far.len() < 3;
        assert_eq!(cut(&backlog, &tracks, now, 50, &mut three).len(), 3);
        for s in 1..=5 {
            tracks.insert(s, track(now, 2));
        }
        assert_eq!(
            seqs(&cut(&backlog, &tracks, now, 50, &mut always)),
            [1, 2],
            "refused as a whole before: at most half"
        );
        let mut never = |_: &[Notification], _: &Notification| false;
        assert_eq!(
            cut(&backlog, &tracks, now, 50, &mut never).len(),
            1,
            "one notification over the byte bound still goes, alone"
        );
    }
}
