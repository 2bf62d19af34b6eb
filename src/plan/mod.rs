//! A plan: one environment's checks, interpolated, with secrets read and probes built, ready to run.

use std::path::PathBuf;
use std::time::Duration;

use crate::assert::{Redactor, Scope};
use crate::check::Probe;
use crate::config::{CheckSpec, Config, ConfigError, Diagnostic, suggest};
use crate::net::{EngineOptions, Overrides};

/// One check of the plan.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// The agent's time between runs, when the check sets its own.
    pub interval: Option<Duration>,
    pub timeout: Duration,
    pub probe: Probe,
}

impl Job {
    pub fn kind(&self) -> &'static str {
        self.probe.kind().name()
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
    /// Show progress bars for long checks; the command line turns this on for a terminal.
    pub progress: bool,
    /// Configuration problems that do not stop a run, each as `file:line:col: warning: …`.
    pub warnings: Vec<String>,
    /// What counts as a regression against a baseline (`[compare]`).
    pub compare: crate::compare::Thresholds,
}

/// Reads an environment variable by name.
pub(crate) type GetEnv<'a> = &'a dyn Fn(&str) -> Option<String>;

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

/// A file that passed every check `validate` makes, with the warnings found on the way.
#[derive(Debug)]
pub struct Validated {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Everything `validate` checks, in one pass, so every error in a file is reported at once with
/// its position: the file's shape, interpolation and secrets in every environment, and every
/// secret sinks and `[agent]` refer to. The agent and `notify` start from this too, so a file
/// `validate` accepts is one they accept.
pub fn validate(path: &std::path::Path, getenv: GetEnv<'_>) -> Result<Validated, ConfigError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::plain(&file, format!("cannot read config: {e}")))?;
    validate_text(&file, &source, getenv)
}

/// [`validate`] for text already read; `file` names it in positions.
pub fn validate_text(
    file: &str,
    source: &str,
    getenv: GetEnv<'_>,
) -> Result<Validated, ConfigError> {
    let (config, mut errors) = Config::parse_lenient(file, source)?;
    let envs: Vec<Option<String>> = if config.envs.is_empty() {
        vec![None]
    } else {
        config.envs.iter().map(|e| Some(e.name.clone())).collect()
    };
    let mut warnings: Vec<String> = Vec::new();
    for env in envs {
        let opts = PlanOptions {
            env,
            getenv: Some(getenv),
            ..PlanOptions::default()
        };
        match build(&config, &opts) {
            Ok(plan) => {
                for w in plan.warnings {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
            }
            Err(PlanError::Config(e)) => errors.extend(e.diagnostics),
            Err(PlanError::Usage(u)) => errors.push(Diagnostic::new(0..0, u)),
        }
    }
    errors.extend(config.check_secret_refs("", getenv));
    // The same problem in several environments is one problem.
    errors.sort_by(|a, b| (a.span.start, &a.message).cmp(&(b.span.start, &b.message)));
    errors.dedup_by(|a, b| a.span == b.span && a.message == b.message);
    if errors.is_empty() {
        Ok(Validated { config, warnings })
    } else {
        Err(config.error(errors))
    }
}

/// Builds the plan for one environment of `config`.
pub fn build(config: &Config, opts: &PlanOptions<'_>) -> Result<Plan, PlanError> {
    let env = pick_env(config, opts.env.as_deref())?;
    let mut diags = Diags::default();
    let mut scope = Scope::default();
    let mut redactor = Redactor::default();
    for (k, v) in &config.vars {
        scope.set(k, v.value.clone());
    }
    read_secrets(config, opts, &mut scope, &mut redactor, &mut diags);
    if let (Some(path), None) = (&config.defaults.ca_file, &opts.ca_file)
        && let Err(e) = crate::net::check_ca_file(path)
    {
        diags.push(Diagnostic::new(
            config.defaults.ca_file_span.clone(),
            e.to_string(),
        ));
    }
    let mut overrides = Overrides::default();
    let mut target = String::new();
    if let Some(env) = env {
        target = read_env(env, &mut scope, &mut overrides, &mut diags);
    }
    for (k, v) in &opts.vars {
        if k == "base_url" {
            target = v.clone();
        }
        scope.set(k, v.clone());
    }
    for flag in &opts.resolve {
        overrides
            .parse_flag(flag)
            .map_err(|e| PlanError::Usage(e.to_string()))?;
    }
    let selected = select(&config.checks, &opts.only)?;
    let jobs: Vec<Job> = selected
        .into_iter()
        .filter_map(|c| build_job(config, c, &scope, &mut diags))
        .collect();
    if !diags.errors.is_empty() {
        diags.errors.sort_by_key(|d| d.span.start);
        return Err(config.error(diags.errors).into());
    }
    diags.learnt.iter().for_each(|v| redactor.add(v));
    // The target line of every report: a secret in base_url (an API key in the query) is hidden.
    let target = redactor.redact(&target).into_owned();
    diags.warnings.sort_by_key(|d| d.span.start);
    let warnings = diags
        .warnings
        .into_iter()
        .map(|d| config.warning(d))
        .collect();
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
        progress: false,
        warnings,
        compare: config.compare,
    })
}

/// An environment's variables (which may use `[vars]` and secrets, not each other) and its
/// `resolve` overrides. Returns its `base_url`, the report's target.
fn read_env(
    env: &crate::config::EnvSpec,
    scope: &mut Scope,
    overrides: &mut Overrides,
    diags: &mut Diags,
) -> String {
    let base = scope.clone();
    let mut target = String::new();
    for (k, v) in &env.vars {
        let text = render(&base, v, diags).text;
        if k == "base_url" {
            target = text.clone();
        }
        scope.set(k, text);
    }
    for (host_port, addr) in &env.resolve {
        let flag = format!("{host_port}:{}", addr.value);
        if let Err(e) = overrides.parse_flag(&flag) {
            diags.push(Diagnostic::new(addr.span.clone(), e.to_string()));
        }
    }
    target
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
    diags: &mut Diags,
) {
    for s in &config.secrets {
        let getenv = |name: &str| opts.getenv.and_then(|f| f(name));
        let value = s
            .source
            .read(&getenv)
            .map_err(|why| format!("secret \"{}\": {why}", s.name));
        match value {
            Ok(v) => {
                if v.len() < crate::assert::MIN_SECRET_LEN {
                    diags.warnings.push(Diagnostic::new(
                        s.span.clone(),
                        format!(
                            "secret \"{}\" is {} long, shorter than the {} needed to hide it safely: it may appear in reports",
                            s.name,
                            crate::units::count(v.chars().count() as u64, "character"),
                            crate::assert::MIN_SECRET_LEN
                        ),
                    ));
                }
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

mod jobs;

pub use crate::check::build::split_host_port;
use crate::check::build::{Diags, render};
use jobs::build_job;
