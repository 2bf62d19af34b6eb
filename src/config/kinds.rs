//! One reader per check kind: each takes its keys from the check's table and reports every problem.

use super::node::{Sink, Spanned, Table, Value};
use super::spec::*;
use crate::assert::{Assertion, Context};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn required(t: &mut Table<'_>, key: &str, sink: &mut Sink) -> Option<Spanned<String>> {
    let v = t.str(key, sink);
    if v.is_none() {
        sink.error(t.span(), format!("{}: missing `{key}`", t.path()));
    }
    v
}

/// Parses each assertion now, so a typo is a configuration error pointing at its column.
pub(super) fn read_expect(
    t: &mut Table<'_>,
    ctx: Context,
    sink: &mut Sink,
) -> Vec<Spanned<String>> {
    let list = t.str_list("expect", sink).unwrap_or_default();
    for a in &list {
        if let Err(e) = Assertion::parse(&a.value, ctx) {
            // +1 skips the opening quote of the TOML string.
            let at = a.span.start + 1 + e.offset;
            sink.error(
                at..a.span.end.saturating_sub(1).max(at + 1),
                format!("invalid assertion: {}", e.message),
            );
        }
    }
    list
}

fn read_method(t: &mut Table<'_>, sink: &mut Sink) -> String {
    match t.str("method", sink) {
        Some(m) if METHODS.contains(&m.value.to_ascii_uppercase().as_str()) => {
            m.value.to_ascii_uppercase()
        }
        Some(m) => {
            let msg = format!(
                "unknown method \"{}\", expected one of {}",
                m.value,
                METHODS.join(", ")
            );
            sink.error(m.span, msg);
            "GET".into()
        }
        None => "GET".into(),
    }
}

/// The keys of a request: `url`, `method`, `headers`, and one of `body`, `json` or `form`.
fn read_request(t: &mut Table<'_>, sink: &mut Sink) -> Option<RequestSpec> {
    let url = required(t, "url", sink);
    let method = read_method(t, sink);
    let headers = t.str_map("headers", sink).unwrap_or_default();
    let mut bodies = Vec::new();
    if let Some(b) = t.str("body", sink) {
        bodies.push(BodySpec::Raw(b));
    }
    if let Some(j) = t.get("json") {
        bodies.push(BodySpec::Json(j.clone()));
    }
    if let Some(f) = t.str_map("form", sink) {
        bodies.push(BodySpec::Form(f));
    }
    if bodies.len() > 1 {
        sink.error(
            t.span(),
            format!("{}: use only one of `body`, `json` and `form`", t.path()),
        );
    }
    Some(RequestSpec {
        url: url?,
        method,
        headers,
        body: bodies.into_iter().next(),
    })
}

pub(super) fn read_http(t: &mut Table<'_>, sink: &mut Sink) -> Option<HttpSpec> {
    let request = read_request(t, sink);
    let expect = read_expect(t, Context::Response, sink);
    let follow_redirects = t.bool("follow_redirects", sink).unwrap_or(true);
    Some(HttpSpec {
        request: request?,
        expect,
        follow_redirects,
    })
}

pub(super) fn read_headers(t: &mut Table<'_>, sink: &mut Sink) -> Option<HeadersSpec> {
    let url = required(t, "url", sink);
    let min_grade = match t.str("min_grade", sink) {
        Some(g) if crate::security::grade::LETTERS.contains(&g.value.as_str()) => g.value,
        Some(g) => {
            let msg = format!(
                "min_grade \"{}\" is not a grade, use one of {}",
                g.value,
                crate::security::grade::LETTERS.join(" ")
            );
            sink.error(g.span, msg);
            "B".into()
        }
        None => "B".into(),
    };
    let http_url = t.str("http_url", sink);
    let login = t.get("login").and_then(|node| {
        let mut lt = Table::of(node, format!("{}.login", t.path()), sink);
        let r = read_request(&mut lt, sink);
        lt.finish(&["url", "method", "headers", "body", "json", "form"], sink);
        r
    });
    Some(HeadersSpec {
        url: url?,
        min_grade,
        http_url,
        login,
    })
}

pub(super) fn read_cors(t: &mut Table<'_>, sink: &mut Sink) -> Option<CorsSpec> {
    let url = required(t, "url", sink);
    let allowed = t.str_list("allowed", sink).unwrap_or_default();
    let method = read_method(t, sink);
    Some(CorsSpec {
        url: url?,
        allowed,
        method,
    })
}

pub(super) fn read_exposure(t: &mut Table<'_>, sink: &mut Sink) -> Option<ExposureSpec> {
    let url = required(t, "url", sink);
    let endpoints = t.str_list("endpoints", sink).unwrap_or_default();
    Some(ExposureSpec {
        url: url?,
        endpoints,
    })
}

pub(super) fn read_page(t: &mut Table<'_>, sink: &mut Sink) -> Option<PageSpec> {
    let url = required(t, "url", sink);
    let expect = read_expect(t, Context::Response, sink);
    let assets = t.bool("assets", sink).unwrap_or(true);
    Some(PageSpec {
        url: url?,
        expect,
        assets,
    })
}

pub(super) fn read_redirect(t: &mut Table<'_>, sink: &mut Sink) -> Option<RedirectSpec> {
    let url = required(t, "url", sink);
    let max_hops = t.int("max_hops", 1..21, sink).unwrap_or(3) as usize;
    Some(RedirectSpec {
        url: url?,
        max_hops,
    })
}

pub(super) fn read_tls(t: &mut Table<'_>, sink: &mut Sink) -> Option<TlsSpec> {
    let host = required(t, "host", sink);
    let server_name = t.str("server_name", sink);
    let warn_days = t.int("warn_days", 0..3651, sink).unwrap_or(30);
    let fail_days = t.int("fail_days", 0..3651, sink).unwrap_or(7);
    if fail_days > warn_days {
        sink.error(
            t.span(),
            format!(
                "{}: fail_days ({fail_days}) is larger than warn_days ({warn_days})",
                t.path()
            ),
        );
    }
    let min_version = match t.str("min_version", sink) {
        Some(v) if v.value == "1.2" || v.value == "1.3" => v.value,
        Some(v) => {
            sink.error(
                v.span,
                format!(
                    "min_version \"{}\" is not supported, use \"1.2\" or \"1.3\"",
                    v.value
                ),
            );
            "1.2".into()
        }
        None => "1.2".into(),
    };
    let legacy_warn = match t.str("legacy", sink) {
        Some(v) if v.value == "warn" => true,
        Some(v) if v.value == "fail" => false,
        Some(v) => {
            sink.error(
                v.span,
                format!("legacy \"{}\" must be \"fail\" or \"warn\"", v.value),
            );
            false
        }
        None => false,
    };
    Some(TlsSpec {
        host: host?,
        server_name,
        warn_days,
        fail_days,
        min_version,
        legacy_warn,
    })
}

const STEP_KEYS: &[&str] = &[
    "name",
    "method",
    "url",
    "headers",
    "body",
    "json",
    "form",
    "expect",
    "capture",
    "timeout",
    "follow_redirects",
    "always",
];

pub(super) fn read_flow(t: &mut Table<'_>, sink: &mut Sink) -> Option<FlowSpec> {
    let path = t.path().to_string();
    let Some(node) = t.get("step") else {
        sink.error(
            t.span(),
            format!("{path}: a flow needs at least one [[check.step]]"),
        );
        return None;
    };
    let Value::Array(items) = &node.value else {
        sink.error(
            node.span.clone(),
            format!("{path}: write each step as [[check.step]]"),
        );
        return None;
    };
    let mut steps: Vec<StepSpec> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut st = Table::of(item, format!("{path}.step[{i}]"), sink);
        let step = read_step(&mut st, sink);
        st.finish(STEP_KEYS, sink);
        if let Some(step) = step {
            if steps.iter().any(|s| s.name.value == step.name.value) {
                sink.error(
                    step.name.span.clone(),
                    format!("duplicate step name \"{}\"", step.name.value),
                );
            }
            steps.push(step);
        }
    }
    Some(FlowSpec { steps })
}

fn read_step(t: &mut Table<'_>, sink: &mut Sink) -> Option<StepSpec> {
    let name = required(t, "name", sink);
    let bad_name = |n: &&Spanned<String>| {
        n.value.is_empty()
            || !n
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if let Some(n) = name.as_ref().filter(bad_name) {
        let msg = format!(
            "step name \"{}\" may only use letters, digits, _ and - (it becomes part of finding ids)",
            n.value
        );
        sink.error(n.span.clone(), msg);
    }
    let request = read_request(t, sink);
    let expect = read_expect(t, Context::Response, sink);
    let capture = t.str_map("capture", sink).unwrap_or_default();
    for (var, q) in &capture {
        if let Err(e) = crate::assert::parse_capture(&q.value) {
            let at = q.span.start + 1 + e.offset;
            sink.error(
                at..q.span.end.saturating_sub(1).max(at + 1),
                format!("invalid capture \"{var}\": {}", e.message),
            );
        }
    }
    let timeout = t.duration("timeout", sink);
    let follow_redirects = t.bool("follow_redirects", sink).unwrap_or(true);
    let always = t.bool("always", sink).unwrap_or(false);
    Some(StepSpec {
        name: name?,
        request: request?,
        expect,
        capture,
        timeout,
        follow_redirects,
        always,
    })
}

pub(super) fn read_latency(t: &mut Table<'_>, sink: &mut Sink) -> Option<LatencySpec> {
    let request = read_request(t, sink);
    let requests = t.int("requests", 1..100_000_001, sink).map(|n| n as u64);
    let concurrency = t.int("concurrency", 1..10_001, sink).unwrap_or(4) as u64;
    let path = t.path().to_string();
    let rate = t.get("rate").and_then(|n| match n.value {
        Value::Int(i) if i > 0 => Some(i as f64),
        Value::Float(f) if f > 0.0 && f.is_finite() => Some(f),
        _ => {
            sink.error(
                n.span.clone(),
                format!("{path}: rate must be a positive number of requests per second"),
            );
            None
        }
    });
    let duration = t.duration("duration", sink);
    if rate.is_some() && duration.is_none() {
        sink.error(
            t.span(),
            format!("{path}: open-loop mode (`rate`) needs a `duration`"),
        );
    }
    let warmup = t.int("warmup", 0..1_000_001, sink).unwrap_or(0) as u64;
    let keepalive = t.bool("keepalive", sink).unwrap_or(true);
    let follow_redirects = t.bool("follow_redirects", sink).unwrap_or(true);
    let expect = read_expect(t, Context::Latency, sink);
    Some(LatencySpec {
        request: request?,
        requests,
        concurrency,
        rate,
        duration,
        warmup,
        keepalive,
        follow_redirects,
        expect,
    })
}
