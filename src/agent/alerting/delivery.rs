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
use crate::sink::{Sink, SinkError};

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

/// One sink's delivery state: where each waiting notification stands, and the sink's own waits.
struct Courier {
    alerting: Arc<Alerting>,
    sink: Sink,
    engine: crate::net::Engine,
    metrics: Arc<Metrics>,
    tracks: BTreeMap<u64, Track>,
    /// No message goes before this: the receiver's `Retry-After`.
    paused_until: Instant,
    /// New notifications wait until the batch window that the first of them opened closes, so
    /// checks failing seconds apart after one bad deploy still make one message.
    window_closes: Instant,
    jitter: Jitter,
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
        let now = Instant::now();
        let mut courier = Courier {
            jitter: Jitter::new(&sink.name),
            alerting: self,
            sink,
            engine,
            metrics,
            tracks: BTreeMap::new(),
            paused_until: now,
            window_closes: now,
        };
        loop {
            courier.round().await;
        }
    }
}

impl Courier {
    /// Sends the next message, or waits for one to be due.
    async fn round(&mut self) {
        self.alerting.prune(&self.metrics);
        let backlog = self.alerting.backlog(&self.sink.name);
        let now = Instant::now();
        self.track(&backlog, now);
        let status_url = self.alerting.status_url();
        let batch = if now < self.paused_until {
            Vec::new()
        } else {
            self.next_message(&backlog, now, &status_url)
        };
        if batch.is_empty() {
            self.alerting.flush(&self.metrics);
            tokio::time::sleep(self.idle(now)).await;
            return;
        }
        let notes: Vec<Notification> = batch.iter().map(|e| e.notification.clone()).collect();
        match self.sink.notify(&self.engine, &notes, &status_url).await {
            Ok(()) => self.sent(&batch),
            Err(SinkError::Transient { why, retry_after }) => self.retry(&batch, &why, retry_after),
            Err(SinkError::Rejected { why, split: true }) if batch.len() > 1 => {
                self.split(&batch, &why)
            }
            Err(SinkError::Rejected { why, .. }) => self.reject(&batch, &why),
        }
    }

    /// Forgets what left the outbox and starts tracking what is new.
    fn track(&mut self, backlog: &[Entry], now: Instant) {
        let present: BTreeSet<u64> = backlog.iter().map(|e| e.seq).collect();
        self.tracks.retain(|seq, _| present.contains(seq));
        for e in backlog {
            if self.tracks.contains_key(&e.seq) {
                continue;
            }
            if self.window_closes <= now {
                self.window_closes = now + self.alerting.batch_window();
            }
            let track = Track {
                due: self.window_closes,
                backoff: FIRST_BACKOFF,
                limit: usize::MAX,
            };
            self.tracks.insert(e.seq, track);
        }
    }

    /// The next message within the sink's bounds; its size is estimated as its frame plus each
    /// notification's own share.
    fn next_message(&self, backlog: &[Entry], now: Instant, status_url: &str) -> Vec<Entry> {
        let sink = &self.sink;
        let overhead = sink.size(&[], status_url);
        let mut used = overhead;
        let mut fits = |so_far: &[Notification], next: &Notification| {
            let own = sink
                .size(std::slice::from_ref(next), status_url)
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
        cut(backlog, &self.tracks, now, sink.max_batch, &mut fits)
            .into_iter()
            .cloned()
            .collect()
    }

    /// How long to sleep when nothing is due.
    fn idle(&self, now: Instant) -> Duration {
        let next_due = self
            .tracks
            .values()
            .map(|t| t.due)
            .min()
            .unwrap_or(now + IDLE);
        next_due
            .max(self.paused_until)
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(10), IDLE)
    }

    fn count(&self, outcome: &str, n: usize) {
        self.metrics
            .count_notifications(&self.sink.name, outcome, n as u64);
    }

    /// Accepted: the receiver is back, so what waits on our own backoff goes now.
    fn sent(&mut self, batch: &[Entry]) {
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
        self.alerting.delivered(&seqs, &self.metrics);
        self.count("sent", seqs.len());
        let now = Instant::now();
        for t in self.tracks.values_mut() {
            t.due = t.due.min(now);
            t.backoff = FIRST_BACKOFF;
        }
    }

    /// Worth another try: after the receiver's `Retry-After` (for the whole sink), or after
    /// each notification's own backoff.
    fn retry(&mut self, batch: &[Entry], why: &str, retry_after: Option<Duration>) {
        self.count("failed", 1);
        let now = Instant::now();
        let wait = match retry_after {
            Some(wait) => {
                self.paused_until = now + wait;
                wait
            }
            None => {
                let mut longest = Duration::ZERO;
                for e in batch {
                    if let Some(t) = self.tracks.get_mut(&e.seq) {
                        let wait = self.jitter.spread(t.backoff);
                        longest = longest.max(wait);
                        t.due = now + wait;
                        t.backoff = (t.backoff * 2).min(MAX_BACKOFF);
                    }
                }
                longest
            }
        };
        tracing::warn!(
            sink = %self.sink.name,
            notifications = batch.len(),
            "delivery failed, retrying in {:.1} s: {why}",
            wait.as_secs_f64()
        );
    }

    /// Refused as a whole: its notifications go in messages of at most half its size.
    fn split(&mut self, batch: &[Entry], why: &str) {
        self.count("failed", 1);
        tracing::warn!(
            sink = %self.sink.name,
            notifications = batch.len(),
            "the receiver refused a message of {} notifications; sending them in halves: {why}",
            batch.len()
        );
        let (first, second) = batch.split_at(batch.len() / 2);
        for half in [first, second] {
            for e in half {
                if let Some(t) = self.tracks.get_mut(&e.seq) {
                    t.limit = half.len();
                }
            }
        }
    }

    /// Refused for good: to the dead-letter folder, or, when that cannot be written, later.
    fn reject(&mut self, batch: &[Entry], why: &str) {
        self.count("rejected", batch.len());
        if !self.alerting.bury(batch, why, &self.metrics) {
            let later = Instant::now() + BURY_RETRY;
            for e in batch {
                if let Some(t) = self.tracks.get_mut(&e.seq) {
                    t.due = later;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, check: &str) -> Entry {
        Entry {
            seq,
            sink: "s".into(),
            durable: true,
            notification: Notification::sample(check),
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
