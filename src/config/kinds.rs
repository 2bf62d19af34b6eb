//! One reader per check kind: each takes its keys from the check's table and reports every problem.

use super::spec::*;
use crate::assert::{Assertion, Context};
use crate::doc::{Diagnostics, Spanned, Table, Value};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn required(t: &mut Table<'_>, key: &str, diags: &mut Diagnostics) -> Option<Spanned<String>> {
    let v = t.str(key, diags);
    if v.is_none() {
        diags.error(t.span(), format!("{}: missing `{key}`", t.path()));
    }
    v
}

/// Parses each assertion now, so a typo is a configuration error pointing at its column.
pub(super) fn read_expect(
    t: &mut Table<'_>,
    ctx: Context,
    diags: &mut Diagnostics,
) -> Vec<Spanned<String>> {
    let list = t.str_list("expect", diags).unwrap_or_default();
    for a in &list {
        if let Err(e) = Assertion::parse(&a.value, ctx) {
            // +1 skips the opening quote of the TOML string.
            let at = a.span.start + 1 + e.offset;
            diags.error(
                at..a.span.end.saturating_sub(1).max(at + 1),
                format!("invalid assertion: {}", e.message),
            );
        }
    }
    list
}

fn read_method(t: &mut Table<'_>, diags: &mut Diagnostics) -> String {
    match t.str("method", diags) {
        Some(m) if METHODS.contains(&m.value.to_ascii_uppercase().as_str()) => {
            m.value.to_ascii_uppercase()
        }
        Some(m) => {
            let msg = format!(
                "unknown method \"{}\", expected one of {}",
                m.value,
                METHODS.join(", ")
            );
            diags.error(m.span, msg);
            "GET".into()
        }
        None => "GET".into(),
    }
}

/// The keys of a request: `url`, `method`, `headers`, and one of `body`, `json` or `form`.
fn read_request(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<RequestSpec> {
    let url = required(t, "url", diags);
    let method = read_method(t, diags);
    let headers = t.str_map("headers", diags).unwrap_or_default();
    let mut bodies = Vec::new();
    if let Some(b) = t.str("body", diags) {
        bodies.push(BodySpec::Raw(b));
    }
    if let Some(j) = t.get("json") {
        bodies.push(BodySpec::Json(j.clone()));
    }
    if let Some(f) = t.str_map("form", diags) {
        bodies.push(BodySpec::Form(f));
    }
    if bodies.len() > 1 {
        diags.error(
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

pub(super) fn read_http(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<HttpSpec> {
    let request = read_request(t, diags);
    let expect = read_expect(t, Context::Response, diags);
    let follow_redirects = t.bool("follow_redirects", diags).unwrap_or(true);
    Some(HttpSpec {
        request: request?,
        expect,
        follow_redirects,
    })
}

pub(super) fn read_headers(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<HeadersSpec> {
    let url = required(t, "url", diags);
    let min_grade = match t.str("min_grade", diags) {
        Some(g) if crate::security::grade::LETTERS.contains(&g.value.as_str()) => g.value,
        Some(g) => {
            let msg = format!(
                "min_grade \"{}\" is not a grade, use one of {}",
                g.value,
                crate::security::grade::LETTERS.join(" ")
            );
            diags.error(g.span, msg);
            "B".into()
        }
        None => "B".into(),
    };
    let http_url = t.str("http_url", diags);
    let login = t.get("login").and_then(|node| {
        let mut lt = Table::of(node, format!("{}.login", t.path()), diags);
        let r = read_request(&mut lt, diags);
        lt.finish(&["url", "method", "headers", "body", "json", "form"], diags);
        r
    });
    Some(HeadersSpec {
        url: url?,
        min_grade,
        http_url,
        login,
    })
}

pub(super) fn read_cors(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<CorsSpec> {
    let url = required(t, "url", diags);
    let allowed = t.str_list("allowed", diags).unwrap_or_default();
    let method = read_method(t, diags);
    Some(CorsSpec {
        url: url?,
        allowed,
        method,
    })
}

pub(super) fn read_exposure(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<ExposureSpec> {
    let url = required(t, "url", diags);
    let endpoints = t.str_list("endpoints", diags).unwrap_or_default();
    Some(ExposureSpec {
        url: url?,
        endpoints,
    })
}

pub(super) fn read_page(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<PageSpec> {
    let url = required(t, "url", diags);
    let expect = read_expect(t, Context::Response, diags);
    let assets = t.bool("assets", diags).unwrap_or(true);
    Some(PageSpec {
        url: url?,
        expect,
        assets,
    })
}

pub(super) fn read_redirect(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<RedirectSpec> {
    let url = required(t, "url", diags);
    let max_hops = t.int("max_hops", 1..21, diags).unwrap_or(3) as usize;
    Some(RedirectSpec {
        url: url?,
        max_hops,
    })
}

pub(super) fn read_tls(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<TlsSpec> {
    let host = required(t, "host", diags);
    let server_name = t.str("server_name", diags);
    let warn_days = t.int("warn_days", 0..3651, diags).unwrap_or(30);
    let fail_days = t.int("fail_days", 0..3651, diags).unwrap_or(7);
    if fail_days > warn_days {
        diags.error(
            t.span(),
            format!(
                "{}: fail_days ({fail_days}) is larger than warn_days ({warn_days})",
                t.path()
            ),
        );
    }
    let min_version = match t.str("min_version", diags) {
        Some(v) if v.value == "1.2" || v.value == "1.3" => v.value,
        Some(v) => {
            diags.error(
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
    let legacy_warn = match t.str("legacy", diags) {
        Some(v) if v.value == "warn" => true,
        Some(v) if v.value == "fail" => false,
        Some(v) => {
            diags.error(
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

pub(super) fn read_flow(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<FlowSpec> {
    let path = t.path().to_string();
    let Some(node) = t.get("step") else {
        diags.error(
            t.span(),
            format!("{path}: a flow needs at least one [[check.step]]"),
        );
        return None;
    };
    let Value::Array(items) = &node.value else {
        diags.error(
            node.span.clone(),
            format!("{path}: write each step as [[check.step]]"),
        );
        return None;
    };
    let mut steps: Vec<StepSpec> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut st = Table::of(item, format!("{path}.step[{i}]"), diags);
        let step = read_step(&mut st, diags);
        st.finish(STEP_KEYS, diags);
        if let Some(step) = step {
            if steps.iter().any(|s| s.name.value == step.name.value) {
                diags.error(
                    step.name.span.clone(),
                    format!("duplicate step name \"{}\"", step.name.value),
                );
            }
            steps.push(step);
        }
    }
    Some(FlowSpec { steps })
}

fn read_step(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<StepSpec> {
    let name = required(t, "name", diags);
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
        diags.error(n.span.clone(), msg);
    }
    let request = read_request(t, diags);
    let expect = read_expect(t, Context::Response, diags);
    let capture = t.str_map("capture", diags).unwrap_or_default();
    for (var, q) in &capture {
        if let Err(e) = crate::assert::parse_capture(&q.value) {
            let at = q.span.start + 1 + e.offset;
            diags.error(
                at..q.span.end.saturating_sub(1).max(at + 1),
                format!("invalid capture \"{var}\": {}", e.message),
            );
        }
    }
    let timeout = t.duration("timeout", diags);
    let follow_redirects = t.bool("follow_redirects", diags).unwrap_or(true);
    let always = t.bool("always", diags).unwrap_or(false);
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

pub(super) fn read_latency(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<LatencySpec> {
    let request = read_request(t, diags);
    let requests = t.int("requests", 1..100_000_001, diags).map(|n| n as u64);
    let concurrency = t.int("concurrency", 1..10_001, diags).unwrap_or(4) as u64;
    let path = t.path().to_string();
    let rate = t.get("rate").and_then(|n| match n.value {
        Value::Int(i) if i > 0 => Some(i as f64),
        Value::Float(f) if f > 0.0 && f.is_finite() => Some(f),
        _ => {
            diags.error(
                n.span.clone(),
                format!("{path}: rate must be a positive number of requests per second"),
            );
            None
        }
    });
    let duration = t.duration("duration", diags);
    if rate.is_some() && duration.is_none() {
        diags.error(
            t.span(),
            format!("{path}: open-loop mode (`rate`) needs a `duration`"),
        );
    }
    let warmup = t.int("warmup", 0..1_000_001, diags).unwrap_or(0) as u64;
    let keepalive = t.bool("keepalive", diags).unwrap_or(true);
    let follow_redirects = t.bool("follow_redirects", diags).unwrap_or(true);
    let expect = read_expect(t, Context::Latency, diags);
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
