//! A plan: one environment's checks, interpolated, with secrets read and probes built, ready to run.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use crate::assert::{Assertion, Context, Redactor, Scope, interpolate};
use crate::config::RequestSpec;
use crate::config::{
    BodySpec, CheckSpec, Config, Diagnostic, KindSpec, Node, SecretSource, Spanned, Value, suggest,
};
use crate::net::{EngineOptions, Overrides, Request};
use crate::probe::{
    CorsProbe, ExposureProbe, HeadersProbe, HttpProbe, PageProbe, Probe, RedirectProbe, Status,
    TlsProbe,
};

/// One check of the plan.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub timeout: Duration,
    pub probe: Probe,
}

impl Job {
    pub fn kind(&self) -> &'static str {
        self.probe.kind()
    }
}

/// Everything a run needs, with no reference back to the file.
#[derive(Debug, Clone)]
pub struct Plan {
    pub environment: String,
    /// The base URL shown in reports, when there is one.
    pub target: String,
    pub jobs: Vec<Job>,
    pub redactor: Redactor,
    pub engine: EngineOptions,
    pub overrides: Overrides,
    pub concurrency: usize,
}

/// Reads an environment variable by name.
pub type GetEnv<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What the command line adds to a config when a plan is built.
#[derive(Default)]
pub struct PlanOptions<'a> {
    pub env: Option<String>,
    pub only: Vec<String>,
    pub resolve: Vec<String>,
    pub ca_file: Option<PathBuf>,
    /// Variables set from the command line (`check URL` sets `base_url` and friends).
    pub vars: Vec<(String, String)>,
    /// Reads an environment variable; passed in so only `main.rs` touches the process environment.
    pub getenv: Option<GetEnv<'a>>,
}

/// Why no plan could be built. Both mean exit code 2: nothing was probed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Usage(String),
}

/// Builds the plan for one environment of `config`.
pub fn build(config: &Config, opts: &PlanOptions<'_>) -> Result<Plan, PlanError> {
    let env = pick_env(config, opts.env.as_deref())?;
    let mut diags = Vec::new();
    let mut scope = Scope::default();
    let mut redactor = Redactor::default();
    for (k, v) in &config.vars {
        scope.set(k, v.value.clone());
    }
    read_secrets(config, opts, &mut scope, &mut redactor, &mut diags);
    let mut overrides = Overrides::default();
    let mut target = String::new();
    if let Some(env) = env {
        // Environment values may refer to [vars] and secrets, but not to each other.
        let base = scope.clone();
        for (k, v) in &env.vars {
            let text = render(&base, v, &mut diags).text;
            if k == "base_url" {
                target = text.clone();
            }
            scope.set(k, text);
        }
        for (host_port, addr) in &env.resolve {
            let flag = format!("{host_port}:{}", addr.value);
            if let Err(e) = overrides.parse_flag(&flag) {
                diags.push(Diagnostic::new(addr.span.clone(), e));
            }
        }
    }
    for (k, v) in &opts.vars {
        if k == "base_url" {
            target = v.clone();
        }
        scope.set(k, v.clone());
    }
    for flag in &opts.resolve {
        overrides.parse_flag(flag).map_err(PlanError::Usage)?;
    }
    let selected = select(&config.checks, &opts.only)?;
    let jobs: Vec<Job> = selected
        .into_iter()
        .filter_map(|c| build_job(config, c, &scope, &mut diags))
        .collect();
    if !diags.is_empty() {
        diags.sort_by_key(|d| d.span.start);
        return Err(config.error(diags).into());
    }
    Ok(Plan {
        environment: env.map_or_else(|| "default".to_string(), |e| e.name.clone()),
        target,
        jobs,
        redactor,
        engine: EngineOptions {
            ca_file: opts
                .ca_file
                .clone()
                .or_else(|| config.defaults.ca_file.clone()),
            nameservers: Vec::new(),
        },
        overrides,
        concurrency: config.defaults.concurrency,
    })
}

fn pick_env<'c>(
    config: &'c Config,
    wanted: Option<&str>,
) -> Result<Option<&'c crate::config::EnvSpec>, PlanError> {
    let names: Vec<&str> = config.envs.iter().map(|e| e.name.as_str()).collect();
    match wanted {
        Some(w) => config
            .envs
            .iter()
            .find(|e| e.name == w)
            .map(Some)
            .ok_or_else(|| {
                let hint = suggest(w, names.iter().copied())
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default();
                let known = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                PlanError::Usage(format!(
                    "unknown environment \"{w}\"{hint} (configured: {known})"
                ))
            }),
        None if config.envs.len() > 1 => Err(PlanError::Usage(format!(
            "{} environments are configured ({}): choose one with --env",
            names.len(),
            names.join(", ")
        ))),
        None => Ok(config.envs.first()),
    }
}

fn select<'c>(checks: &'c [CheckSpec], only: &[String]) -> Result<Vec<&'c CheckSpec>, PlanError> {
    for name in only {
        if !checks.iter().any(|c| &c.name.value == name) {
            let hint = suggest(name, checks.iter().map(|c| c.name.value.as_str()))
                .map(|s| format!(", did you mean \"{s}\"?"))
                .unwrap_or_default();
            return Err(PlanError::Usage(format!(
                "--only \"{name}\": no such check{hint}"
            )));
        }
    }
    Ok(checks
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name.value))
        .collect())
}

fn read_secrets(
    config: &Config,
    opts: &PlanOptions<'_>,
    scope: &mut Scope,
    redactor: &mut Redactor,
    diags: &mut Vec<Diagnostic>,
) {
    for s in &config.secrets {
        let value = match &s.source {
            SecretSource::Env(var) => match opts.getenv.and_then(|f| f(var)) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!(
                    "secret \"{}\": environment variable {var} is not set",
                    s.name
                )),
            },
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| {
                    format!(
                        "secret \"{}\": cannot read \"{}\": {e}",
                        s.name,
                        path.display()
                    )
                }),
        };
        match value {
            Ok(v) => {
                redactor.add(&v);
                scope.set_secret(&format!("secrets.{}", s.name), v);
            }
            Err(msg) => {
                diags.push(Diagnostic::new(s.span.clone(), msg));
                // A stand-in keeps templates that use the secret from reporting it a second time.
                scope.set_secret(&format!("secrets.{}", s.name), "");
            }
        }
    }
}

/// Renders a template, recording a positioned diagnostic on failure.
fn try_render(
    scope: &Scope,
    s: &Spanned<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<crate::assert::Rendered> {
    interpolate(&s.value, scope)
        .map_err(|e| {
            let at = s.span.start + 1 + e.offset;
            diags.push(Diagnostic::new(at..at + e.len, e.message));
        })
        .ok()
}

/// Like [`try_render`], for values whose later use cannot fail: the raw text stands in.
fn render(
    scope: &Scope,
    s: &Spanned<String>,
    diags: &mut Vec<Diagnostic>,
) -> crate::assert::Rendered {
    try_render(scope, s, diags).unwrap_or_else(|| crate::assert::Rendered {
        text: s.value.clone(),
        uses_secret: false,
    })
}

/// Renders and parses a URL, with the check's context in the message.
fn render_url(scope: &Scope, s: &Spanned<String>, diags: &mut Vec<Diagnostic>) -> Option<Url> {
    let text = try_render(scope, s, diags)?.text;
    match Url::parse(&text) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
        Ok(u) => {
            diags.push(Diagnostic::new(
                s.span.clone(),
                format!(
                    "URL \"{text}\" must be http:// or https://, not {}://",
                    u.scheme()
                ),
            ));
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
    diags: &mut Vec<Diagnostic>,
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

fn build_job(
    config: &Config,
    spec: &CheckSpec,
    scope: &Scope,
    diags: &mut Vec<Diagnostic>,
) -> Option<Job> {
    let timeout = spec.timeout.unwrap_or(config.defaults.timeout);
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
        timeout,
        probe,
    })
}

/// Renders a request: URL, method, headers and body.
fn render_request(
    scope: &Scope,
    spec: &RequestSpec,
    base: &dyn Fn(Url) -> Request,
    diags: &mut Vec<Diagnostic>,
) -> Option<Request> {
    let url = render_url(scope, &spec.url, diags);
    let mut headers: Vec<(String, String)> = spec
        .headers
        .iter()
        .map(|(k, v)| {
            let value = render(scope, v, diags).text;
            check_header(k, &value, v, diags);
            (k.clone(), value)
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
        ..base(url?)
    })
}

/// Allowed CORS origins: each entry may hold several, separated by spaces; each must be a bare origin.
fn render_origins(
    scope: &Scope,
    entries: &[Spanned<String>],
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
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
fn check_header(name: &str, value: &str, at: &Spanned<String>, diags: &mut Vec<Diagnostic>) {
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
    diags: &mut Vec<Diagnostic>,
) -> Bytes {
    let mut set_type = |t: &str| {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), t.into()));
        }
    };
    match body {
        BodySpec::Raw(s) => Bytes::from(render(scope, s, diags).text),
        BodySpec::Json(node) => {
            set_type("application/json");
            Bytes::from(to_json(scope, node, diags).to_string())
        }
        BodySpec::Form(fields) => {
            set_type("application/x-www-form-urlencoded");
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                ser.append_pair(k, &render(scope, v, diags).text);
            }
            Bytes::from(ser.finish())
        }
    }
}

/// A TOML value as JSON, with every string interpolated.
fn to_json(scope: &Scope, node: &Node, diags: &mut Vec<Diagnostic>) -> serde_json::Value {
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
