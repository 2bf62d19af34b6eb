//! Notification sinks, one file each. Each builds its payload in a pure function (so tests can
//! compare the exact bytes) and sends it separately over the same HTTP engine as the checks.

mod alertmanager;
mod email;
mod signoff;
mod slack;
mod webhook;

use std::time::Duration;

use crate::alert::{Notification, Severity};
use crate::config::SinkKind;
use crate::net::{Engine, Overrides, Request};

pub use alertmanager::payload as alertmanager_payload;
pub use email::{Mail, content as email_content};
pub use signoff::signoff_payload;
pub use slack::payload as slack_payload;
pub use webhook::{payload as webhook_payload, signature};

/// A configured sink with its secrets read.
#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    pub url: String,
    pub hmac_secret: Option<String>,
    pub headers: Vec<(String, String)>,
    pub min_severity: Severity,
    pub timeout: Duration,
    /// SMTP settings, for email sinks.
    pub mail: Option<Mail>,
}

/// An HTTP POST ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub url: String,
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
    ) -> Result<(), String> {
        match &self.mail {
            Some(mail) => {
                let (subject, text, html) = email::content(batch, status_url);
                email::send(mail, subject, text, html, self.timeout).await
            }
            None => self.send(engine, &self.delivery(batch, status_url)).await,
        }
    }

    /// The message for a batch of notifications: one POST, whatever the batch size.
    pub fn delivery(&self, batch: &[Notification], status_url: &str) -> Delivery {
        let (url, body) = match self.kind {
            SinkKind::Webhook => (self.url.clone(), webhook::payload(batch, status_url)),
            SinkKind::Slack => (self.url.clone(), slack::payload(batch, status_url)),
            SinkKind::Email => (String::new(), Vec::new()),
            SinkKind::Alertmanager => (
                format!("{}/api/v2/alerts", self.url.trim_end_matches('/')),
                alertmanager::payload(batch, status_url),
            ),
        };
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.extend(self.headers.iter().cloned());
        if let Some(secret) = &self.hmac_secret {
            headers.push((
                "X-Shipwatch-Signature".into(),
                format!("sha256={}", webhook::signature(secret, &body)),
            ));
        }
        Delivery { url, headers, body }
    }

    /// Sends a delivery; any answer but 2xx, or no answer within the timeout, is a failure.
    pub async fn send(&self, engine: &Engine, d: &Delivery) -> Result<(), String> {
        let url = url::Url::parse(&d.url).map_err(|e| format!("invalid sink URL: {e}"))?;
        let mut req = Request::get(url);
        req.method = http::Method::POST;
        req.headers = d.headers.clone();
        req.body = bytes::Bytes::from(d.body.clone());
        req.max_body = 64 << 10;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = engine
            .send(&req, &Overrides::default(), deadline)
            .await
            .map_err(|e| e.to_string())?;
        if (200..300).contains(&resp.status) {
            Ok(())
        } else {
            Err(format!("{} answered {}", self.name, resp.status))
        }
    }
}

/// The sinks of a configuration, with their secrets read through `read`.
pub fn from_config(
    config: &crate::config::Config,
    read: &dyn Fn(&crate::config::SecretSource, &str) -> Result<String, String>,
) -> Result<Vec<Sink>, String> {
    use crate::config::SecretOr;
    let mut sinks = Vec::new();
    for s in &config.alerts.sinks {
        let url = match &s.url {
            SecretOr::Plain(u) => u.clone(),
            SecretOr::Secret(src) => read(src, &format!("sink {} url", s.name))?,
        };
        let hmac_secret = s
            .hmac_secret
            .as_ref()
            .map(|h| read(h, &format!("sink {} hmac_secret", s.name)))
            .transpose()?;
        let mail = match s.kind {
            SinkKind::Email => Some(Mail {
                smtp_url: url.clone(),
                username: s.username.clone(),
                password: s
                    .password
                    .as_ref()
                    .map(|p| read(p, &format!("sink {} password", s.name)))
                    .transpose()?,
                from: s.from.clone().unwrap_or_default(),
                to: s.to.clone(),
                ca_file: config.defaults.ca_file.clone(),
            }),
            _ => None,
        };
        sinks.push(Sink {
            name: s.name.clone(),
            kind: s.kind.clone(),
            url,
            hmac_secret,
            headers: s.headers.clone(),
            min_severity: s.min_severity,
            timeout: s.timeout,
            mail,
        });
    }
    Ok(sinks)
}

/// RFC 3339 for Unix seconds, as every payload writes times.
pub fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// One line for a notification: what, where, how bad, and the first problem.
pub fn summary(n: &Notification) -> String {
    let state = match n.event {
        crate::alert::Event::Resolved => "resolved",
        crate::alert::Event::Escalated => "escalated",
        crate::alert::Event::Reminder => "still failing",
        crate::alert::Event::Firing => "failing",
    };
    let first = n
        .problems
        .first()
        .map(|p| match (&p.expected, &p.actual) {
            (Some(e), Some(a)) => match e.strip_prefix("== ") {
                Some(want) => format!(": {} {a} != {want}", p.id),
                None => format!(": {} {a} (expected {e})", p.id),
            },
            _ => format!(": {}", p.message),
        })
        .unwrap_or_default();
    format!(
        "[{}] {} {} {state}{first}",
        n.severity.as_str().to_uppercase(),
        n.env,
        n.check
    )
}
