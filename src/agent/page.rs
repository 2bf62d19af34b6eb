//! The status page: server-rendered HTML and inline SVG, no JavaScript and no external assets,
//! readable on a phone and on a desktop. Per check: the last 90 results as a strip (height as
//! well as colour tells pass, warn and fail apart, and each slot has a tooltip), uptime over 24
//! hours, 7 and 30 days, since when it fails, its alert, and the figure that matters for its kind.
//! Then the incidents, by environment. `?env=` and `?status=` filter it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::State;
use super::history::{Incident, RunRow, View, now_ms};
use super::scheduler::Key;
use crate::outcome::Status;
use crate::runner::Outcome;

/// What the page shows: one environment and one status, or all.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub env: Option<String>,
    pub status: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "\
:root{--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--error:#57606a}\
*{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:1400px;color:#1f2328}\
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}\
.grid{display:grid;gap:.8rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,380px),1fr))}\
.check{border:1px solid #d0d7de;border-left-width:6px;border-radius:6px;padding:.6rem .8rem;min-width:0}\
.check.pass{border-left-color:var(--pass)}.check.warn{border-left-color:var(--warn)}\
.check.fail{border-left-color:var(--fail)}.check.error{border-left-color:var(--error);border-left-style:dashed}\
.check h3{font-size:1rem;margin:0;display:flex;gap:.5rem;flex-wrap:wrap;align-items:baseline;overflow-wrap:anywhere}\
.badge{font-weight:700;white-space:nowrap}.badge.pass{color:var(--pass)}.badge.warn{color:var(--warn)}\
.badge.fail{color:var(--fail)}.badge.error{color:var(--error)}\
.strip{width:100%;height:28px;display:block;margin:.4rem 0}.strip .empty{fill:#eaeef2}.strip .pass{fill:var(--pass)}.strip .warn{fill:var(--warn)}\
.strip .fail{fill:var(--fail)}.strip .error{fill:var(--error)}\
.spark{width:120px;height:24px;vertical-align:middle}.spark polyline{fill:none;stroke:#0969da;stroke-width:1.5}\
.meta{color:#57606a;font-size:.9rem;margin:.2rem 0;overflow-wrap:anywhere}.meta b{color:#1f2328}\
ul.findings{margin:.3rem 0;padding-left:1.1rem;font-size:.9rem;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{padding:.35rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top;overflow-wrap:break-word}th{white-space:nowrap}\
.scroll{overflow-x:auto}.note{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:6px}\
form{display:flex;gap:.5rem;flex-wrap:wrap;align-items:end;margin:.6rem 0}label{font-size:.85rem;display:flex;flex-direction:column}\
select,button{font:inherit;padding:.25rem .4rem}\
@media(max-width:600px){body{padding:.6rem}.hide-narrow{display:none}}";

/// The status word and a symbol, so colour is never the only cue.
fn badge(s: Status) -> String {
    let (symbol, word) = match s {
        Status::Pass => ("✓", "pass"),
        Status::Warn => ("!", "warn"),
        Status::Fail => ("✗", "FAIL"),
        Status::Error => ("⚠", "ERROR"),
    };
    format!(
        "<span class=\"badge {}\">{symbol} {word}</span>",
        s.as_str()
    )
}

/// "2026-11-24 06:01:31 UTC": a time as people read it.
fn clock(ms: i64) -> String {
    crate::units::rfc3339((ms.max(0) / 1000) as u64)
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// The whole page.
pub(crate) fn render(state: &State, filter: &Filter) -> String {
    let latest = state.latest.read().map(|l| l.clone()).unwrap_or_default();
    let envs: Vec<String> = {
        let set: std::collections::BTreeSet<&str> = latest.keys().map(|k| &*k.env).collect();
        set.into_iter().map(str::to_string).collect()
    };
    let incidents = state.history.incidents(500).unwrap_or_default();
    let mut html = head(state, &latest);
    filter_form(&envs, filter, &mut html);
    if let Some(why) = state.history.problem() {
        let _ = write!(
            html,
            "<p class=note role=status>History unavailable: {}. Checks and alerts go on; \
             the latest results are shown without their history.</p>",
            esc(&why)
        );
    }
    let now = now_ms();
    for env in envs
        .iter()
        .filter(|e| filter.env.as_ref().is_none_or(|f| f == *e))
    {
        let shown: Vec<(&Key, &Outcome)> = latest
            .iter()
            .filter(|(k, o)| {
                &*k.env == env.as_str()
                    && filter
                        .status
                        .as_ref()
                        .is_none_or(|s| s == o.status.as_str())
            })
            .map(|(k, o)| (k, o.as_ref()))
            .collect();
        if shown.is_empty() {
            continue;
        }
        let _ = write!(html, "<section><h2>{}</h2><div class=grid>", esc(env));
        for (key, o) in shown {
            let view = state.history.view(&key.check, &key.env, now).ok().flatten();
            let alert = incidents
                .iter()
                .find(|i| *i.check == *key.check && *i.env == *key.env);
            card(o, view.as_ref(), alert, now, &mut html);
        }
        html.push_str("</div></section>");
    }
    incidents_section(&incidents, filter, &mut html);
    undelivered(state, &mut html);
    let _ = write!(
        html,
        "<p class=meta>generated {}</p></body></html>",
        clock(now)
    );
    html
}

fn head(state: &State, latest: &BTreeMap<Key, std::sync::Arc<Outcome>>) -> String {
    let mut counts = [0usize; 4];
    for o in latest.values() {
        counts[o.status as usize] += 1;
    }
    let ready = if state.ready.load(Ordering::SeqCst) {
        "ready"
    } else {
        "first round running"
    };
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=refresh content=30><title>shipwatch status</title><style>{STYLE}</style></head><body>\
         <header><h1>shipwatch</h1><p class=meta>{} · <b>{}</b> pass · <b>{}</b> warn · <b>{}</b> fail · \
         <b>{}</b> error · {ready} · refreshes every 30 s</p></header>",
        crate::units::count(latest.len() as u64, "check"),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
    )
}

/// A form that works without JavaScript: pick, then press Show.
fn filter_form(envs: &[String], filter: &Filter, html: &mut String) {
    let option = |value: &str, label: &str, chosen: bool| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(value),
            if chosen { " selected" } else { "" },
            esc(label)
        )
    };
    html.push_str("<form method=get action=\"/\"><label>Environment<select name=env>");
    html.push_str(&option("", "all", filter.env.is_none()));
    for e in envs {
        html.push_str(&option(e, e, filter.env.as_deref() == Some(e)));
    }
    html.push_str("</select></label><label>Status<select name=status>");
    html.push_str(&option("", "all", filter.status.is_none()));
    for s in ["fail", "error", "warn", "pass"] {
        html.push_str(&option(s, s, filter.status.as_deref() == Some(s)));
    }
    html.push_str("</select></label><button type=submit>Show</button></form>");
}

/// One check's card.
fn card(o: &Outcome, view: Option<&View>, alert: Option<&Incident>, now: i64, html: &mut String) {
    let _ = write!(
        html,
        "<article class=\"check {}\" data-check=\"{}\"><h3>{} <span>{}</span> <small class=meta>{} · {:.0} ms</small></h3>",
        o.status.as_str(),
        esc(&o.name),
        badge(o.status),
        esc(&o.name),
        o.kind,
        o.duration.as_secs_f64() * 1000.0
    );
    if let Some(v) = view {
        strip(&v.recent, html);
        uptime_line(v, now, html);
    }
    alert_line(alert, html);
    figure(o, view, html);
    problems(o, html);
    html.push_str("</article>");
}

/// The last results as a strip of slots, oldest on the left. A slot's height tells its status
/// as well as its colour does: full for pass, two thirds for warn, one third for fail and error.
fn strip(recent: &[RunRow], html: &mut String) {
    const SLOTS: usize = 90;
    let mut counts = [0usize; 4];
    let mut rects = String::new();
    let offset = SLOTS - recent.len().min(SLOTS);
    for (i, r) in recent.iter().take(SLOTS).rev().enumerate() {
        let s = r.status;
        counts[s as usize] += 1;
        let h = match s {
            Status::Pass => 28,
            Status::Warn => 19,
            _ => 10,
        };
        let _ = write!(
            rects,
            "<rect x=\"{}\" y=\"{}\" width=\"3\" height=\"{h}\" class=\"{}\"><title>{} · {} · {:.1} ms</title></rect>",
            (offset + i) * 4,
            28 - h,
            s.as_str(),
            clock(r.at_ms),
            s.as_str(),
            r.duration_ms
        );
    }
    let _ = write!(
        html,
        "<svg class=strip viewBox=\"0 0 {} 28\" preserveAspectRatio=\"none\" role=img \
         aria-label=\"last {} results: {} pass, {} warn, {} fail, {} error\">\
         <rect width=\"{}\" height=\"28\" class=\"empty\"/>{rects}</svg>",
        SLOTS * 4,
        recent.len().min(SLOTS),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        offset * 4
    );
}

fn uptime_line(v: &View, now: i64, html: &mut String) {
    let parts: Vec<String> = v
        .uptime
        .iter()
        .map(|(w, u)| match u.percent() {
            Some(p) => format!("{w} <b>{}</b>", percent(p)),
            None => format!("{w} –"),
        })
        .collect();
    let _ = write!(html, "<p class=meta>uptime {}", parts.join(" · "));
    if let Some(since) = v.failing_since {
        let for_how_long = std::time::Duration::from_millis((now - since).max(0) as u64);
        let _ = write!(
            html,
            "<br><b>failing since {}</b> ({})",
            clock(since),
            crate::units::span(for_how_long)
        );
    }
    html.push_str("</p>");
}

/// "99.93%", "100%": two decimals where they matter.
fn percent(p: f64) -> String {
    if p >= 100.0 {
        "100%".into()
    } else {
        format!("{:.2}%", (p * 100.0).floor() / 100.0)
    }
}

fn alert_line(alert: Option<&Incident>, html: &mut String) {
    let Some(a) = alert else { return };
    let state = match a.resolved_at {
        None => format!("<b>alert firing</b> · {}", esc(&a.severity)),
        Some(t) => format!("last alert resolved {}", clock(t * 1000)),
    };
    let _ = write!(
        html,
        "<p class=meta>{state} · last notification: {} at {}</p>",
        esc(&a.last_event),
        clock(a.last_event_at * 1000)
    );
}

/// The figure that matters for the kind: p95 with a sparkline, days to expiry, the grade; for
/// the others, the response time's sparkline.
fn figure(o: &Outcome, view: Option<&View>, html: &mut String) {
    let recent = view.map(|v| v.recent.as_slice()).unwrap_or_default();
    if let Some(l) = o.details.latency() {
        let series: Vec<f64> = recent.iter().rev().filter_map(|r| r.p95).collect();
        let _ = write!(
            html,
            "<p class=meta>p95 <b>{:.1} ms</b> {}</p>",
            l.p95_ms,
            sparkline(&series)
        );
    } else if let Some(t) = o.details.tls() {
        let _ = write!(
            html,
            "<p class=meta>certificate: <b>{} days</b> to expiry</p>",
            t.days_left
        );
    } else if let Some(h) = o.details.headers() {
        let _ = write!(
            html,
            "<p class=meta>grade <b>{}</b> (score {})</p>",
            esc(&h.grade),
            h.score
        );
    } else if recent.len() > 1 {
        let series: Vec<f64> = recent.iter().rev().map(|r| r.duration_ms).collect();
        let _ = write!(
            html,
            "<p class=meta>response time {}</p>",
            sparkline(&series)
        );
    }
}

/// The last 30 values as a line; the tooltip gives the range.
fn sparkline(values: &[f64]) -> String {
    let v = &values[values.len().saturating_sub(30)..];
    if v.len() < 2 {
        return String::new();
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    let span = (hi - lo).max(1e-9);
    let points: Vec<String> = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * 120.0 / (v.len() - 1) as f64,
                22.0 - (x - lo) / span * 20.0
            )
        })
        .collect();
    format!(
        "<svg class=spark viewBox=\"0 0 120 24\" role=img aria-label=\"last {n}: {lo:.1} to {hi:.1} ms\"><title>last {n}: {lo:.1} to {hi:.1} ms</title><polyline points=\"{}\"/></svg>",
        points.join(" "),
        n = v.len()
    )
}

fn problems(o: &Outcome, html: &mut String) {
    let bad: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.status >= Status::Warn)
        .collect();
    if o.error.is_none() && bad.is_empty() {
        return;
    }
    html.push_str("<ul class=findings>");
    if let Some(e) = &o.error {
        let _ = write!(html, "<li>{}: {}</li>", esc(e.kind), esc(&e.message));
    }
    for f in bad {
        let _ = write!(
            html,
            "<li><b>{}</b>: expected {}, got {}</li>",
            esc(&f.id),
            esc(f.expected.as_deref().unwrap_or("-")),
            esc(f.actual.as_deref().unwrap_or("-"))
        );
    }
    html.push_str("</ul>");
}

/// Incidents, newest first, one table per environment.
fn incidents_section(incidents: &[Incident], filter: &Filter, html: &mut String) {
    let mut by_env: BTreeMap<&str, Vec<&Incident>> = BTreeMap::new();
    for i in incidents.iter().take(200) {
        if filter.env.as_ref().is_none_or(|e| e == &i.env) {
            by_env.entry(i.env.as_str()).or_default().push(i);
        }
    }
    html.push_str("<section><h2>Incidents</h2>");
    if by_env.is_empty() {
        html.push_str("<p class=meta>No alert has fired.</p>");
    }
    for (env, list) in by_env {
        let _ = write!(
            html,
            "<h3>{}</h3><div class=scroll><table><tr><th>Check</th><th>Severity</th><th>Fired</th>\
             <th>Resolved</th><th class=hide-narrow>Findings</th></tr>",
            esc(env)
        );
        for i in list {
            let resolved = match i.resolved_at {
                Some(t) => format!(
                    "{} (after {})",
                    clock(t * 1000),
                    crate::units::span(std::time::Duration::from_secs(
                        (t - i.fired_at).max(0) as u64
                    ))
                ),
                None => "<b>ongoing</b>".to_string(),
            };
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{resolved}</td><td class=hide-narrow>{}</td></tr>",
                esc(&i.check),
                esc(&i.severity),
                clock(i.fired_at * 1000),
                esc(&i.findings.join(", "))
            );
        }
        html.push_str("</table></div>");
    }
    html.push_str("</section>");
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
             <div class=scroll><table><tr><th>Refused</th><th>Sink</th><th>Check</th><th>Event</th><th>Receiver's answer</th></tr>",
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
        html.push_str("</table></div>");
    }
}
