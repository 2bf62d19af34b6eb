//! The command line: `check`, `validate` and `init`. `main.rs` parses argv and maps the result to an exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::checklist::{self, Tuning};
use crate::config::{Config, parse_duration};
use crate::net::Engine;
use crate::plan::{self, PlanError, PlanOptions};
use crate::report::{Format, Report};
use crate::runner;

mod agent;
mod canary;
mod notify;
mod remote;
use agent::{agent, healthcheck};
use notify::{notify_test, retry_dead_letters, sign_off};
use remote::remote;

/// Exit code: every check passed (warnings allowed unless --strict).
pub(crate) const EXIT_PASS: i32 = 0;
/// Exit code: a check failed or could not run.
pub(crate) const EXIT_FAIL: i32 = 1;
/// Exit code: usage or configuration error; nothing was probed.
pub const EXIT_USAGE: i32 = 2;

const DEFAULT_CONFIG: &str = "shipwatch.toml";

#[derive(Debug, Parser)]
#[command(
    name = "shipwatch",
    version,
    about = "Post-deploy synthetic monitoring: the deployment checklist as code"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the checks once and print a sign-off report (exit 0 pass, 1 fail, 2 usage error).
    Check(Box<CheckArgs>),
    /// Run every check against a stable and a canary stack at once and report what is worse on
    /// the canary (exit 0 no worse, 1 worse, 2 usage error).
    Compare(Box<CompareArgs>),
    /// Check a config file for errors without probing anything.
    Validate {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print the checks shard I of N runs, one per line (I/N or auto, as for `agent`).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Run continuously: scheduler, /metrics, status page and API, reload on SIGHUP or file change.
    Agent {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Run only shard I of N (rendezvous hashing of check and environment), e.g. 0/3; `auto`
        /// takes I from the StatefulSet pod name and N from SHIPWATCH_SHARDS.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Where this agent probes from, as the `location` label of every series (overrides
        /// `[agent].location`).
        #[arg(long)]
        location: Option<String>,
    },
    /// Send a test message to each configured alert sink, or re-send the notifications receivers
    /// refused (the dead-letter folder), and report what happened.
    Notify {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Send a test message.
        #[arg(long, conflicts_with = "retry_dead")]
        test: bool,
        /// Re-send every notification in `state_dir`'s dead-letter folder; each one accepted
        /// leaves the folder.
        #[arg(long)]
        retry_dead: bool,
        /// Only this sink.
        #[arg(long, value_name = "NAME")]
        sink: Option<String>,
    },
    /// Exit 0 when the agent at URL answers /healthz (for container health checks without curl).
    Healthcheck {
        #[arg(default_value = "http://127.0.0.1:9469/healthz")]
        url: String,
    },
    /// Write a commented starter shipwatch.toml.
    Init {
        /// Base URL of the site to watch.
        url: Option<String>,
        /// Where to write it.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// `shipwatch compare`: the check options, and the two stacks.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The stack to compare with: an environment of the config, or an address (IP[:port]) to
    /// resolve the target's host to.
    #[arg(long, value_name = "ENV|ADDR")]
    pub stable: String,
    /// The stack under test, in the same forms.
    #[arg(long, value_name = "ENV|ADDR")]
    pub canary: String,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Args, Default, Clone)]
pub struct CheckArgs {
    /// Base URL: with no config file, runs the built-in standard checklist against it.
    pub url: Option<String>,
    /// Config file (default: shipwatch.toml when no URL is given).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Environment from the config to check.
    #[arg(long)]
    pub env: Option<String>,
    /// Only run this check (repeatable).
    #[arg(long)]
    pub only: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Option<Format>,
    /// Write the report here; a text summary still goes to stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Address HOST:PORT at ADDR, keeping the name for SNI and Host (repeatable), like curl.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Extra trusted roots (PEM), added to Mozilla's bundle.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Re-run failing checks until they pass or this much time is over (e.g. 5m).
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<String>,
    /// With --wait: time between two attempts.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub wait_every: String,
    /// Treat warnings as failures for the exit code.
    #[arg(long)]
    pub strict: bool,
    /// Checklist: path of the health endpoint (default /health).
    #[arg(long)]
    pub health_path: Option<String>,
    /// Checklist: an origin allowed by CORS (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// Checklist: where plain HTTP listens, when it is not port 80.
    #[arg(long, value_name = "URL")]
    pub http_url: Option<String>,
    /// After the run, send a sign-off summary to the config's alert sinks.
    #[arg(long)]
    pub notify: bool,
    /// Compare with an earlier JSON report of the same checks (the last deploy's): what got
    /// worse becomes `regress.*` findings.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
    /// With --baseline or compare: p95 growth that fails, as a fraction (0.2 is +20%).
    #[arg(long, value_name = "FRACTION")]
    pub latency_fail: Option<f64>,
    /// With --baseline or compare: p95 growth that warns, as a fraction.
    #[arg(long, value_name = "FRACTION")]
    pub latency_warn: Option<f64>,
    /// With --baseline or compare: the p-value under which a latency shift is significant.
    #[arg(long, value_name = "P")]
    pub alpha: Option<f64>,
    /// With --baseline or compare: the relative change of a response's size that warns.
    #[arg(long, value_name = "FRACTION")]
    pub size_change: Option<f64>,
    /// Ask a running agent to run its checks now (POST URL/api/v1/run) and report the result.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// With --remote: the environment variable holding the agent's API token.
    #[arg(long, value_name = "VAR", default_value = "SHIPWATCH_API_TOKEN")]
    pub token_env: String,
}

/// What the library needs from the process: its environment, its output streams, and whether stdout is a terminal.
pub struct Io<'a> {
    pub getenv: crate::agent::SharedEnv,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub color: bool,
    /// stderr is a terminal, so progress bars may be drawn there.
    pub progress: bool,
}

/// Runs a parsed command line and returns the exit code.
pub async fn run(cli: Cli, io: &mut Io<'_>) -> i32 {
    match cli.command {
        Command::Check(args) => check(*args, io).await,
        Command::Compare(c) => {
            let c = *c;
            canary::compare(c.check, &c.stable, &c.canary, io).await
        }
        Command::Validate { config, shard } => match shard {
            None => validate(&config, io),
            Some(s) => agent::shard_checks(config, &s, io),
        },
        Command::Init { url, output, force } => init(url, &output, force, io),
        Command::Agent {
            config,
            shard,
            location,
        } => agent(config, shard.as_deref(), location, io).await,
        Command::Healthcheck { url } => healthcheck(&url, io).await,
        Command::Notify {
            config,
            test,
            retry_dead,
            sink,
        } => {
            if retry_dead {
                retry_dead_letters(&config, sink.as_deref(), io).await
            } else {
                notify_test(&config, test, sink.as_deref(), io).await
            }
        }
    }
}

/// A mistake in the command line or the files it names: nothing was probed, exit code 2. The
/// message says what was given and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(String);

impl From<String> for UsageError {
    fn from(message: String) -> Self {
        UsageError(message)
    }
}

fn usage(io: &mut Io<'_>, msg: impl std::fmt::Display) -> i32 {
    let _ = writeln!(io.err, "error: {msg}");
    EXIT_USAGE
}

fn validate(path: &Path, io: &mut Io<'_>) -> i32 {
    let getenv = io.getenv.clone();
    let checked = match plan::validate(path, &*getenv) {
        Ok(v) => v,
        Err(e) => return usage(io, e),
    };
    for w in &checked.warnings {
        let _ = writeln!(io.err, "{w}");
    }
    let config = &checked.config;
    let _ = writeln!(
        io.out,
        "{}: ok ({}, {})",
        path.display(),
        crate::units::count(config.checks.len() as u64, "check"),
        crate::units::count(config.envs.len() as u64, "environment")
    );
    EXIT_PASS
}

fn init(url: Option<String>, output: &Path, force: bool, io: &mut Io<'_>) -> i32 {
    let url = url.unwrap_or_else(|| "https://example.com".into());
    let target = match Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => u,
        Ok(_) => {
            return usage(
                io,
                format!("\"{url}\" is not an http:// or https:// URL with a host"),
            );
        }
        Err(e) => return usage(io, format!("invalid URL \"{url}\": {e}")),
    };
    if output.exists() && !force {
        return usage(
            io,
            format!(
                "{} already exists; use --force to overwrite it",
                output.display()
            ),
        );
    }
    let text = match checklist::starter(&target, &Tuning::default()) {
        Ok(t) => t,
        Err(e) => return usage(io, e),
    };
    if let Err(e) = std::fs::write(output, text) {
        return usage(io, format!("cannot write {}: {e}", output.display()));
    }
    let _ = writeln!(
        io.out,
        "wrote {}; check it with `shipwatch validate -c {}`",
        output.display(),
        output.display()
    );
    EXIT_PASS
}

/// Loads the config (or the checklist) and builds the plan; every failure here is exit code 2.
fn plan_for(args: &CheckArgs, io: &mut Io<'_>) -> Result<plan::Plan, UsageError> {
    let target = target_of(args)?;
    let config_path = args
        .config
        .clone()
        .or_else(|| target.is_none().then(|| PathBuf::from(DEFAULT_CONFIG)));
    let (config, vars) = match (&config_path, &target) {
        (Some(path), t) => config_and_vars(path, t.as_ref(), args)?,
        (None, Some(t)) => {
            let tuning = Tuning {
                health_path: args.health_path.clone(),
                http_url: args.http_url.clone(),
                allow_origins: args.allow_origin.clone(),
            };
            let config = checklist::config().map_err(|e| e.to_string())?;
            let vars = checklist::vars(t, &tuning).map_err(|e| e.to_string())?;
            (config, vars)
        }
        (None, None) => unreachable!("a config path is chosen when there is no URL"),
    };
    let opts = PlanOptions {
        env: args.env.clone(),
        only: args.only.clone(),
        resolve: args.resolve.clone(),
        ca_file: args.ca_file.clone(),
        vars,
        getenv: Some(&*io.getenv),
    };
    let mut plan = plan::build(&config, &opts).map_err(|e| match e {
        PlanError::Config(c) => c.to_string(),
        PlanError::Usage(u) => u,
    })?;
    for w in &plan.warnings {
        let _ = writeln!(io.err, "{w}");
    }
    thresholds_from_flags(&mut plan.compare, args)?;
    if config_path.is_none() && target.as_ref().is_some_and(|t| t.scheme() == "http") {
        skip_https_checks(&mut plan, args, io);
    }
    Ok(plan)
}

/// The checklist against a plain-HTTP site: the redirect and TLS checks cannot apply.
fn skip_https_checks(plan: &mut plan::Plan, args: &CheckArgs, io: &mut Io<'_>) {
    plan.jobs
        .retain(|j| !checklist::HTTPS_ONLY.contains(&j.name.as_str()));
    let _ = writeln!(
        io.err,
        "note: {} is plain HTTP; the redirect and TLS checks are skipped",
        args.url.as_deref().unwrap_or("")
    );
}

/// `--latency-fail`, `--latency-warn` and `--alpha` over the file's `[compare]`.
fn thresholds_from_flags(
    t: &mut crate::compare::Thresholds,
    args: &CheckArgs,
) -> Result<(), UsageError> {
    let flags = [
        ("--latency-fail", args.latency_fail, &mut t.latency_fail),
        ("--latency-warn", args.latency_warn, &mut t.latency_warn),
        ("--alpha", args.alpha, &mut t.alpha),
        ("--size-change", args.size_change, &mut t.size_change),
    ];
    for (flag, value, slot) in flags {
        match value {
            Some(v) if v > 0.0 && v.is_finite() => *slot = v,
            Some(v) => {
                return Err(format!("{flag} {v}: expected a positive number, such as 0.2").into());
            }
            None => {}
        }
    }
    Ok(())
}

/// The URL given on the command line, which must be http(s).
fn target_of(args: &CheckArgs) -> Result<Option<Url>, UsageError> {
    let target = args
        .url
        .as_deref()
        .map(|u| Url::parse(u).map_err(|e| format!("invalid URL \"{u}\": {e}")))
        .transpose()?;
    match target {
        Some(t) if t.scheme() != "http" && t.scheme() != "https" => {
            Err(format!("URL \"{t}\" must be http:// or https://").into())
        }
        t => Ok(t),
    }
}

/// A config file and the variables the command line sets (`check URL -c FILE` sets
/// `base_url`). The checklist's tuning flags are refused here: they would be ignored.
fn config_and_vars(
    path: &Path,
    target: Option<&Url>,
    args: &CheckArgs,
) -> Result<(Config, Vec<(String, String)>), UsageError> {
    let tuned: Vec<&str> = [
        ("--health-path", args.health_path.is_some()),
        ("--allow-origin", !args.allow_origin.is_empty()),
        ("--http-url", args.http_url.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(flag, _)| *flag)
    .collect();
    if !tuned.is_empty() {
        return Err(UsageError(format!(
            "{} tune the built-in checklist (`shipwatch check URL` without a config file); with {} set health_path, allowed_origins and http_url in the file's [env] section instead",
            tuned.join(", "),
            path.display()
        )));
    }
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let vars = target
        .map(|u| {
            (
                "base_url".to_string(),
                u.as_str().trim_end_matches('/').to_string(),
            )
        })
        .into_iter()
        .collect();
    Ok((config, vars))
}

async fn check(args: CheckArgs, io: &mut Io<'_>) -> i32 {
    if let Some(url) = args.remote.clone() {
        return remote(&url, &args, io).await;
    }
    let wait = match args.wait.as_deref().map(parse_duration).transpose() {
        Ok(w) => w,
        Err(e) => return usage(io, format!("--wait: {e}")),
    };
    let every = match parse_duration(&args.wait_every) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return usage(io, "--wait-every must be more than zero"),
        Err(e) => return usage(io, format!("--wait-every: {e}")),
    };
    let mut plan = match plan_for(&args, io) {
        Ok(p) => p,
        Err(e) => return usage(io, e),
    };
    plan.progress = io.progress && args.format != Some(Format::Json);
    if plan.jobs.is_empty() {
        let file = args.config.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG));
        return usage(
            io,
            format!(
                "{}: no [[check]] in the file; add at least one",
                file.display()
            ),
        );
    }
    let engine = match Engine::new(&plan.engine) {
        Ok(e) => e,
        Err(e) => return usage(io, e),
    };
    // Read before anything is probed: a bad baseline is a usage error.
    let baseline = match args.baseline.as_deref().map(crate::compare::Baseline::load) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return usage(io, e),
    };
    let started_at = time::OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    let checks = match wait {
        None => runner::run_once(&plan, &engine).await,
        Some(w) => {
            let err = &mut *io.err;
            runner::run_until_pass(&plan, &engine, w, every.min(w), |o| {
                let _ = writeln!(
                    err,
                    "attempt {}: {} {} ({})",
                    o.attempts.len(),
                    o.name,
                    o.status.as_str(),
                    o.summary()
                );
            })
            .await
        }
    };
    let mut report = Report {
        environment: plan.environment.clone(),
        target: plan.target.clone(),
        started_at,
        duration: clock.elapsed(),
        checks,
    };
    if let Some(b) = &baseline {
        if let Err(e) = b.check_matches(&report) {
            return usage(io, e);
        }
        b.judge(&mut report, &plan.compare);
    }
    let code = emit(&report, &args, io);
    if args.notify {
        sign_off(&report, &args, io).await;
    }
    code
}

/// `--format github`: annotations on stdout, pointing at the config file's lines when there is
/// one, and the Markdown report appended to `$GITHUB_STEP_SUMMARY` when it is set.
fn github(report: &Report, args: &CheckArgs, io: &mut Io<'_>) -> i32 {
    let text = args
        .config
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let path = args.config.as_ref().map(|p| p.display().to_string());
    let source = match (&path, &text) {
        (Some(path), Some(text)) => Some(crate::report::github::Source { path, text }),
        _ => None,
    };
    if let Err(e) = crate::report::github::write(report, source.as_ref(), io.out) {
        let _ = writeln!(io.err, "error: cannot write the report: {e}");
        return EXIT_FAIL;
    }
    if let Some(summary) = (io.getenv)("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        let mut md = Vec::new();
        let appended = report
            .write(Format::Markdown, false, &mut md)
            .and_then(|_| {
                use std::io::Write as _;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&summary)?;
                f.write_all(&md)
            });
        if let Err(e) = appended {
            let _ = writeln!(io.err, "error: cannot append the summary to {summary}: {e}");
            return EXIT_FAIL;
        }
    }
    report.exit_code(args.strict)
}

fn emit(report: &Report, args: &CheckArgs, io: &mut Io<'_>) -> i32 {
    let format = args.format.unwrap_or(Format::Text);
    if format == Format::Github && args.output.is_none() {
        return github(report, args, io);
    }
    let written = match &args.output {
        Some(path) => {
            let mut buf = Vec::new();
            let r = report
                .write(format, false, &mut buf)
                .and_then(|_| std::fs::write(path, buf));
            if let Err(e) = r {
                let _ = writeln!(io.err, "error: cannot write {}: {e}", path.display());
                return EXIT_FAIL;
            }
            report.write(Format::Text, io.color, io.out)
        }
        None => report.write(format, io.color && format == Format::Text, io.out),
    };
    if let Err(e) = written {
        let _ = writeln!(io.err, "error: cannot write the report: {e}");
        return EXIT_FAIL;
    }
    report.exit_code(args.strict)
}
