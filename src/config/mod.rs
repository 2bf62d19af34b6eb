//! Configuration: reads a TOML file into checks, environments and secrets, reporting every problem at once.

mod agent;
use agent::{read_agent, read_alerts};
mod spec;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::check::KindSpec;
pub use crate::check::cors::CorsSpec;
pub use crate::check::exposure::ExposureSpec;
pub use crate::check::flow::{FlowSpec, StepSpec};
pub use crate::check::headers::HeadersSpec;
pub use crate::check::http::HttpSpec;
pub use crate::check::latency::LatencySpec;
pub use crate::check::page::PageSpec;
pub use crate::check::read::{BodySpec, RequestSpec};
pub use crate::check::redirect::RedirectSpec;
pub use crate::check::tls::TlsSpec;
pub use crate::doc::{ConfigError, Diagnostic, line_col};
pub use crate::doc::{Diagnostics, Node, SecretRef, SecretSource, Spanned, Table, Value};
pub use crate::units::parse_duration;
pub use crate::units::suggest;
pub use agent::{
    AgentSpec, AlertsSpec, Backlog, HistorySpec, QuietSpec, SecretOr, SinkKind, SinkSpec,
    check_rule, read_rule,
};
pub use spec::CheckSpec;

/// Settings every check inherits unless it overrides them.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// Where `ca_file` is written, for an unreadable file's error.
    pub ca_file_span: std::ops::Range<usize>,
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
            ca_file_span: 0..0,
            max_body: 10 << 20,
            concurrency: 16,
        }
    }
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
    /// The secrets sinks and `[agent]` refer to.
    pub secret_refs: Vec<SecretRef>,
    /// `[compare]`: what counts as a regression against a baseline.
    pub compare: crate::compare::Thresholds,
}

const TOP_KEYS: &[&str] = &[
    "agent", "defaults", "vars", "secrets", "env", "check", "alerts", "compare",
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
        let (config, diagnostics) = Config::parse_lenient(file, source)?;
        if diagnostics.is_empty() {
            Ok(config)
        } else {
            Err(config.error(diagnostics))
        }
    }

    /// Reads what can be read of a file with errors in it: the configuration without the parts
    /// in error, and the errors. Later passes (interpolation, secrets) run on it, so every
    /// error in a file is reported at once. Only a file that is not TOML at all is an `Err`.
    pub(crate) fn parse_lenient(
        file: &str,
        source: &str,
    ) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
        let fail = |diagnostics: Vec<Diagnostic>| ConfigError {
            file: file.to_string(),
            source: source.to_string(),
            diagnostics,
        };
        let blank = source
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if blank {
            return Err(ConfigError::plain(
                file,
                "the file is empty; add at least one [[check]]",
            ));
        }
        let root = Node::parse(source).map_err(|d| fail(vec![d]))?;
        let mut diags = Diagnostics::default();
        let mut config = Config {
            file: file.to_string(),
            source: source.to_string(),
            ..Config::default()
        };
        let mut top = Table::of(&root, "", &mut diags);
        if let Some(node) = top.get("compare") {
            config.compare = read_compare(node, &mut diags);
        }
        if let Some(node) = top.get("alerts") {
            config.alerts = read_alerts(node, &mut diags);
        }
        if let Some(node) = top.get("agent") {
            config.agent = read_agent(node, &mut diags);
        }
        if let Some(node) = top.get("defaults") {
            config.defaults = read_defaults(node, &mut diags);
        }
        if let Some(vars) = top.str_map("vars", &mut diags) {
            config.vars = vars;
        }
        if let Some(node) = top.get("secrets") {
            config.secrets = read_secrets(node, &mut diags);
        }
        if let Some(node) = top.get("env") {
            let mut envs = Table::of(node, "env", &mut diags);
            for e in envs.entries() {
                config.envs.push(read_env(&e.key, &e.node, &mut diags));
            }
        }
        match top.get("check").map(|n| &n.value) {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) = spec::read_check(item, i, &mut diags) {
                        config.checks.push(c);
                    }
                }
            }
            Some(_) => diags.error(0..0, "`check` must be an array of tables: write [[check]]"),
            None => {}
        }
        top.finish(TOP_KEYS, &mut diags);
        check_unique_names(&config.checks, &mut diags);
        config.secret_refs = std::mem::take(&mut diags.secret_refs);
        let mut diagnostics = diags.diagnostics;
        diagnostics.sort_by_key(|d| d.span.start);
        Ok((config, diagnostics))
    }

    /// Reads every secret sinks and `[agent]` refer to whose key starts with `under` (`""` for
    /// all, `"alerts."` for the sinks); one diagnostic per secret that cannot be read, at its
    /// position.
    pub(crate) fn check_secret_refs(
        &self,
        under: &str,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Diagnostic> {
        self.secret_refs
            .iter()
            .filter(|r| r.what.starts_with(under))
            .filter_map(|r| {
                r.source
                    .read(getenv)
                    .err()
                    .map(|e| Diagnostic::new(r.span.clone(), format!("{}: {e}", r.what)))
            })
            .collect()
    }

    /// Wraps diagnostics found after loading (interpolation, secrets) with this file's positions.
    pub fn error(&self, diagnostics: Vec<Diagnostic>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            source: self.source.clone(),
            diagnostics,
        }
    }

    /// A problem that does not stop a run, as `file:line:col: warning: …` with a caret.
    pub fn warning(&self, d: Diagnostic) -> String {
        let d = Diagnostic::new(d.span, format!("warning: {}", d.message));
        self.error(Vec::new()).render_one(&d)
    }
}

/// `[compare]`: fractions (0.2 is 20%) and the significance level.
fn read_compare(node: &Node, diags: &mut Diagnostics) -> crate::compare::Thresholds {
    let mut c = crate::compare::Thresholds::default();
    let mut t = Table::of(node, "compare", diags);
    let keys = ["latency_fail", "latency_warn", "alpha", "size_change"];
    for key in keys {
        let Some(n) = t.get(key) else { continue };
        let v = match n.value {
            Value::Float(f) if f > 0.0 && f.is_finite() => f,
            Value::Int(i) if i > 0 => i as f64,
            _ => {
                diags.error(
                    n.span.clone(),
                    format!("compare.{key} must be a positive number, such as 0.2 for 20%"),
                );
                continue;
            }
        };
        match key {
            "latency_fail" => c.latency_fail = v,
            "latency_warn" => c.latency_warn = v,
            "alpha" => c.alpha = v,
            _ => c.size_change = v,
        }
    }
    t.finish(&keys, diags);
    c
}

fn read_defaults(node: &Node, diags: &mut Diagnostics) -> Defaults {
    let mut d = Defaults::default();
    let mut t = Table::of(node, "defaults", diags);
    if let Some(v) = t.duration("timeout", diags) {
        d.timeout = v;
    }
    if let Some(v) = t.str("ca_file", diags) {
        d.ca_file = Some(PathBuf::from(v.value));
        d.ca_file_span = v.span;
    }
    if let Some(v) = t.int("max_body", 1..(1 << 40), diags) {
        d.max_body = v as u64;
    }
    if let Some(v) = t.int("concurrency", 1..10_000, diags) {
        d.concurrency = v as usize;
    }
    t.finish(&["timeout", "ca_file", "max_body", "concurrency"], diags);
    d
}

/// `{ env = "VAR" }` or `{ file = "/path" }`.
/// A secret a sink or `[agent]` refers to: read like [`secret_source`], and remembered so
/// `validate` can read it.
pub(crate) fn secret_ref(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<SecretSource> {
    let source = secret_source(node, path, diags)?;
    diags.secret_refs.push(SecretRef {
        what: path.to_string(),
        source: source.clone(),
        span: node.span.clone(),
    });
    Some(source)
}

pub(crate) fn secret_source(
    node: &Node,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<SecretSource> {
    let mut s = Table::of(node, path, diags);
    let env = s.str("env", diags);
    let file = s.str("file", diags);
    s.finish(&["env", "file"], diags);
    match (env, file) {
        (Some(v), None) => Some(SecretSource::Env(v.value)),
        (None, Some(f)) => Some(SecretSource::File(PathBuf::from(f.value))),
        _ => {
            diags.error(
                node.span.clone(),
                format!("{path}: write either {{ env = \"VAR\" }} or {{ file = \"/path\" }}"),
            );
            None
        }
    }
}

fn read_secrets(node: &Node, diags: &mut Diagnostics) -> Vec<Secret> {
    let mut out = Vec::new();
    let mut t = Table::of(node, "secrets", diags);
    for e in t.entries() {
        let path = format!("secrets.{}", e.key);
        if let Some(source) = secret_source(&e.node, &path, diags) {
            out.push(Secret {
                name: e.key.clone(),
                source,
                span: e.node.span.clone(),
            });
        }
    }
    out
}

fn read_env(name: &str, node: &Node, diags: &mut Diagnostics) -> EnvSpec {
    let path = format!("env.{name}");
    let mut env = EnvSpec {
        name: name.to_string(),
        ..EnvSpec::default()
    };
    let mut t = Table::of(node, path, diags);
    for key in ENV_URL_KEYS {
        if let Some(v) = t.str(key, diags) {
            env.vars.push((key.to_string(), v));
        }
    }
    if let Some(vars) = t.str_map("vars", diags) {
        env.vars.extend(vars);
    }
    if let Some(map) = t.str_map("resolve", diags) {
        for (host_port, addr) in map {
            if !host_port.contains(':') {
                diags.error(
                    addr.span.clone(),
                    format!("resolve key \"{host_port}\" must be HOST:PORT"),
                );
            } else if addr.value.parse::<std::net::IpAddr>().is_err() {
                diags.error(
                    addr.span.clone(),
                    format!("resolve address \"{}\" is not an IP address", addr.value),
                );
            }
            env.resolve.push((host_port, addr));
        }
    }
    if let Some(labels) = t.str_map("labels", diags) {
        env.labels = labels.into_iter().map(|(k, v)| (k, v.value)).collect();
    }
    t.finish(
        &[
            "base_url", "web_url", "http_url", "vars", "resolve", "labels",
        ],
        diags,
    );
    env
}

fn check_unique_names(checks: &[CheckSpec], diags: &mut Diagnostics) {
    for (i, c) in checks.iter().enumerate() {
        if checks[..i].iter().any(|p| p.name.value == c.name.value) {
            diags.error(
                c.name.span.clone(),
                format!("duplicate check name \"{}\"", c.name.value),
            );
        }
    }
}
