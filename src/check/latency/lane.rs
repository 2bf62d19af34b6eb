//! A lane: one HTTP/2 connection keeping `streams` of the run's requests in flight, driven as
//! h2load drives a connection. Each turn sends every request that is due in one write, then
//! reads what the server sent and answers it; a finished stream's slot takes the next request.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::{Counts, REQUEST_TIMEOUT, Shared, claim, progressed, record};
use crate::net::{Alarm, Block, Event, First, NetError, Phase, RECV_WINDOW, Wire2};

/// Reads a lane makes without waiting before it writes again.
const READS_PER_TURN: usize = 16;

/// A request in flight, or waiting to be sent again.
#[derive(Clone, Copy)]
struct Flight {
    /// When it should have been sent (open loop) or was claimed (closed loop).
    intended: Instant,
    sent: Instant,
    status: Option<u16>,
    /// Answer bytes since the stream's window was last given back.
    unacked: u32,
    /// Sent again once already, after its connection closed before answering.
    again: bool,
    /// Sent during the warm-up: neither timed nor counted.
    warm: bool,
}

/// The lane's state across its connections.
struct Lane<'a> {
    s: &'a Shared,
    /// The request; `None` when it cannot be sent over HTTP/2 (every request then fails).
    block: Option<&'a Block>,
    streams: usize,
    conn: Option<Wire2>,
    /// Streams of `conn` in flight, oldest first (stream ids grow with time).
    flying: BTreeMap<u32, Flight>,
    /// Claimed requests not sent yet: open-loop slots waiting for their time.
    waiting: VecDeque<Instant>,
    /// Requests to send again on a new connection.
    again: VecDeque<Flight>,
    /// Requests answered on `conn`: a connection that never answered is not tried twice.
    answered: u64,
    /// When `conn` was opened.
    opened: Instant,
    counts: Counts,
    claimed: std::ops::Range<u64>,
    unreported: u64,
    alarm: Alarm,
    events: Vec<Event>,
}

/// Runs a lane of `streams` in-flight requests: its share of the warm-up, then timed requests
/// until the run's requests or time are used up.
pub(super) async fn lane(
    s: &Shared,
    streams: usize,
    hist: &std::sync::Mutex<Histogram<u64>>,
) -> Counts {
    let mut lane = Lane {
        s,
        block: s.block.as_ref().ok(),
        streams: streams.max(1),
        conn: None,
        flying: BTreeMap::new(),
        waiting: VecDeque::new(),
        again: VecDeque::new(),
        answered: 0,
        opened: Instant::now(),
        counts: Counts::default(),
        claimed: 0..0,
        unreported: 0,
        alarm: Alarm::default(),
        events: Vec::new(),
    };
    lane.drive(hist, None).await;
    lane.counts = Counts::default();
    s.barrier.wait().await;
    let start = *s.start.get_or_init(|| async { Instant::now() }).await;
    lane.drive(hist, Some(start)).await;
    s.done.fetch_add(lane.unreported, Ordering::Relaxed);
    lane.counts
}

impl Lane<'_> {
    /// Sends and reads until no request is left: the warm-up's (`start` unset) or the run's.
    async fn drive(&mut self, hist: &std::sync::Mutex<Histogram<u64>>, start: Option<Instant>) {
        let mut exhausted = false;
        loop {
            let room = self
                .streams
                .min(self.conn.as_ref().map_or(usize::MAX, Wire2::max_streams))
                .max(1);
            while !exhausted && self.flying.len() + self.waiting.len() + self.again.len() < room {
                match self.next(start) {
                    Some(intended) => self.waiting.push_back(intended),
                    None => exhausted = true,
                }
            }
            if self.flying.is_empty() && self.waiting.is_empty() && self.again.is_empty() {
                return;
            }
            if self.flying.is_empty() && self.conn.as_ref().is_none_or(Wire2::is_draining) {
                self.conn = None;
                if !self.open().await {
                    continue;
                }
            }
            self.send_due(room);
            let deadline = self.wake_at();
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let read = match conn.flush().await {
                Ok(()) => self.alarm.within(deadline, conn.fill()).await,
                Err(e) => Some(Err(e)),
            };
            let Some(read) = read else {
                self.expire();
                continue;
            };
            if self.took(read, hist) {
                // The next requests go out a turn of the event loop later, after what else
                // arrived meanwhile is read: larger batches each way, as h2load writes once a
                // turn of its loop.
                tokio::task::yield_now().await;
                self.read_ready(hist);
            }
        }
    }

    /// Reads whatever else has already arrived, without waiting; a few reads at most, so that
    /// a server that never stops sending cannot keep the lane from its timers.
    fn read_ready(&mut self, hist: &std::sync::Mutex<Histogram<u64>>) {
        use futures_util::FutureExt;
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let Some(read) = conn.fill().now_or_never() else {
                return;
            };
            if !self.took(read, hist) {
                return;
            }
        }
    }

    /// Settles what a read brought; false when nothing came because the connection is gone.
    fn took(
        &mut self,
        read: Result<usize, NetError>,
        hist: &std::sync::Mutex<Histogram<u64>>,
    ) -> bool {
        match read {
            Ok(n) if n > 0 => {
                self.read(hist);
                true
            }
            Ok(_) => {
                self.lost(NetError::Closed("the server closed the connection".into()));
                false
            }
            Err(e) => {
                self.lost(e);
                false
            }
        }
    }

    /// The next request to send and when it is meant to go; `None` when there is none.
    fn next(&mut self, start: Option<Instant>) -> Option<Instant> {
        let s = self.s;
        let now = Instant::now();
        if now >= s.deadline {
            return None;
        }
        let Some(start) = start else {
            return s
                .warmup
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| w.checked_sub(1))
                .ok()
                .map(|_| now);
        };
        if s.until.is_some_and(|d| now.duration_since(start) >= d) {
            return None;
        }
        let i = self.claimed.next().or_else(|| {
            self.claimed = claim(s);
            self.claimed.next()
        })?;
        let intended = match s.interval {
            Some(iv) => start + iv.mul_f64(i as f64),
            None => now,
        };
        (intended < s.deadline).then_some(intended)
    }

    /// Opens the lane's connection; false, with one request failed, when it cannot be had.
    async fn open(&mut self) -> bool {
        let s = self.s;
        // An open-loop slot is not failed before its time: a server down for a second must
        // not use up the whole run's slots at once.
        if let Some(t) = self
            .waiting
            .front()
            .filter(|t| self.again.is_empty() && **t > Instant::now())
        {
            tokio::time::sleep_until(*t).await;
        }
        let deadline = (Instant::now() + REQUEST_TIMEOUT).min(s.deadline);
        self.answered = 0;
        let failure = match &s.block {
            Err(e) => e.clone(),
            Ok(_) => match s
                .engine
                .open_lane(&s.request, s.protocol, &s.overrides, deadline)
                .await
            {
                Ok(Some(conn)) => {
                    self.conn = Some(conn);
                    self.opened = Instant::now();
                    return true;
                }
                Ok(None) => NetError::Protocol(
                    "the server answered in HTTP/1.1, which carries one request at a time: \
                     streams needs HTTP/2 (set http2 = false and raise concurrency instead)"
                        .into(),
                ),
                Err(e) => e,
            },
        };
        self.fail_one(&failure);
        false
    }

    /// Without a connection, one request fails, as a worker's would, and the next tries again.
    fn fail_one(&mut self, e: &NetError) {
        if let Some(f) = self.again.pop_front() {
            self.failed_flight(&f, e);
        } else if self.waiting.pop_front().is_some() && self.s.start.get().is_some() {
            self.counts.attempts += 1;
            self.failed(e);
        }
    }

    /// Starts the requests that are due: those to send again first, then the waiting ones
    /// whose time has come.
    fn send_due(&mut self, room: usize) {
        let (Some(conn), Some(block)) =
            (self.conn.as_mut().filter(|c| c.takes_streams()), self.block)
        else {
            return;
        };
        let now = Instant::now();
        let warm = self.s.start.get().is_none();
        while self.flying.len() < room {
            let flight = if let Some(f) = self.again.pop_front() {
                f
            } else if self.waiting.front().is_some_and(|t| *t <= now) {
                let intended = self.waiting.pop_front().unwrap_or(now);
                if !warm {
                    self.counts.attempts += 1;
                }
                Flight {
                    intended,
                    sent: now,
                    status: None,
                    unacked: 0,
                    again: false,
                    warm,
                }
            } else {
                break;
            };
            self.flying.insert(conn.start(block), flight);
        }
    }

    /// When the lane must wake without news from the server: the oldest request's timeout,
    /// the next open-loop slot, or the run's end.
    fn wake_at(&self) -> Instant {
        let oldest = self
            .flying
            .values()
            .next()
            .map(|f| f.sent + REQUEST_TIMEOUT);
        // Only an open loop's slots have times; a closed loop sends as answers free streams.
        let sending = self.conn.as_ref().is_some_and(Wire2::takes_streams);
        let slot = (self.s.interval.is_some() && sending)
            .then(|| self.waiting.front().copied())
            .flatten();
        let settling = self
            .conn
            .as_ref()
            .filter(|c| !c.is_settled())
            .map(|_| self.opened + REQUEST_TIMEOUT);
        [oldest, slot, settling]
            .into_iter()
            .flatten()
            .fold(self.s.deadline, Instant::min)
    }

    /// Reads the frames that arrived and settles the streams they finish.
    fn read(&mut self, hist: &std::sync::Mutex<Histogram<u64>>) {
        let (Some(conn), Some(block)) = (self.conn.as_mut(), self.block) else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        if let Err(e) = conn.frames(block, &mut events) {
            self.events = events;
            self.events.clear();
            return self.lost(e);
        }
        for event in events.drain(..) {
            self.settle(event, hist);
        }
        self.events = events;
    }

    fn settle(&mut self, event: Event, hist: &std::sync::Mutex<Histogram<u64>>) {
        match event {
            Event::Headers { id, first, end } => {
                let Some(f) = self.flying.get_mut(&id) else {
                    return;
                };
                if f.status.is_none() {
                    match first {
                        First::Status(s) if s >= 200 => f.status = Some(s),
                        First::Status(_) => {}
                        First::Other => {
                            return self.stream_failed(id, NetError::Protocol(
                                "no valid HTTP response: an HTTP/2 answer whose first field is not :status"
                                    .into(),
                            ));
                        }
                        First::Unreadable => {
                            return self.stream_failed(id, NetError::Protocol(
                                "an HTTP/2 answer whose first field has a Huffman-coded name, which the \
                                 streams client does not decode: set streams = 1 to time this server"
                                    .into(),
                            ));
                        }
                    }
                }
                if end {
                    self.finish(id, hist);
                }
            }
            Event::Data { id, len, end } => {
                let Some(f) = self.flying.get_mut(&id) else {
                    return;
                };
                f.unacked += len;
                if f.unacked >= RECV_WINDOW / 2 {
                    let n = std::mem::take(&mut f.unacked);
                    if let Some(c) = self.conn.as_mut() {
                        c.release(id, n);
                    }
                }
                if end {
                    self.finish(id, hist);
                }
            }
            Event::Reset { id, code } => self.reset(id, code),
            Event::GoAway { last, code } => {
                let unprocessed: Vec<u32> =
                    self.flying.range(last + 1..).map(|(id, _)| *id).collect();
                for id in unprocessed {
                    let why = format!(
                        "the server closed the connection ({}) before taking the request",
                        crate::net::code_name(code)
                    );
                    self.reconnect_or_fail(id, true, why);
                }
            }
        }
    }

    /// A stream ended: its answer is timed, and counted an error from 400 up.
    fn finish(&mut self, id: u32, hist: &std::sync::Mutex<Histogram<u64>>) {
        let Some(f) = self.flying.remove(&id) else {
            return;
        };
        self.answered += 1;
        let Some(status) = f.status else {
            return self.failed_flight(
                &f,
                &NetError::Protocol(
                    "no valid HTTP response: a stream ended without an answer".into(),
                ),
            );
        };
        if !f.warm {
            record(hist, f.intended, status, &mut self.counts);
            progressed(self.s, &mut self.unreported);
        }
    }

    /// The server reset a stream: one it refused to take is sent again, any other failed.
    fn reset(&mut self, id: u32, code: u32) {
        if let Some(c) = self.conn.as_mut() {
            c.forget(id);
        }
        let why = format!(
            "the server reset the stream ({})",
            crate::net::code_name(code)
        );
        if code == crate::net::REFUSED_STREAM {
            self.send_again_or_fail(id, true, why);
        } else if let Some(f) = self.flying.remove(&id) {
            self.failed_flight(&f, &NetError::Protocol(why));
        }
    }

    /// The connection is gone: requests it never answered are sent again on a new one, once,
    /// if they may be; the others failed.
    fn lost(&mut self, e: NetError) {
        self.conn = None;
        let ids: Vec<u32> = self.flying.keys().copied().collect();
        let message = e.to_string();
        let proven = self.answered > 0 && matches!(e, NetError::Closed(_));
        if ids.is_empty() {
            // Lost before any request went out on it: as a failed connection, one request fails.
            return self.fail_one(&e);
        }
        for id in ids {
            self.reconnect_or_fail(id, proven, message.clone());
        }
    }

    /// A request its connection will not answer goes again on the next connection, as a
    /// reconnect.
    fn reconnect_or_fail(&mut self, id: u32, may: bool, why: String) {
        if self.send_again_or_fail(id, may, why) {
            self.counts.reconnects += 1;
        }
    }

    /// Queues a request the server did not take to be sent again, once, if it may be sent
    /// twice; fails it otherwise. True when queued.
    fn send_again_or_fail(&mut self, id: u32, may: bool, why: String) -> bool {
        let Some(mut f) = self.flying.remove(&id) else {
            return false;
        };
        if may && !f.again && f.status.is_none() && crate::net::idempotent(&self.s.request.method) {
            f.again = true;
            let counted = !f.warm;
            self.again.push_back(f);
            return counted;
        }
        let e = if f.status.is_some() {
            NetError::Protocol(format!("the response was cut short: {why}"))
        } else {
            NetError::Closed(why)
        };
        self.failed_flight(&f, &e);
        false
    }

    /// Requests past their timeout fail, and are cancelled on the connection.
    fn expire(&mut self) {
        let now = Instant::now();
        if self.conn.as_ref().is_some_and(|c| !c.is_settled())
            && now >= self.opened + REQUEST_TIMEOUT
        {
            // A server that never sends its settings is not speaking HTTP/2 to us.
            self.conn = None;
            let e = NetError::Protocol(
                "no HTTP/2 settings from the server: it does not speak HTTP/2".into(),
            );
            self.fail_one(&e);
        }
        let late: Vec<u32> = self
            .flying
            .iter()
            .take_while(|(_, f)| f.sent + REQUEST_TIMEOUT <= now || self.s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(f) = self.flying.remove(&id) {
                let phase = if f.status.is_some() {
                    Phase::Transfer
                } else {
                    Phase::Ttfb
                };
                self.failed_flight(&f, &NetError::timed_out(phase, f.sent));
                if let Some(c) = self.conn.as_mut() {
                    c.cancel(id);
                }
            }
        }
        if self.s.deadline <= now {
            self.waiting.clear();
            for f in std::mem::take(&mut self.again) {
                self.failed_flight(&f, &NetError::timed_out(Phase::Ttfb, f.sent));
            }
        }
    }

    fn stream_failed(&mut self, id: u32, e: NetError) {
        if let Some(f) = self.flying.remove(&id) {
            self.failed_flight(&f, &e);
            if let Some(c) = self.conn.as_mut() {
                c.cancel(id);
            }
        }
    }

    fn failed_flight(&mut self, f: &Flight, e: &NetError) {
        if !f.warm {
            self.failed(e);
        }
    }

    /// A timed request failed: an error, and the first error's reason is kept for the report.
    fn failed(&mut self, e: &NetError) {
        self.counts.errors += 1;
        self.s.first_error.get_or_init(|| e.to_string());
        progressed(self.s, &mut self.unreported);
    }
}
