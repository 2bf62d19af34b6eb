//! `kind = "flow"`: steps in order, with captures and one cookie jar per run. A failed step stops
//! the flow; later steps are skipped unless marked `always`.

use crate::check::build::{Build, body_template, check_header, check_url, render, try_render};
use crate::check::read::{REQUEST_KEYS, RequestSpec, read_expect, read_request, required};
use crate::doc::{Diagnostics, Spanned, Table, Value};
use crate::outcome::{Details, FlowDetails, StepDetail, StepRun as RunDetail};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::time::Instant;
use url::Url;

use crate::assert::{Assertion, Capture, Context, Query, Scope, Severity, interpolate};
use crate::net::jar::Jar;
use crate::net::{MAX_REDIRECTS, Pool, Request, Response, Timings};

use super::{Ctx, Finding, Probed, Status, subject_of};

/// A request body whose strings may still hold `{{ capture }}` placeholders.
#[derive(Debug, Clone, Default)]
pub enum BodyTemplate {
    #[default]
    Empty,
    Raw(String),
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

/// Why a step could not be sent once the captures of earlier steps were filled in.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A `{{ name }}` that cannot be filled, with the interpolation's own message.
    #[error("{0}")]
    Template(String),
    #[error("invalid URL: {0}")]
    Url(#[from] url::ParseError),
}

impl BodyTemplate {
    /// The template with captures filled in; JSON strings stay JSON-escaped.
    pub fn fill(&self, captures: &Scope) -> Result<BodyTemplate, StepError> {
        let fill = |s: &str| {
            interpolate(s, captures)
                .map(|r| r.text)
                .map_err(|e| StepError::Template(e.message))
        };
        Ok(match self {
            BodyTemplate::Empty => BodyTemplate::Empty,
            BodyTemplate::Raw(s) => BodyTemplate::Raw(fill(s)?),
            BodyTemplate::Json(v) => BodyTemplate::Json(fill_json(v, captures)?),
            BodyTemplate::Form(fields) => BodyTemplate::Form(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), fill(v)?)))
                    .collect::<Result<_, StepError>>()?,
            ),
        })
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            BodyTemplate::Empty => Bytes::new(),
            BodyTemplate::Raw(s) => Bytes::from(s.clone()),
            BodyTemplate::Json(v) => Bytes::from(v.to_string()),
            BodyTemplate::Form(fields) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in fields {
                    ser.append_pair(k, v);
                }
                Bytes::from(ser.finish())
            }
        }
    }
}

/// One step, rendered except for captures of earlier steps.
#[derive(Debug, Clone)]
pub struct FlowStep {
    pub name: String,
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Lower-case names of the headers that carry a secret or a captured value.
    pub secret_headers: Vec<String>,
    pub body: BodyTemplate,
    pub expect: Vec<String>,
    pub captures: Vec<(String, Capture)>,
    pub timeout: Option<Duration>,
    pub follow_redirects: bool,
    pub always: bool,
}

/// The steps of a flow and the request settings they share.
#[derive(Debug, Clone)]
pub struct FlowProbe {
    pub steps: Vec<FlowStep>,
    pub insecure: bool,
    pub max_body: u64,
}

/// What one step did, for the report's step tree.
struct StepRun {
    status: &'static str,
    findings: Vec<Finding>,
    http_status: Option<u16>,
    timings: Option<Timings>,
    duration: Duration,
}

/// The state a flow run carries from step to step.
struct RunState {
    captures: Scope,
    jar: Jar,
    captured_values: Vec<String>,
    /// Keep-alive connections, as a browser session keeps them.
    pool: Pool,
}

impl FlowProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let mut state = RunState {
            captures: Scope::default(),
            jar: Jar::default(),
            captured_values: Vec::new(),
            pool: Pool::new(),
        };
        let mut failed = false;
        let (mut findings, mut steps) = (Vec::new(), Vec::new());
        let mut total = Timings::default();
        for step in &self.steps {
            if failed && !step.always {
                steps.push(StepDetail {
                    name: step.name.clone(),
                    status: "skipped".into(),
                    run: None,
                });
                continue;
            }
            let run = self.run_step(ctx, step, &mut state).await;
            failed |= run.status == "fail";
            if let Some(t) = run.timings {
                total.total += t.total;
                total.ttfb += t.ttfb;
            }
            steps.push(StepDetail {
                name: step.name.clone(),
                status: run.status.to_string(),
                run: Some(RunDetail {
                    method: step.method.to_string(),
                    http_status: run.http_status,
                    duration_ms: crate::units::ms(run.duration),
                    ttfb_ms: run.timings.map(|t| crate::units::ms(t.ttfb)),
                }),
            });
            findings.extend(run.findings);
        }
        let details = Details::Flow(FlowDetails { steps });
        Probed {
            findings,
            timings: Some(total),
            error: None,
            details,
            redact: state.captured_values,
        }
    }

    async fn run_step(&self, ctx: &Ctx<'_>, step: &FlowStep, state: &mut RunState) -> StepRun {
        let started = Instant::now();
        let deadline = step
            .timeout
            .map_or(ctx.deadline, |t| (started + t).min(ctx.deadline));
        let fail = |id: &str, msg: String, actual: String| StepRun {
            status: "fail",
            findings: vec![
                Finding::new(format!("flow.{}.{id}", step.name), Status::Fail, msg)
                    .with_values("the step runs", actual),
            ],
            http_status: None,
            timings: None,
            duration: started.elapsed(),
        };
        let req = match self.render(step, &state.captures) {
            Ok(r) => r,
            Err(e) => return fail("request", format!("step {}: {e}", step.name), e.to_string()),
        };
        let (resp, redirects) = match self
            .send(
                ctx,
                &mut state.pool,
                req,
                step.follow_redirects,
                &mut state.jar,
                deadline,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return fail(
                    "request",
                    format!("step {}: {e}", step.name),
                    e.kind().to_string(),
                );
            }
        };
        let mut findings = self.judge(step, &resp, redirects, &state.captures);
        for (var, capture) in &step.captures {
            let value = match &capture.query {
                Query::Cookie(name) => state
                    .jar
                    .value(name)
                    .map(str::to_string)
                    .and_then(|v| capture.narrow(v)),
                _ => subject_of(&resp, redirects).capture(capture),
            };
            match value.filter(|v| !v.is_empty()) {
                Some(v) => {
                    state.captured_values.push(v.clone());
                    state.captures.set(var, v);
                }
                None => findings.push(
                    Finding::new(
                        format!("flow.{}.capture", step.name),
                        Status::Fail,
                        format!("capture \"{var}\" found nothing in the response"),
                    )
                    .with_values(format!("a value for {var}"), "nothing"),
                ),
            }
        }
        let status = if findings.iter().any(|f| f.status == Status::Fail) {
            "fail"
        } else {
            "pass"
        };
        StepRun {
            status,
            findings,
            http_status: Some(resp.status),
            timings: Some(resp.timings),
            duration: started.elapsed(),
        }
    }

    /// Fills in captures and builds the request; an unknown capture name is reported, not sent.
    fn render(&self, step: &FlowStep, captures: &Scope) -> Result<Request, StepError> {
        let fill = |s: &str| {
            interpolate(s, captures)
                .map(|r| r.text)
                .map_err(|e| StepError::Template(e.message))
        };
        let url = Url::parse(&fill(&step.url)?)?;
        let mut headers = Vec::new();
        for (k, v) in &step.headers {
            headers.push((k.clone(), fill(v)?));
        }
        let body = step.body.fill(captures)?.to_bytes();
        Ok(Request {
            method: step.method.clone(),
            headers,
            body,
            insecure: self.insecure,
            max_body: self.max_body,
            secret_headers: step.secret_headers.clone(),
            ..Request::get(url)
        })
    }

    /// Sends a request with the jar's cookies, following redirects by hand so each hop's cookies
    /// are kept. Credentials and secret-bearing headers stay with their origin.
    async fn send(
        &self,
        ctx: &Ctx<'_>,
        pool: &mut Pool,
        mut req: Request,
        follow: bool,
        jar: &mut Jar,
        deadline: Instant,
    ) -> Result<(Response, usize), crate::net::NetError> {
        let mut redirects = 0;
        loop {
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("cookie"));
            if let Some(cookie) = jar.header_for(&req.url, SystemTime::now()) {
                req.headers.push(("Cookie".into(), cookie));
            }
            let resp = pool.send(ctx.engine, &req, ctx.overrides, deadline).await?;
            jar.store(&req.url, &resp.headers, SystemTime::now());
            let next = resp
                .location()
                .filter(|_| follow && resp.is_redirect())
                .and_then(|l| req.url.join(l).ok());
            match next {
                Some(url) if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    req.redirect(resp.status, url);
                }
                _ => return Ok((resp, redirects)),
            }
        }
    }

    /// The step's assertions as `flow.<step>.<n>`; without any, the status must be below 400.
    fn judge(
        &self,
        step: &FlowStep,
        resp: &Response,
        redirects: usize,
        captures: &Scope,
    ) -> Vec<Finding> {
        let subject = subject_of(resp, redirects);
        if step.expect.is_empty() {
            let ok = resp.status < 400;
            return vec![
                Finding::judge(
                    &format!("flow.{}.status", step.name),
                    ok,
                    Status::Fail,
                    format!("status {}", resp.status),
                )
                .with_values("< 400", resp.status.to_string()),
            ];
        }
        step.expect
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let id = format!("flow.{}.{}", step.name, i + 1);
                let parsed = interpolate(text, captures)
                    .map_err(|e| e.message)
                    .and_then(|r| {
                        Assertion::parse(&r.text, Context::Response).map_err(|e| e.message)
                    });
                match parsed {
                    Err(why) => Finding::new(id, Status::Fail, format!("{text}: {why}"))
                        .with_values(text.clone(), "not evaluated"),
                    Ok(a) => {
                        let v = subject.check(&a);
                        let status = match (v.passed, a.severity) {
                            (true, _) => Status::Pass,
                            (false, Severity::Warn) => Status::Warn,
                            (false, Severity::Fail) => Status::Fail,
                        };
                        let msg = if v.passed {
                            a.text.clone()
                        } else {
                            format!("{} (was {})", a.text, v.actual)
                        };
                        Finding::new(id, status, msg).with_values(a.expected_text(), v.actual)
                    }
                }
            })
            .collect()
    }
}

/// Fills captures into every string of a JSON body, so a value is escaped as JSON requires.
fn fill_json(v: &serde_json::Value, captures: &Scope) -> Result<serde_json::Value, StepError> {
    use serde_json::Value as J;
    Ok(match v {
        J::String(s) => J::String(
            interpolate(s, captures)
                .map_err(|e| StepError::Template(e.message))?
                .text,
        ),
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|i| fill_json(i, captures))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), fill_json(v, captures)?)))
                .collect::<Result<_, StepError>>()?,
        ),
        other => other.clone(),
    })
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "flow"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["step"];

/// `kind = "flow"`: steps that run in order, sharing captures and a cookie jar.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub steps: Vec<StepSpec>,
}

/// One `[[check.step]]`.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub name: Spanned<String>,
    pub request: RequestSpec,
    pub expect: Vec<Spanned<String>>,
    /// Variable name → capture query, e.g. `token = 'json $.access_token'`.
    pub capture: Vec<(String, Spanned<String>)>,
    pub timeout: Option<Duration>,
    pub follow_redirects: bool,
    /// Runs even after an earlier step failed, e.g. a logout or clean-up.
    pub always: bool,
}

/// A step's keys besides a request's.
const STEP_KEYS: &[&str] = &[
    "name",
    "expect",
    "capture",
    "timeout",
    "follow_redirects",
    "always",
];

/// Each capture query parses, or is an error pointing at its column.
fn check_captures(capture: &[(String, Spanned<String>)], diags: &mut Diagnostics) {
    for (var, q) in capture {
        if let Err(e) = crate::assert::parse_capture(&q.value) {
            let at = q.span.start + 1 + e.offset;
            diags.error(
                at..q.span.end.saturating_sub(1).max(at + 1),
                format!("invalid capture \"{var}\": {}", e.message),
            );
        }
    }
}

pub(crate) fn read_step(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<StepSpec> {
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
    check_captures(&capture, diags);
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

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<FlowSpec> {
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
        st.finish(&[REQUEST_KEYS, STEP_KEYS].concat(), diags);
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

/// The job of a `kind = "flow"` check, its strings interpolated.
pub(crate) fn build(f: &FlowSpec, b: &mut Build<'_>) -> Option<FlowProbe> {
    Some(FlowProbe {
        steps: steps(f, b)?,
        insecure: b.insecure,
        max_body: b.max_body,
    })
}

/// Renders each step with the variables known now. A capture of an earlier step stands in as
/// its own `{{ name }}` placeholder, to be filled when the flow runs.
fn steps(flow: &FlowSpec, b: &mut Build<'_>) -> Option<Vec<FlowStep>> {
    let mut scope = b.scope.clone();
    let diags = &mut *b.diags;
    for st in &flow.steps {
        for var in st.capture.iter().map(|(v, _)| v) {
            scope
                .later
                .entry(var.clone())
                .or_insert_with(|| st.name.value.clone());
        }
    }
    let mut steps = Vec::new();
    let before = diags.errors_so_far();
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
    (diags.errors_so_far() == before).then_some(steps)
}

/// Each step may have its own timeout; the flow gets their sum.
pub(crate) fn default_timeout(f: &FlowSpec, base: std::time::Duration) -> std::time::Duration {
    let steps: std::time::Duration = f.steps.iter().map(|s| s.timeout.unwrap_or(base)).sum();
    steps.max(base)
}
