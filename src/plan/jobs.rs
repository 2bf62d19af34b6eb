//! Building one job: interpolating a check's strings and turning its spec into a probe.

use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::Diags;
use super::Job;
use crate::assert::{Assertion, Context, Scope, interpolate};
use crate::check::{
    BodyTemplate, CorsProbe, ExposureProbe, FlowProbe, FlowStep, HeadersProbe, HttpProbe,
    LatencyProbe, Mode, PageProbe, Probe, RedirectProbe, Status, TlsProbe,
};
use crate::config::{
    BodySpec, CheckSpec, Config, Diagnostic, KindSpec, Node, RequestSpec, Spanned, Value,
};
use crate::net::Request;

/// Renders a template, recording a positioned diagnostic on failure.
fn try_render(
    scope: &Scope,
    s: &Spanned<String>,
    diags: &mut Diags,
) -> Option<crate::assert::Rendered> {
    interpolate(&s.value, scope)
        .map_err(|e| {
            let at = s.span.start + 1 + e.offset;
            diags.push(Diagnostic::new(at..at + e.len, e.message));
        })
        .ok()
}

/// Like [`try_render`], for values whose later use cannot fail: the raw text stands in.
pub(super) fn render(
    scope: &Scope,
    s: &Spanned<String>,
    diags: &mut Diags,
) -> crate::assert::Rendered {
    try_render(scope, s, diags).unwrap_or_else(|| crate::assert::Rendered {
        text: s.value.clone(),
        uses_secret: false,
    })
}

/// Renders and parses a URL, with the check's context in the message.
fn render_url(scope: &Scope, s: &Spanned<String>, diags: &mut Diags) -> Option<Url> {
    let rendered = try_render(scope, s, diags)?;
    let url = check_url(&rendered.text, s, diags)?;
    if let Some(password) = url.password() {
        // Sent as Basic auth to this origin only, and hidden like a secret everywhere.
        let user = url.username();
        diags.learnt.push(format!("{user}:{password}"));
        diags.learnt.push(password.to_string());
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        diags
            .learnt
            .push(format!("{}:{}", decode(user), decode(password)));
        diags.learnt.push(decode(password));
        if !userinfo_from_secrets(&s.value) {
            diags.warnings.push(Diagnostic::new(
                s.span.clone(),
                "the URL holds a password in clear text: move it to [secrets] and write {{ secrets.NAME }}"
                    .into(),
            ));
        }
    }
    Some(url)
}

/// True when the userinfo of a URL template takes its password from `{{ secrets.NAME }}`.
fn userinfo_from_secrets(template: &str) -> bool {
    let rest = template.split_once("://").map_or(template, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| password.contains("{{") && password.contains("secrets."))
}

/// Parses a rendered URL; only http:// and https:// are accepted.
fn check_url(text: &str, s: &Spanned<String>, diags: &mut Diags) -> Option<Url> {
    match Url::parse(text) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
        Ok(u) => {
            let msg = format!(
                "URL \"{text}\" must be http:// or https://, not {}://",
                u.scheme()
            );
            diags.push(Diagnostic::new(s.span.clone(), msg));
            None
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                s.span.clone(),
                format!("invalid URL \"{text}\": {e}"),
            ));
            None
        }
    }
}

fn render_expect(
    scope: &Scope,
    list: &[Spanned<String>],
    ctx: Context,
    diags: &mut Diags,
) -> Vec<Assertion> {
    list.iter()
        .filter_map(|a| {
            let text = try_render(scope, a, diags)?.text;
            // Shape errors were reported when the file was read; this only catches interpolated values.
            Assertion::parse(&text, ctx)
                .map_err(|e| {
                    diags.push(Diagnostic::new(
                        a.span.clone(),
                        format!("invalid assertion after interpolation: {}", e.message),
                    ))
                })
                .ok()
        })
        .collect()
}

pub(super) fn build_job(
    config: &Config,
    spec: &CheckSpec,
    scope: &Scope,
    diags: &mut Diags,
) -> Option<Job> {
    let timeout = spec
        .timeout
        .unwrap_or_else(|| default_timeout(config, &spec.kind));
    let max_body = config.defaults.max_body;
    let base_request = |url: Url| Request {
        insecure: spec.insecure,
        max_body,
        ..Request::get(url)
    };
    let probe = match &spec.kind {
        KindSpec::Http(h) => {
            let request = render_request(scope, &h.request, &base_request, diags);
            let expect = render_expect(scope, &h.expect, Context::Response, diags);
            Probe::Http(HttpProbe {
                request: request?,
                expect,
                follow_redirects: h.follow_redirects,
            })
        }
        KindSpec::Headers(spec) => {
            let url = render_url(scope, &spec.url, diags);
            let http_url = spec.http_url.as_ref().map(|u| render_url(scope, u, diags));
            let login = spec
                .login
                .as_ref()
                .map(|l| render_request(scope, l, &base_request, diags));
            Probe::Headers(Box::new(HeadersProbe {
                request: base_request(url?),
                min_grade: spec.min_grade.clone(),
                login: login.map(|l| l.ok_or(())).transpose().ok()?,
                http_url: http_url.map(|u| u.ok_or(())).transpose().ok()?,
            }))
        }
        KindSpec::Cors(spec) => {
            let url = render_url(scope, &spec.url, diags)?;
            let allowed = render_origins(scope, &spec.allowed, diags);
            let method = spec.method.parse().unwrap_or(http::Method::GET);
            Probe::Cors(CorsProbe {
                request: base_request(url),
                allowed,
                method,
            })
        }
        KindSpec::Exposure(spec) => {
            let url = render_url(scope, &spec.url, diags)?;
            let endpoints: Vec<Url> = spec
                .endpoints
                .iter()
                .filter_map(|e| render_url(scope, e, diags))
                .collect();
            Probe::Exposure(ExposureProbe {
                request: base_request(url),
                endpoints,
            })
        }
        KindSpec::Page(p) => {
            let url = render_url(scope, &p.url, diags)?;
            let expect = render_expect(scope, &p.expect, Context::Response, diags);
            Probe::Page(PageProbe {
                request: base_request(url),
                expect,
                assets: p.assets,
            })
        }
        KindSpec::Flow(f) => Probe::Flow(FlowProbe {
            steps: flow_steps(scope, f, diags)?,
            insecure: spec.insecure,
            max_body,
        }),
        KindSpec::Latency(l) => {
            let request = render_request(scope, &l.request, &base_request, diags);
            let expect = render_expect(scope, &l.expect, Context::Latency, diags);
            let mode = match (l.rate, l.duration) {
                (Some(rate), Some(duration)) => Mode::Open {
                    rate,
                    duration,
                    concurrency: l.concurrency,
                },
                (None, duration) => Mode::Closed {
                    // A timed run goes until its duration is over unless a count is also given.
                    requests: l
                        .requests
                        .unwrap_or(if duration.is_some() { u64::MAX } else { 100 }),
                    concurrency: l.concurrency,
                    duration,
                },
                (Some(_), None) => return None,
            };
            Probe::Latency(LatencyProbe {
                request: request?,
                mode,
                warmup: l.warmup,
                keepalive: l.keepalive,
                follow_redirects: l.follow_redirects,
                expect,
            })
        }
        KindSpec::Redirect(r) => {
            let url = render_url(scope, &r.url, diags)?;
            if url.scheme() != "http" {
                diags.push(Diagnostic::new(
                    r.url.span.clone(),
                    format!("a redirect check starts from an http:// URL, not \"{url}\""),
                ));
                return None;
            }
            Probe::Redirect(RedirectProbe {
                request: base_request(url),
                max_hops: r.max_hops,
            })
        }
        KindSpec::Tls(t) => {
            let host = render(scope, &t.host, diags).text;
            let Some((name, port)) = split_host_port(&host) else {
                diags.push(Diagnostic::new(
                    t.host.span.clone(),
                    format!("host \"{host}\" must be HOST or HOST:PORT"),
                ));
                return None;
            };
            let server_name = t
                .server_name
                .as_ref()
                .map_or_else(|| name.clone(), |s| render(scope, s, diags).text);
            Probe::Tls(TlsProbe {
                host: name,
                port,
                server_name,
                warn_days: t.warn_days,
                fail_days: t.fail_days,
                min_version: t.min_version.clone(),
                legacy_status: if t.legacy_warn {
                    Status::Warn
                } else {
                    Status::Fail
                },
            })
        }
    };
    Some(Job {
        name: spec.name.value.clone(),
        interval: spec.interval,
        timeout,
        probe,
    })
}

/// Renders a request: URL, method, headers and body.
fn render_request(
    scope: &Scope,
    spec: &RequestSpec,
    base: &dyn Fn(Url) -> Request,
    diags: &mut Diags,
) -> Option<Request> {
    let url = render_url(scope, &spec.url, diags);
    let mut secret_headers = Vec::new();
    let mut headers: Vec<(String, String)> = spec
        .headers
        .iter()
        .map(|(k, v)| {
            let rendered = render(scope, v, diags);
            if rendered.uses_secret {
                secret_headers.push(k.to_ascii_lowercase());
            }
            check_header(k, &rendered.text, v, diags);
            (k.clone(), rendered.text)
        })
        .collect();
    let body = spec
        .body
        .as_ref()
        .map(|b| render_body(scope, b, &mut headers, diags))
        .unwrap_or_default();
    let method = spec.method.parse().unwrap_or(http::Method::GET);
    Some(Request {
        method,
        headers,
        body,
        secret_headers,
        ..base(url?)
    })
}

/// Allowed CORS origins: each entry may hold several, separated by spaces; each must be a bare origin.
fn render_origins(scope: &Scope, entries: &[Spanned<String>], diags: &mut Diags) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries {
        let text = render(scope, e, diags).text;
        for o in text.split_whitespace() {
            match Url::parse(o) {
                Ok(u) if u.origin().ascii_serialization() == o.trim_end_matches('/') => {
                    out.push(u.origin().ascii_serialization())
                }
                _ => diags.push(Diagnostic::new(
                    e.span.clone(),
                    format!("\"{o}\" is not an origin such as https://app.example.com"),
                )),
            }
        }
    }
    out
}

/// A header must be valid HTTP, so the problem shows up in `validate` and not as a failed run.
fn check_header(name: &str, value: &str, at: &Spanned<String>, diags: &mut Diags) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        diags.push(Diagnostic::new(
            at.span.clone(),
            format!("invalid header name \"{name}\""),
        ));
    } else if http::HeaderValue::from_str(value).is_err() {
        diags.push(Diagnostic::new(
            at.span.clone(),
            format!("header \"{name}\": the value holds characters HTTP does not allow"),
        ));
    }
}

/// `example.com:8443` → (`example.com`, 8443); a bare host means port 443; `[::1]:443` works.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        None if !s.is_empty() => Some((s.to_string(), 443)),
        _ => None,
    }
}

fn render_body(
    scope: &Scope,
    body: &BodySpec,
    headers: &mut Vec<(String, String)>,
    diags: &mut Diags,
) -> Bytes {
    body_template(scope, Some(body), headers, diags).to_bytes()
}

/// A TOML value as JSON, with every string interpolated.
fn to_json(scope: &Scope, node: &Node, diags: &mut Diags) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Str(s) => J::String(
            render(
                scope,
                &Spanned {
                    span: node.span.clone(),
                    value: s.clone(),
                },
                diags,
            )
            .text,
        ),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Bool(b) => J::Bool(*b),
        Value::Datetime(d) => J::String(d.clone()),
        Value::Array(items) => J::Array(items.iter().map(|n| to_json(scope, n, diags)).collect()),
        Value::Table(entries) => J::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(scope, &e.node, diags)))
                .collect(),
        ),
    }
}

/// A latency run lasts longer than one request: an open loop gets its duration on top of the
/// default timeout, a closed loop at least a minute.
fn default_timeout(config: &Config, kind: &KindSpec) -> Duration {
    let base = config.defaults.timeout;
    match kind {
        KindSpec::Latency(l) => match l.duration {
            Some(d) => d + base,
            None => base.max(Duration::from_secs(60)),
        },
        KindSpec::Flow(f) => {
            // Each step may have its own timeout; the flow gets their sum.
            let steps: Duration = f.steps.iter().map(|s| s.timeout.unwrap_or(base)).sum();
            steps.max(base)
        }
        _ => base,
    }
}

/// Renders each step with the variables known now. A capture of an earlier step stands in as
/// its own `{{ name }}` placeholder, to be filled when the flow runs.
fn flow_steps(
    scope: &Scope,
    flow: &crate::config::FlowSpec,
    diags: &mut Diags,
) -> Option<Vec<FlowStep>> {
    let mut scope = scope.clone();
    for st in &flow.steps {
        for var in st.capture.iter().map(|(v, _)| v) {
            scope
                .later
                .entry(var.clone())
                .or_insert_with(|| st.name.value.clone());
        }
    }
    let mut steps = Vec::new();
    let before = diags.len();
    for st in &flow.steps {
        let req = &st.request;
        let url = try_render(&scope, &req.url, diags).map(|r| r.text);
        if let Some(u) = url.as_deref().filter(|u| !u.contains("{{")) {
            check_url(u, &req.url, diags);
        }
        let url = url.unwrap_or_default();
        let mut secret_headers = Vec::new();
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| {
                let rendered = render(&scope, v, diags);
                // A capture stands in as a placeholder until the flow runs: a secret all the same.
                if rendered.uses_secret || rendered.text.contains("{{") {
                    secret_headers.push(k.to_ascii_lowercase());
                } else {
                    check_header(k, &rendered.text, v, diags);
                }
                (k.clone(), rendered.text)
            })
            .collect();
        let body = body_template(&scope, req.body.as_ref(), &mut headers, diags);
        let expect: Vec<String> = st
            .expect
            .iter()
            .filter_map(|e| try_render(&scope, e, diags).map(|r| r.text))
            .collect();
        let captures = st
            .capture
            .iter()
            .filter_map(|(var, q)| {
                crate::assert::parse_capture(&q.value)
                    .ok()
                    .map(|c| (var.clone(), c))
            })
            .collect::<Vec<_>>();
        for (var, _) in &captures {
            scope.later.remove(var);
            scope.set(var, format!("{{{{ {var} }}}}"));
        }
        steps.push(FlowStep {
            name: st.name.value.clone(),
            method: req.method.parse().unwrap_or(http::Method::GET),
            url,
            headers,
            secret_headers,
            body,
            expect,
            captures,
            timeout: st.timeout,
            follow_redirects: st.follow_redirects,
            always: st.always,
        });
    }
    (diags.len() == before).then_some(steps)
}

fn body_template(
    scope: &Scope,
    body: Option<&BodySpec>,
    headers: &mut Vec<(String, String)>,
    diags: &mut Diags,
) -> BodyTemplate {
    let mut set_type = |t: &str| {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), t.into()));
        }
    };
    match body {
        None => BodyTemplate::Empty,
        Some(BodySpec::Raw(s)) => BodyTemplate::Raw(render(scope, s, diags).text),
        Some(BodySpec::Json(node)) => {
            set_type("application/json");
            BodyTemplate::Json(to_json(scope, node, diags))
        }
        Some(BodySpec::Form(fields)) => {
            set_type("application/x-www-form-urlencoded");
            BodyTemplate::Form(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), render(scope, v, diags).text))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("example.com"),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            split_host_port("example.com:8443"),
            Some(("example.com".into(), 8443))
        );
        assert_eq!(split_host_port("[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(split_host_port("example.com:x"), None);
        assert_eq!(split_host_port(""), None);
    }
}
