//! Configuration: reads a TOML file into checks, environments and secrets, reporting every problem at once.

mod error;
mod node;
mod spec;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Diagnostic, line_col, suggest};
pub use node::{Node, Sink, Spanned, Table, Value, parse_duration};
pub use spec::{
    BodySpec, CheckSpec, CorsSpec, ExposureSpec, FlowSpec, HeadersSpec, HttpSpec, KindSpec,
    LatencySpec, PageSpec, RedirectSpec, RequestSpec, StepSpec, TlsSpec,
};

/// Settings every check inherits unless it overrides them.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// Bodies are capped so a hostile target cannot exhaust memory.
    pub max_body: u64,
    /// How many checks may run at once.
    pub concurrency: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: Duration::from_secs(10),
            ca_file: None,
            max_body: 10 << 20,
            concurrency: 16,
        }
    }
}

/// Where a secret's value comes from. The value itself is only read when a plan is built.
#[derive(Debug, Clone)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// A named secret with the span of its definition, for "variable not set" errors.
#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub source: SecretSource,
    pub span: std::ops::Range<usize>,
}

/// One `[env.NAME]` section: the URLs and overrides of a deployment.
#[derive(Debug, Clone, Default)]
pub struct EnvSpec {
    pub name: String,
    /// `base_url`, `web_url`, `http_url` and any `vars`: all usable as `{{ name }}`.
    pub vars: Vec<(String, Spanned<String>)>,
    /// `host:port` to address, like curl's `--resolve`.
    pub resolve: Vec<(String, Spanned<String>)>,
    pub labels: Vec<(String, String)>,
}

/// A whole configuration file, validated for shape but not yet interpolated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file name shown in errors.
    pub file: String,
    /// The source text, kept so later errors (interpolation, secrets) can point into it.
    pub source: String,
    pub defaults: Defaults,
    pub vars: Vec<(String, Spanned<String>)>,
    pub secrets: Vec<Secret>,
    pub envs: Vec<EnvSpec>,
    pub checks: Vec<CheckSpec>,
    pub agent: AgentSpec,
    pub alerts: AlertsSpec,
}

/// `[alerts]`: the rule, the sinks, and the quiet windows.
#[derive(Debug, Clone, Default)]
pub struct AlertsSpec {
    pub rule: crate::alert::Rule,
    pub sinks: Vec<SinkSpec>,
    pub quiet: Vec<QuietSpec>,
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Webhook,
    Slack,
    Alertmanager,
    Email,
}

/// One `[[alerts.sink]]`.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub name: String,
    pub kind: SinkKind,
    /// The URL, which may itself be a secret (a Slack webhook is).
    pub url: SecretOr,
    pub hmac_secret: Option<SecretSource>,
    pub headers: Vec<(String, String)>,
    pub min_severity: crate::alert::Severity,
    pub timeout: Duration,
    /// Email only: login, sender and recipients.
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// A plain value, or a secret read at start-up.
#[derive(Debug, Clone)]
pub enum SecretOr {
    Plain(String),
    Secret(SecretSource),
}

/// `[[alerts.quiet]]`: notifications are held back (not the checks) between `start` and `end`.
#[derive(Debug, Clone)]
pub struct QuietSpec {
    pub start: i64,
    pub end: i64,
    /// Only these checks; all when empty.
    pub checks: Vec<String>,
}

/// `[agent]`: how `shipwatch agent` runs.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub listen: std::net::SocketAddr,
    /// Default time between two runs of a check.
    pub interval: Duration,
    pub state_dir: PathBuf,
    /// Bearer token for `POST /api/v1/run`; without it the endpoint is off.
    pub api_token: Option<SecretSource>,
    /// Protects `/metrics` with a bearer token...
    pub metrics_token: Option<SecretSource>,
    /// ...or with basic auth.
    pub metrics_user: Option<(String, SecretSource)>,
    /// Serve HTTPS with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Checks running at once.
    pub concurrency: usize,
    /// Where the status page is reachable, for links in alerts.
    pub public_url: Option<String>,
}

impl Default for AgentSpec {
    fn default() -> Self {
        AgentSpec {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9469)),
            interval: Duration::from_secs(60),
            state_dir: PathBuf::from("./shipwatch-state"),
            api_token: None,
            metrics_token: None,
            metrics_user: None,
            tls: None,
            concurrency: 32,
            public_url: None,
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "agent", "defaults", "vars", "secrets", "env", "check", "alerts",
];
const ENV_URL_KEYS: &[&str] = &["base_url", "web_url", "http_url"];

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::plain(&file, format!("cannot read config: {e}")))?;
        Config::parse(&file, &source)
    }

    /// Validates configuration text; `file` is the name used in error positions.
    pub fn parse(file: &str, source: &str) -> Result<Config, ConfigError> {
        let fail = |diagnostics: Vec<Diagnostic>| ConfigError {
            file: file.to_string(),
            source: source.to_string(),
            diagnostics,
        };
        let root = Node::parse(source).map_err(|d| fail(vec![d]))?;
        let mut sink = Sink::default();
        let mut config = Config {
            file: file.to_string(),
            source: source.to_string(),
            ..Config::default()
        };
        let mut top = Table::of(&root, "", &mut sink);
        if let Some(node) = top.get("alerts") {
            config.alerts = read_alerts(node, &mut sink);
        }
        if let Some(node) = top.get("agent") {
            config.agent = read_agent(node, &mut sink);
        }
        if let Some(node) = top.get("defaults") {
            config.defaults = read_defaults(node, &mut sink);
        }
        if let Some(vars) = top.str_map("vars", &mut sink) {
            config.vars = vars;
        }
        if let Some(node) = top.get("secrets") {
            config.secrets = read_secrets(node, &mut sink);
        }
        if let Some(node) = top.get("env") {
            let mut envs = Table::of(node, "env", &mut sink);
            for e in envs.entries() {
                config.envs.push(read_env(&e.key, &e.node, &mut sink));
            }
        }
        match top.get("check").map(|n| &n.value) {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) = spec::read_check(item, i, &mut sink) {
                        config.checks.push(c);
                    }
                }
            }
            Some(_) => sink.error(0..0, "`check` must be an array of tables: write [[check]]"),
            None => {}
        }
        top.finish(TOP_KEYS, &mut sink);
        check_unique_names(&config.checks, &mut sink);
        if sink.diagnostics.is_empty() {
            Ok(config)
        } else {
            let mut diagnostics = sink.diagnostics;
            diagnostics.sort_by_key(|d| d.span.start);
            Err(fail(diagnostics))
        }
    }

    /// Wraps diagnostics found after loading (interpolation, secrets) with this file's positions.
    pub fn error(&self, diagnostics: Vec<Diagnostic>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            source: self.source.clone(),
            diagnostics,
        }
    }
}

fn read_defaults(node: &Node, sink: &mut Sink) -> Defaults {
    let mut d = Defaults::default();
    let mut t = Table::of(node, "defaults", sink);
    if let Some(v) = t.duration("timeout", sink) {
        d.timeout = v;
    }
    if let Some(v) = t.str("ca_file", sink) {
        d.ca_file = Some(PathBuf::from(v.value));
    }
    if let Some(v) = t.int("max_body", 1..(1 << 40), sink) {
        d.max_body = v as u64;
    }
    if let Some(v) = t.int("concurrency", 1..10_000, sink) {
        d.concurrency = v as usize;
    }
    t.finish(&["timeout", "ca_file", "max_body", "concurrency"], sink);
    d
}

fn read_agent(node: &Node, sink: &mut Sink) -> AgentSpec {
    let mut a = AgentSpec::default();
    let mut t = Table::of(node, "agent", sink);
    if let Some(l) = t.str("listen", sink) {
        match l.value.parse() {
            Ok(addr) => a.listen = addr,
            Err(_) => sink.error(
                l.span,
                format!(
                    "agent.listen: \"{}\" is not an address such as 127.0.0.1:9469",
                    l.value
                ),
            ),
        }
    }
    if let Some(d) = t.duration("interval", sink) {
        a.interval = d.max(Duration::from_secs(1));
    }
    if let Some(s) = t.str("state_dir", sink) {
        a.state_dir = PathBuf::from(s.value);
    }
    a.api_token = t
        .get("api_token")
        .and_then(|n| secret_source(n, "agent.api_token", sink));
    a.metrics_token = t
        .get("metrics_token")
        .and_then(|n| secret_source(n, "agent.metrics_token", sink));
    if let Some(n) = t.get("metrics_basic_auth") {
        let mut b = Table::of(n, "agent.metrics_basic_auth", sink);
        let user = b.str("username", sink);
        let pass = b
            .get("password")
            .and_then(|p| secret_source(p, "agent.metrics_basic_auth.password", sink));
        b.finish(&["username", "password"], sink);
        match (user, pass) {
            (Some(u), Some(p)) => a.metrics_user = Some((u.value, p)),
            _ => sink.error(
                n.span.clone(),
                "agent.metrics_basic_auth needs `username` and `password`",
            ),
        }
    }
    let cert = t.str("tls_cert", sink);
    let key = t.str("tls_key", sink);
    match (cert, key) {
        (Some(c), Some(k)) => a.tls = Some((PathBuf::from(c.value), PathBuf::from(k.value))),
        (None, None) => {}
        _ => sink.error(
            t.span(),
            "agent: set both `tls_cert` and `tls_key`, or neither",
        ),
    }
    if let Some(c) = t.int("concurrency", 1..10_001, sink) {
        a.concurrency = c as usize;
    }
    a.public_url = t.str("public_url", sink).map(|s| s.value);
    t.finish(
        &[
            "listen",
            "interval",
            "state_dir",
            "api_token",
            "metrics_token",
            "metrics_basic_auth",
            "tls_cert",
            "tls_key",
            "concurrency",
            "public_url",
        ],
        sink,
    );
    a
}

fn read_alerts(node: &Node, sink: &mut Sink) -> AlertsSpec {
    let mut a = AlertsSpec::default();
    let mut t = Table::of(node, "alerts", sink);
    read_rule(&mut t, &mut a.rule, sink);
    if let Some(Value::Array(items)) = t.get("sink").map(|n| &n.value) {
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = read_sink(item, i, sink) {
                if a.sinks.iter().any(|o| o.name == s.name) {
                    sink.error(
                        item.span.clone(),
                        format!("duplicate sink name \"{}\"; give each a `name`", s.name),
                    );
                }
                a.sinks.push(s);
            }
        }
    }
    if let Some(Value::Array(items)) = t.get("quiet").map(|n| &n.value) {
        for (i, item) in items.iter().enumerate() {
            let mut q = Table::of(item, format!("alerts.quiet[{i}]"), sink);
            let time = |q: &mut Table<'_>, key: &str, sink: &mut Sink| {
                let v = q.str(key, sink)?;
                match time::OffsetDateTime::parse(
                    &v.value,
                    &time::format_description::well_known::Rfc3339,
                ) {
                    Ok(t) => Some(t.unix_timestamp()),
                    Err(_) => {
                        sink.error(v.span, format!("alerts.quiet: \"{}\" is not an RFC 3339 time such as 2026-11-23T02:00:00Z", v.value));
                        None
                    }
                }
            };
            let (start, end) = (time(&mut q, "start", sink), time(&mut q, "end", sink));
            let checks = q
                .str_list("checks", sink)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.value)
                .collect();
            q.finish(&["start", "end", "checks"], sink);
            if let (Some(start), Some(end)) = (start, end) {
                a.quiet.push(QuietSpec { start, end, checks });
            }
        }
    }
    t.finish(
        &[
            "failures",
            "successes",
            "repeat",
            "send_resolved",
            "window",
            "sink",
            "quiet",
        ],
        sink,
    );
    a
}

/// The rule keys, shared by `[alerts]` and a check's `alert = { ... }` override.
pub fn read_rule(t: &mut Table<'_>, rule: &mut crate::alert::Rule, sink: &mut Sink) {
    if let Some(n) = t.int("failures", 1..1001, sink) {
        rule.failures = n as u32;
    }
    if let Some(n) = t.int("successes", 1..1001, sink) {
        rule.successes = n as u32;
    }
    if let Some(d) = t.duration("repeat", sink) {
        rule.repeat_s = d.as_secs();
    }
    if let Some(b) = t.bool("send_resolved", sink) {
        rule.send_resolved = b;
    }
    if let Some(node) = t.get("window") {
        let mut w = Table::of(node, format!("{}.window", t.path()), sink);
        let failures = w.int("failures", 1..1001, sink);
        let of = w.int("of", 1..1001, sink);
        w.finish(&["failures", "of"], sink);
        match (failures, of) {
            (Some(f), Some(n)) if f <= n => {
                rule.failures = f as u32;
                rule.window = Some(n as u32);
            }
            _ => sink.error(
                node.span.clone(),
                "window needs `failures` and `of`, with failures ≤ of",
            ),
        }
    }
}

fn read_sink(node: &Node, i: usize, sink: &mut Sink) -> Option<SinkSpec> {
    let mut t = Table::of(node, format!("alerts.sink[{i}]"), sink);
    let kind = t.str("kind", sink);
    let kind = match kind.as_ref().map(|k| k.value.as_str()) {
        Some("webhook") => Some(SinkKind::Webhook),
        Some("slack") => Some(SinkKind::Slack),
        Some("alertmanager") => Some(SinkKind::Alertmanager),
        Some("email") => Some(SinkKind::Email),
        Some(other) => {
            let k = kind.clone()?;
            let hint = suggest(other, ["webhook", "slack", "alertmanager", "email"])
                .map(|s| format!(", did you mean \"{s}\"?"))
                .unwrap_or_default();
            sink.error(k.span, format!("unknown sink kind \"{other}\"{hint}"));
            None
        }
        None => {
            sink.error(
                node.span.clone(),
                format!("alerts.sink[{i}]: missing `kind`"),
            );
            None
        }
    };
    let url_key = match kind {
        Some(SinkKind::Slack) => "webhook_url",
        Some(SinkKind::Email) => "smtp_url",
        _ => "url",
    };
    let url = match t.get(url_key) {
        Some(Node {
            value: Value::Str(s),
            ..
        }) => Some(SecretOr::Plain(s.clone())),
        Some(n) => {
            secret_source(n, &format!("alerts.sink[{i}].{url_key}"), sink).map(SecretOr::Secret)
        }
        None => {
            sink.error(
                node.span.clone(),
                format!("alerts.sink[{i}]: missing `{url_key}`"),
            );
            None
        }
    };
    let hmac_secret = t
        .get("hmac_secret")
        .and_then(|n| secret_source(n, "hmac_secret", sink));
    let headers = t
        .str_map("headers", sink)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect();
    let min_severity = match t.str("min_severity", sink) {
        Some(s) if s.value == "critical" => crate::alert::Severity::Critical,
        Some(s) if s.value == "warning" => crate::alert::Severity::Warning,
        Some(s) => {
            sink.error(
                s.span,
                format!(
                    "min_severity \"{}\" must be \"warning\" or \"critical\"",
                    s.value
                ),
            );
            crate::alert::Severity::Warning
        }
        None => crate::alert::Severity::Warning,
    };
    let timeout = t
        .duration("timeout", sink)
        .unwrap_or(Duration::from_secs(10));
    let name = t.str("name", sink).map(|n| n.value);
    let username = t.str("username", sink).map(|n| n.value);
    let password = t
        .get("password")
        .and_then(|n| secret_source(n, "password", sink));
    let from = t.str("from", sink);
    let to: Vec<String> = t
        .str_list("to", sink)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.value)
        .collect();
    if kind == Some(SinkKind::Email) && (from.is_none() || to.is_empty()) {
        sink.error(
            node.span.clone(),
            format!("alerts.sink[{i}]: an email sink needs `from` and `to`"),
        );
    }
    t.finish(
        &[
            "kind",
            "name",
            "url",
            "webhook_url",
            "smtp_url",
            "hmac_secret",
            "headers",
            "min_severity",
            "timeout",
            "username",
            "password",
            "from",
            "to",
        ],
        sink,
    );
    let kind = kind?;
    let name = name.unwrap_or_else(|| format!("{kind:?}").to_ascii_lowercase());
    Some(SinkSpec {
        name,
        kind,
        url: url?,
        hmac_secret,
        headers,
        min_severity,
        timeout,
        username,
        password,
        from: from.map(|f| f.value),
        to,
    })
}

/// A check's own alert rule: `[alerts]`'s rule with the check's `alert = { ... }` keys on top.
pub fn check_rule(spec: &CheckSpec, base: &crate::alert::Rule) -> crate::alert::Rule {
    let mut rule = base.clone();
    if let Some(node) = &spec.alert {
        // The keys were validated when the file was read; a second read cannot fail.
        let mut sink = Sink::default();
        let mut t = Table::of(node, "alert", &mut sink);
        read_rule(&mut t, &mut rule, &mut sink);
    }
    rule
}

/// `{ env = "VAR" }` or `{ file = "/path" }`.
fn secret_source(node: &Node, path: &str, sink: &mut Sink) -> Option<SecretSource> {
    let mut s = Table::of(node, path, sink);
    let env = s.str("env", sink);
    let file = s.str("file", sink);
    s.finish(&["env", "file"], sink);
    match (env, file) {
        (Some(v), None) => Some(SecretSource::Env(v.value)),
        (None, Some(f)) => Some(SecretSource::File(PathBuf::from(f.value))),
        _ => {
            sink.error(
                node.span.clone(),
                format!("{path}: write either {{ env = \"VAR\" }} or {{ file = \"/path\" }}"),
            );
            None
        }
    }
}

impl SecretSource {
    /// Reads the secret's value; `getenv` is passed in so only `main.rs` reads the environment.
    pub fn read(&self, getenv: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        match self {
            SecretSource::Env(var) => getenv(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("environment variable {var} is not set")),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read \"{}\": {e}", path.display())),
        }
    }
}

fn read_secrets(node: &Node, sink: &mut Sink) -> Vec<Secret> {
    let mut out = Vec::new();
    let mut t = Table::of(node, "secrets", sink);
    for e in t.entries() {
        let path = format!("secrets.{}", e.key);
        let mut s = Table::of(&e.node, path.clone(), sink);
        let env = s.str("env", sink);
        let file = s.str("file", sink);
        let source = match (env, file) {
            (Some(v), None) => Some(SecretSource::Env(v.value)),
            (None, Some(f)) => Some(SecretSource::File(PathBuf::from(f.value))),
            _ => {
                sink.error(
                    e.node.span.clone(),
                    format!("{path}: write either {{ env = \"VAR\" }} or {{ file = \"/path\" }}"),
                );
                None
            }
        };
        s.finish(&["env", "file"], sink);
        if let Some(source) = source {
            out.push(Secret {
                name: e.key.clone(),
                source,
                span: e.node.span.clone(),
            });
        }
    }
    out
}

fn read_env(name: &str, node: &Node, sink: &mut Sink) -> EnvSpec {
    let path = format!("env.{name}");
    let mut env = EnvSpec {
        name: name.to_string(),
        ..EnvSpec::default()
    };
    let mut t = Table::of(node, path, sink);
    for key in ENV_URL_KEYS {
        if let Some(v) = t.str(key, sink) {
            env.vars.push((key.to_string(), v));
        }
    }
    if let Some(vars) = t.str_map("vars", sink) {
        env.vars.extend(vars);
    }
    if let Some(map) = t.str_map("resolve", sink) {
        for (host_port, addr) in map {
            if !host_port.contains(':') {
                sink.error(
                    addr.span.clone(),
                    format!("resolve key \"{host_port}\" must be HOST:PORT"),
                );
            } else if addr.value.parse::<std::net::IpAddr>().is_err() {
                sink.error(
                    addr.span.clone(),
                    format!("resolve address \"{}\" is not an IP address", addr.value),
                );
            }
            env.resolve.push((host_port, addr));
        }
    }
    if let Some(labels) = t.str_map("labels", sink) {
        env.labels = labels.into_iter().map(|(k, v)| (k, v.value)).collect();
    }
    t.finish(
        &[
            "base_url", "web_url", "http_url", "vars", "resolve", "labels",
        ],
        sink,
    );
    env
}

fn check_unique_names(checks: &[CheckSpec], sink: &mut Sink) {
    for (i, c) in checks.iter().enumerate() {
        if checks[..i].iter().any(|p| p.name.value == c.name.value) {
            sink.error(
                c.name.span.clone(),
                format!("duplicate check name \"{}\"", c.name.value),
            );
        }
    }
}
