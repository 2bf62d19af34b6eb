//! Notification sinks, one file per kind of receiver ([`Receiver`]). Each builds its payload in
//! a pure function (so tests can compare the exact bytes) and sends it over the same HTTP engine
//! as the checks; every failure is a [`SinkError`].

mod alertmanager;
mod email;
mod signoff;
mod slack;
mod webhook;

use std::time::Duration;

use crate::alert::{Notification, Severity};
use crate::config::SinkKind;
use crate::net::{Engine, Overrides, Request};

pub use crate::units::rfc3339;
pub use alertmanager::payload as alertmanager_payload;
pub use email::{Mail, content as email_content};
pub use signoff::signoff_payload;
pub use slack::payload as slack_payload;
pub use webhook::{payload as webhook_payload, signature};

/// A configured sink with its secrets read: what every sink has, and where it delivers.
#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub min_severity: Severity,
    pub timeout: Duration,
    /// At most this many notifications, and this many bytes, in one message.
    pub max_batch: usize,
    pub max_bytes: usize,
    pub to: Receiver,
}

/// Where a sink delivers, by kind.
#[derive(Debug, Clone)]
pub enum Receiver {
    /// A Slack incoming webhook.
    Slack { url: String },
    /// Any HTTP endpoint, with extra headers and an optional HMAC signature.
    Webhook {
        url: String,
        headers: Vec<(String, String)>,
        hmac_secret: Option<String>,
    },
    /// Alertmanager's base URLs, one per instance of a cluster; alerts go to `/api/v2/alerts`.
    Alertmanager {
        urls: Vec<String>,
        headers: Vec<(String, String)>,
    },
    /// An SMTP relay.
    Email(Mail),
}

impl Receiver {
    /// The kind's name, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Receiver::Slack { .. } => "slack",
            Receiver::Webhook { .. } => "webhook",
            Receiver::Alertmanager { .. } => "alertmanager",
            Receiver::Email(_) => "email",
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkError {
    /// Worth trying again: no answer, a 5xx, 408 or 429, a transient SMTP error. `retry_after` is
    /// the wait the receiver asked for (429 and 503 with `Retry-After`).
    Transient {
        why: String,
        retry_after: Option<Duration>,
    },
    /// The receiver refuses this message and will refuse it again: a 4xx other than 408 and 429,
    /// or a permanent SMTP error. `split` when a smaller message may pass (too large, or one
    /// notification in it the receiver cannot take); a refusal of the endpoint itself (401, 403,
    /// 404, …) is not worth splitting.
    Rejected { why: String, split: bool },
}

impl SinkError {
    /// One fixed word, safe as a metric label: `transient` or `rejected`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkError::Transient { .. } => "transient",
            SinkError::Rejected { .. } => "rejected",
        }
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::Transient { why, .. } | SinkError::Rejected { why, .. } => f.write_str(why),
        }
    }
}

/// The longest wait a receiver's `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of a refusing receiver's answer is kept with a dead letter.
const ANSWER_CHARS: usize = 500;

/// `Retry-After` as seconds or an HTTP date, capped at an hour.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
                .ok()?;
            let left = at - time::OffsetDateTime::now_utc();
            Duration::try_from(left).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// What an HTTP answer means for the message that got it.
pub(crate) fn judge(
    sink: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), SinkError> {
    let answer = String::from_utf8_lossy(body);
    let answer = clip(answer.trim(), ANSWER_CHARS);
    let why = if answer.is_empty() {
        format!("{sink} answered {status}")
    } else {
        format!("{sink} answered {status}: {answer}")
    };
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(SinkError::Transient {
            why,
            retry_after: if matches!(status, 429 | 503) {
                retry_after(headers)
            } else {
                None
            },
        }),
        // Too large, malformed for this receiver (Slack answers 400 for broken Block Kit), or
        // refused for what it says: a smaller message may pass.
        400 | 413 | 422 => Err(SinkError::Rejected { why, split: true }),
        _ => Err(SinkError::Rejected { why, split: false }),
    }
}

/// `s` cut to at most `max` characters, with an ellipsis when it was cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// `lines` joined by newlines within `budget` characters and `max_lines` lines; what does not
/// fit is counted in a last "…and N more NOUN" line.
pub fn within(lines: &[String], budget: usize, max_lines: usize, noun: &str) -> String {
    let mut out = String::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let left = lines.len() - i;
        let tail = format!("…and {left} more {noun}");
        let len = line.chars().count() + 1;
        let reserve = if left > 1 { tail.len() + 1 } else { 0 };
        if i >= max_lines || used + len + reserve > budget {
            out.push_str(&tail);
            return out;
        }
        out.push_str(line);
        out.push('\n');
        used += len;
    }
    out.pop();
    out
}

/// One line for a problem: its id and its message, which states the assertion and what was
/// found (`http.assert.2: json $.database == "connected" (was "disconnected")`).
pub(crate) fn problem_line(p: &crate::alert::Problem) -> String {
    format!("{}: {}", p.id, p.message)
}

/// One line for a batch: how many alerts, where, and how bad, e.g. "37 alerts fired in
/// production: 35 critical, 2 warning".
pub(crate) fn headline(batch: &[Notification]) -> String {
    use crate::alert::Event;
    let mut envs: Vec<&str> = batch.iter().map(|n| n.env.as_str()).collect();
    envs.sort_unstable();
    envs.dedup();
    let resolved = batch.iter().filter(|n| n.event == Event::Resolved).count();
    let critical = batch
        .iter()
        .filter(|n| n.event != Event::Resolved && n.severity == Severity::Critical)
        .count();
    let warning = batch.len() - resolved - critical;
    let verb = if resolved == 0 {
        "fired"
    } else if resolved == batch.len() {
        "resolved"
    } else {
        "changed"
    };
    let counts: Vec<String> = [
        (critical, "critical"),
        (warning, "warning"),
        (resolved, "resolved"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let place = match envs.as_slice() {
        [one] => one.to_string(),
        many if many.len() <= 3 => many.join(", "),
        many => format!("{} environments", many.len()),
    };
    format!(
        "{} alert{} {verb} in {place}: {}",
        batch.len(),
        if batch.len() == 1 { "" } else { "s" },
        counts.join(", ")
    )
}

/// An HTTP POST ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub url: String,
    /// Where the same message goes as well: the other instances of an Alertmanager cluster.
    pub also: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Sink {
    /// Whether this sink wants a notification of this severity.
    pub fn accepts(&self, n: &Notification) -> bool {
        n.severity >= self.min_severity
    }

    /// Sends one message for a batch of notifications, whatever the sink.
    pub async fn notify(
        &self,
        engine: &Engine,
        batch: &[Notification],
        status_url: &str,
    ) -> Result<(), SinkError> {
        match &self.to {
            Receiver::Email(mail) => {
                let (subject, text, html) = email::content(batch, status_url);
                email::send(mail, subject, text, html, self.timeout).await
            }
            _ => self.send(engine, &self.delivery(batch, status_url)).await,
        }
    }

    /// The bytes one message for `batch` would take.
    pub fn size(&self, batch: &[Notification], status_url: &str) -> usize {
        match &self.to {
            Receiver::Email(_) => {
                let (subject, text, html) = email::content(batch, status_url);
                subject.len() + text.len() + html.len()
            }
            _ => self.delivery(batch, status_url).body.len(),
        }
    }

    /// The HTTP message for a batch of notifications: one POST, whatever the batch size. An
    /// email sink sends mail instead, and has none.
    pub fn delivery(&self, batch: &[Notification], status_url: &str) -> Delivery {
        let (url, body) = match &self.to {
            Receiver::Webhook { url, .. } => (url.clone(), webhook::payload(batch, status_url)),
            Receiver::Slack { url } => (url.clone(), slack::payload(batch, status_url)),
            Receiver::Alertmanager { urls, .. } => {
                let mut d = self.post(
                    alerts_url(urls.first().map_or("", String::as_str)),
                    alertmanager::payload(batch, status_url),
                );
                d.also = urls.iter().skip(1).map(|u| alerts_url(u)).collect();
                return d;
            }
            Receiver::Email(_) => (String::new(), Vec::new()),
        };
        self.post(url, body)
    }

    /// A JSON POST of `body` to `url` with the sink's headers, signed when it has a secret.
    pub(crate) fn post(&self, url: String, body: Vec<u8>) -> Delivery {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        match &self.to {
            Receiver::Webhook {
                headers: extra,
                hmac_secret,
                ..
            } => {
                headers.extend(extra.iter().cloned());
                if let Some(secret) = hmac_secret {
                    let signature = format!("sha256={}", webhook::signature(secret, &body));
                    headers.push(("X-Shipwatch-Signature".into(), signature));
                }
            }
            Receiver::Alertmanager { headers: extra, .. } => headers.extend(extra.iter().cloned()),
            Receiver::Slack { .. } | Receiver::Email(_) => {}
        }
        Delivery {
            url,
            also: Vec::new(),
            headers,
            body,
        }
    }

    /// Sends a delivery; any answer but 2xx, or no answer within the timeout, is a failure. A
    /// message for an Alertmanager cluster goes to every instance, as Prometheus sends it, and is
    /// delivered when one of them took it: they share it by gossip.
    pub async fn send(&self, engine: &Engine, d: &Delivery) -> Result<(), SinkError> {
        if d.also.is_empty() {
            return self.send_to(engine, &d.url, d).await;
        }
        let urls = std::iter::once(&d.url).chain(&d.also);
        let sends = urls.map(|u| self.send_to(engine, u, d));
        let results = futures_util::future::join_all(sends).await;
        let mut first_error = None;
        let mut taken = 0;
        for (url, r) in std::iter::once(&d.url).chain(&d.also).zip(results) {
            match r {
                Ok(()) => taken += 1,
                Err(e) => {
                    tracing::warn!(sink = %self.name, %url, "one Alertmanager of the cluster did not take the alerts: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if taken == 0 => Err(e),
            _ => Ok(()),
        }
    }

    async fn send_to(&self, engine: &Engine, target: &str, d: &Delivery) -> Result<(), SinkError> {
        let url = url::Url::parse(target).map_err(|e| SinkError::Rejected {
            why: format!("invalid sink URL: {e}"),
            split: false,
        })?;
        let mut req = Request::get(url);
        req.method = http::Method::POST;
        req.headers = d.headers.clone();
        req.body = bytes::Bytes::from(d.body.clone());
        req.max_body = 64 << 10;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = engine
            .send(&req, &Overrides::default(), deadline)
            .await
            .map_err(|e| SinkError::Transient {
                why: e.to_string(),
                retry_after: None,
            })?;
        judge(&self.name, resp.status, &resp.headers, &resp.body)
    }
}

/// Alertmanager's alerts endpoint under its base URL.
fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// The sinks of a configuration, with their secrets read through `read`.
pub fn from_config(
    config: &crate::config::Config,
    read: crate::doc::ReadSecret<'_>,
) -> Result<Vec<Sink>, crate::doc::SecretReadError> {
    config
        .alerts
        .sinks
        .iter()
        .map(|s| {
            Ok(Sink {
                name: s.name.clone(),
                min_severity: s.min_severity,
                timeout: s.timeout,
                max_batch: s.max_batch,
                max_bytes: s.max_bytes,
                to: receiver(s, config, read)?,
            })
        })
        .collect()
}

/// Where one configured sink delivers, its secrets read.
fn receiver(
    s: &crate::config::SinkSpec,
    config: &crate::config::Config,
    read: crate::doc::ReadSecret<'_>,
) -> Result<Receiver, crate::doc::SecretReadError> {
    use crate::config::SecretOr;
    let secret = |src: Option<&crate::config::SecretSource>, what: &str| {
        src.map(|src| read(src, &format!("sink {} {what}", s.name)))
            .transpose()
    };
    let url = match &s.url {
        SecretOr::Plain(u) => u.clone(),
        SecretOr::Secret(src) => read(src, &format!("sink {} url", s.name))?,
    };
    let headers = s.headers.clone();
    Ok(match s.kind {
        SinkKind::Slack => Receiver::Slack { url },
        SinkKind::Webhook => Receiver::Webhook {
            url,
            headers,
            hmac_secret: secret(s.hmac_secret.as_ref(), "hmac_secret")?,
        },
        SinkKind::Alertmanager => Receiver::Alertmanager {
            urls: std::iter::once(url)
                .chain(s.more_urls.iter().cloned())
                .collect(),
            headers,
        },
        SinkKind::Email => Receiver::Email(Mail {
            smtp_url: url,
            username: s.username.clone(),
            password: secret(s.password.as_ref(), "password")?,
            from: s.from.clone().unwrap_or_default(),
            to: s.to.clone(),
            ca_file: config.defaults.ca_file.clone(),
        }),
    })
}

/// One line for a notification: what, where, how bad, and the first problem as its assertion
/// reads (`json $.database == "connected" (was "disconnected")`).
pub fn summary(n: &Notification) -> String {
    use crate::alert::Event;
    let state = match n.event {
        Event::Resolved => "resolved",
        Event::Escalated => "escalated",
        Event::Reminder => "still failing",
        Event::Firing => "failing",
        Event::Test => {
            return "[TEST] shipwatch notify --test: a test message, not an alert".to_string();
        }
    };
    let first = n
        .problems
        .first()
        .map(|p| format!(": {}", clip(&p.message, 400)))
        .unwrap_or_default();
    format!(
        "[{}] {} {} {state}{first}",
        n.severity.as_str().to_uppercase(),
        n.env,
        n.check
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_and_within_keep_to_their_budgets() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("ééééé", 4), "ééé…");
        let lines: Vec<String> = (0..100)
            .map(|i| format!("line {i:03} {}", "x".repeat(40)))
            .collect();
        let text = within(&lines, 3000, 100, "findings");
        assert!(text.chars().count() <= 3000, "{}", text.len());
        assert!(text.ends_with("more findings"));
        let shown = text.lines().count() - 1;
        assert!(text.contains(&format!("…and {} more findings", 100 - shown)));
        assert_eq!(within(&lines[..2], 3000, 10, "findings").lines().count(), 2);
        assert_eq!(within(&lines, 3000, 5, "findings").lines().count(), 6);
    }

    #[test]
    fn answers_are_judged_like_receivers_mean_them() {
        let mut h = http::HeaderMap::new();
        assert!(judge("s", 204, &h, b"").is_ok());
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("2"),
        );
        assert_eq!(
            judge("s", 429, &h, b"slow down"),
            Err(SinkError::Transient {
                why: "s answered 429: slow down".into(),
                retry_after: Some(Duration::from_secs(2))
            })
        );
        let date = (time::OffsetDateTime::now_utc() + time::Duration::seconds(30))
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap()
            .replace("+0000", "GMT");
        h.insert(http::header::RETRY_AFTER, date.parse().unwrap());
        match judge("s", 503, &h, b"") {
            Err(SinkError::Transient {
                retry_after: Some(d),
                ..
            }) => {
                assert!(
                    d > Duration::from_secs(25) && d <= Duration::from_secs(30),
                    "{d:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge("s", 413, &h, b""),
            Err(SinkError::Rejected { split: true, .. })
        ));
        assert!(matches!(
            judge("s", 404, &h, b""),
            Err(SinkError::Rejected { split: false, .. })
        ));
        assert!(matches!(
            judge("s", 408, &h, b""),
            Err(SinkError::Transient {
                retry_after: None,
                ..
            })
        ));
    }
}
