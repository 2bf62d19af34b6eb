//! The status page: server-rendered HTML, no JavaScript, refreshes itself, readable on a phone.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::State;
use crate::outcome::Status;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:1rem;color:#222}table{border-collapse:collapse;width:100%}\
td,th{padding:.4rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.pass{color:#176f2c}.warn{color:#9a6700}.fail,.error{color:#b42318;font-weight:600}\
small{color:#666}@media(max-width:600px){td:nth-child(3),th:nth-child(3),td:nth-child(5),th:nth-child(5){display:none}}";

/// The whole page.
pub(crate) fn render(state: &State) -> String {
    let latest = state.latest.read().map(|l| l.clone()).unwrap_or_default();
    let ran_at = state.ran_at.read().map(|l| l.clone()).unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let mut html = format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=refresh content=30><title>shipwatch</title><style>{STYLE}</style></head><body>\
         <h1>shipwatch</h1><p><small>{} · {} · refreshed every 30 s</small></p>",
        crate::units::count(latest.len() as u64, "check"),
        if state.ready.load(Ordering::SeqCst) {
            "ready"
        } else {
            "first round running"
        }
    );
    // One heading per environment, whatever order the checks are kept in.
    let envs: std::collections::BTreeSet<&str> = latest.keys().map(|k| k.env.as_str()).collect();
    for env in envs {
        let _ = write!(
            html,
            "<h2>{}</h2><table><tr><th>Status</th><th>Check</th><th>Kind</th><th>Last run</th><th>Time</th><th>Details</th></tr>",
            esc(env)
        );
        for (key, o) in latest.iter().filter(|(k, _)| k.env == env) {
            let ago = ran_at
                .get(key)
                .and_then(|t| t.elapsed().ok())
                .map_or("-".to_string(), |d| format!("{}s ago", d.as_secs()));
            let class = o.status.as_str();
            let mut details = String::new();
            if let Some(e) = &o.error {
                let _ = write!(details, "{}: {}<br>", esc(e.kind), esc(&e.message));
            }
            for f in o.findings.iter().filter(|f| f.status >= Status::Warn) {
                let _ = write!(
                    details,
                    "<b>{}</b>: expected {}, got {}<br>",
                    esc(&f.id),
                    esc(f.expected.as_deref().unwrap_or("-")),
                    esc(f.actual.as_deref().unwrap_or("-"))
                );
            }
            if let Some(tls) = o.details.tls() {
                let _ = write!(
                    details,
                    "<small>certificate: {} days left</small>",
                    tls.days_left
                );
            }
            let _ = write!(
                html,
                "<tr><td class={class}>{class}</td><td>{}</td><td>{}</td><td>{ago}</td><td>{:.0} ms</td><td>{details}</td></tr>",
                esc(&o.name),
                o.kind,
                o.duration.as_secs_f64() * 1000.0
            );
        }
        html.push_str("</table>");
    }
    undelivered(state, &mut html);
    let when = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let _ = write!(html, "<p><small>generated {when}</small></p></body></html>");
    html
}

/// Notifications that did not reach their receiver: refused for good (the dead-letter folder),
/// or dropped by the outbox's limits. Nothing is lost silently.
fn undelivered(state: &State, html: &mut String) {
    let dead = state.alerting.dead_letters();
    let dropped = state.alerting.dropped();
    if dead.is_empty() && dropped.latest.is_empty() {
        return;
    }
    html.push_str("<h2>Undelivered notifications</h2>");
    dead_letters(&dead, html);
    if !dropped.latest.is_empty() {
        let _ = write!(
            html,
            "<p class=fail>{} dropped for age and {} for the outbox bound since the agent started:</p><ul>",
            dropped.expired, dropped.overflowed
        );
        for line in dropped.latest.iter().rev() {
            let _ = write!(html, "<li>{}</li>", esc(line));
        }
        html.push_str("</ul>");
    }
}

/// The latest dead letters, newest first, with the receiver's answer.
fn dead_letters(dead: &[crate::alert::outbox::DeadLetter], html: &mut String) {
    const SHOWN: usize = 20;
    if !dead.is_empty() {
        let _ = write!(
            html,
            "<p class=fail>{} refused by their receiver; fix the cause, then run <code>shipwatch notify --retry-dead</code>.</p>\
             <table><tr><th>Refused</th><th>Sink</th><th>Check</th><th>Event</th><th>Receiver's answer</th></tr>",
            dead.len()
        );
        for d in dead.iter().rev().take(SHOWN) {
            let n = &d.notification;
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{} · {}</td><td>{}</td><td>{}</td></tr>",
                crate::units::rfc3339(d.at),
                esc(&d.sink),
                esc(&n.env),
                esc(&n.check),
                n.event.as_str(),
                esc(&d.answer)
            );
        }
        html.push_str("</table>");
    }
}
