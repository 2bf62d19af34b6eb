//! `shipwatch agent`: runs every check against every environment on a schedule, serves
//! `/metrics`, a status page and an API, and reloads its configuration on SIGHUP or file change.

pub mod alerting;
mod gate;
pub mod history;
mod history_api;
mod page;
mod runs;
pub mod scheduler;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::config::{AgentSpec, Config};
use crate::metrics::Metrics;
use crate::net::Engine;
use crate::outcome::Status;
use crate::plan::{self, Plan, PlanOptions};
use crate::runner::{self, Outcome};
use scheduler::{Key, RunFn, Task};

pub use server::serve;

/// Reads an environment variable; shared with the tasks, so it must be `Send + Sync`.
pub type SharedEnv = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the agent was started.
#[derive(Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// `--shard i/n`: run only the pairs whose hash falls in shard `i` of `n`.
    pub shard: (u64, u64),
    pub getenv: SharedEnv,
    /// `--location`, which wins over `[agent].location`.
    pub location: Option<String>,
}

/// One environment's plan and the engine its checks share.
pub struct EnvRun {
    pub plan: Plan,
    pub engine: Engine,
}

/// What a configuration load produced.
pub struct Loaded {
    pub agent: AgentSpec,
    pub envs: BTreeMap<String, Arc<EnvRun>>,
    /// Each scheduled pair with its job's index in the plan and a fingerprint to detect changes.
    pub jobs: BTreeMap<Key, (usize, u64)>,
    pub api_token: Option<String>,
    pub metrics_auth: Option<server::MetricsAuth>,
    pub alerts: alerting::Settings,
    /// Sends notifications; trusts the same extra roots as the checks.
    pub sink_engine: Engine,
}

impl Loaded {
    /// What runs, in a sentence: "12 checks in 2 environments (prod, staging); sinks: slack, hook".
    pub(crate) fn describe(&self) -> String {
        let envs: Vec<&str> = self.envs.keys().map(String::as_str).collect();
        let sinks: Vec<&str> = self.alerts.sinks.iter().map(|s| s.name.as_str()).collect();
        format!(
            "{} in {} ({}); sinks: {}",
            crate::units::count(self.jobs.len() as u64, "check"),
            crate::units::count(envs.len() as u64, "environment"),
            envs.join(", "),
            if sinks.is_empty() {
                "none".to_string()
            } else {
                sinks.join(", ")
            }
        )
    }
}

/// The state every part of the agent shares.
pub struct State {
    pub metrics: Arc<Metrics>,
    pub alerting: Arc<alerting::Alerting>,
    /// Every run and alert, kept across restarts.
    pub history: Arc<history::History>,
    /// Shared, so a page or an API answer takes a snapshot without copying every outcome.
    pub latest: RwLock<BTreeMap<Key, Arc<Outcome>>>,
    pub loaded: RwLock<Arc<Loaded>>,
    pub ready: AtomicBool,
    pub started: SystemTime,
    /// How many checks run at once, scheduled or asked for through the API.
    pub limit: Arc<Semaphore>,
    /// Runs asked for through the API.
    pub on_demand: runs::OnDemand,
    /// The latest outcomes as they were before the last deploy marker or configuration reload:
    /// what `GET /api/v1/compare` judges the current state against.
    pub before_deploy: RwLock<Option<Vec<Outcome>>>,
}

impl State {
    /// Keeps the latest outcomes as the baseline of the next comparison. Returns how many.
    pub fn mark_deploy(&self) -> usize {
        let now: Vec<Outcome> = self
            .latest
            .read()
            .map(|l| l.values().map(|o| Outcome::clone(o)).collect())
            .unwrap_or_default();
        let n = now.len();
        if let Ok(mut b) = self.before_deploy.write() {
            *b = Some(now);
        }
        n
    }

    /// Runs one scheduled pair with whatever configuration is current.
    pub async fn run(&self, key: &Key) -> Option<Outcome> {
        let loaded = self.loaded.read().ok()?.clone();
        let (index, _) = loaded.jobs.get(key)?;
        let env = loaded.envs.get(&*key.env)?.clone();
        let job = env.plan.jobs.get(*index)?;
        Some(runner::run_job(job, &env.engine, &env.plan).await)
    }

    /// Takes in a finished run of `key`: metrics, the latest outcome, one log line per state
    /// change. The key is the scheduled one, so the latest outcomes share its names.
    pub(crate) fn record(&self, key: &Key, o: Outcome) {
        self.metrics.record(&o);
        self.history.record(&o);
        if let Some(change) = self.alerting.observe(&o, &self.metrics) {
            self.history.incident(&change);
        }
        let Ok(mut latest) = self.latest.write() else {
            return;
        };
        let before = latest.get(key).map(|p| p.status);
        if before != Some(o.status) {
            match o.status {
                Status::Pass => tracing::info!(check = %key.check, env = %key.env, "check passes"),
                s => {
                    tracing::warn!(check = %key.check, env = %key.env, status = s.as_str(), reason = %o.summary(), "check does not pass")
                }
            }
        }
        latest.insert(key.clone(), Arc::new(o));
        // Readiness is decided once; after that a run costs no scan of every check.
        if self.ready.load(Ordering::Relaxed) {
            return;
        }
        let all_ran = self
            .loaded
            .read()
            .map(|l| l.jobs.keys().all(|k| latest.contains_key(k)))
            .unwrap_or(false);
        if all_ran && !self.ready.swap(true, Ordering::SeqCst) {
            tracing::info!(checks = latest.len(), "first round complete, ready");
            release_freed_memory();
        }
    }
}

/// Why the agent cannot start or reload; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The file, with every problem at its position.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Plan(#[from] plan::PlanError),
    /// The HTTP engine's set-up, such as an unreadable CA file.
    #[error("{0}")]
    Engine(#[from] crate::net::NetError),
    /// A secret of `[agent]` or of a sink that cannot be read.
    #[error("{0}")]
    Secret(#[from] crate::doc::SecretReadError),
    #[error("cannot create state_dir {}: {source}", path.display())]
    StateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the outbox: {0}")]
    Outbox(std::io::Error),
    #[error("the agent's state is unusable after a panic")]
    Poisoned,
    /// The certificate or key of `[agent].tls_cert` / `tls_key`.
    #[error("cannot serve HTTPS: {0}")]
    Tls(String),
}

/// Loads the configuration and builds a plan and an engine for every environment.
pub fn load(opts: &Options) -> Result<Loaded, AgentError> {
    let getenv = |n: &str| (opts.getenv)(n);
    // Everything `validate` checks, every error at once: a file it accepts starts.
    let config = plan::validate(&opts.config_path, &getenv)?.config;
    let names: Vec<Option<String>> = if config.envs.is_empty() {
        vec![None]
    } else {
        config.envs.iter().map(|e| Some(e.name.clone())).collect()
    };
    let mut envs = BTreeMap::new();
    let mut jobs = BTreeMap::new();
    for name in names {
        let popts = PlanOptions {
            env: name,
            getenv: Some(&getenv),
            ..PlanOptions::default()
        };
        let mut plan = plan::build(&config, &popts)?;
        for w in &plan.warnings {
            tracing::warn!("{w}");
        }
        plan.concurrency = config.agent.concurrency;
        let engine = Engine::new(&plan.engine)?;
        for (i, job) in plan.jobs.iter().enumerate() {
            let key = Key::new(&job.name, &plan.environment);
            if scheduler::in_shard(&key, opts.shard.0, opts.shard.1) {
                let interval = job.interval.unwrap_or(config.agent.interval);
                // The fingerprint covers everything that changes a run; unchanged checks keep running.
                let fingerprint = fingerprint(format_args!(
                    "{interval:?}|{:?}|{:?}|{:?}",
                    job, plan.overrides, plan.engine
                ));
                jobs.insert(key, (i, fingerprint));
            }
        }
        envs.insert(plan.environment.clone(), Arc::new(EnvRun { plan, engine }));
    }
    let read = |s: &crate::config::SecretSource, what: &str| {
        s.read(&getenv)
            .map_err(|source| crate::doc::SecretReadError {
                what: what.to_string(),
                source,
            })
    };
    let api_token = config
        .agent
        .api_token
        .as_ref()
        .map(|s| read(s, "agent.api_token"))
        .transpose()?;
    let metrics_auth = match (&config.agent.metrics_token, &config.agent.metrics_user) {
        (Some(t), _) => Some(server::MetricsAuth::Bearer(read(t, "agent.metrics_token")?)),
        (None, Some((user, pass))) => Some(server::MetricsAuth::Basic(
            user.clone(),
            read(pass, "agent.metrics_basic_auth")?,
        )),
        (None, None) => None,
    };
    let alerts = alert_settings(&config, &read)?;
    let sink_engine = Engine::new(&crate::net::EngineOptions {
        ca_file: config.defaults.ca_file.clone(),
        nameservers: Vec::new(),
    })?;
    Ok(Loaded {
        agent: config.agent,
        envs,
        jobs,
        api_token,
        metrics_auth,
        alerts,
        sink_engine,
    })
}

/// Makes every allocation of 1 MiB or more a mapping of its own, returned to the system when
/// freed. glibc otherwise raises that threshold after the first large block is freed, and from
/// then on keeps what a `/metrics` answer of many megabytes used (10,000 checks: 18 MiB of text).
pub(crate) fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        unsafe extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // SAFETY: mallopt only changes a tuning parameter of glibc's allocator; it takes no
        // pointer and is safe to call at any time.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}

/// Gives the memory freed since the last call back to the system. Reading a configuration of
/// thousands of checks builds a large document that is dropped once the plan is made, and the
/// first round of runs allocates more at once than later ones; the allocator keeps those pages
/// between the long-lived objects around them unless asked. Measured with 10,000 checks: 80 MiB
/// resident without it, 66 MiB with it.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes no pointer and may be called from any thread at any
        // time; it only returns unused pages of the heap to the kernel.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A hash of a job's whole description, streamed: keeping the text itself would cost about a
/// kilobyte per check for as long as the agent runs.
fn fingerprint(description: std::fmt::Arguments<'_>) -> u64 {
    use std::hash::Hasher;
    struct Hashing(std::collections::hash_map::DefaultHasher);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut h = Hashing(std::collections::hash_map::DefaultHasher::new());
    let _ = std::fmt::Write::write_fmt(&mut h, description);
    h.0.finish()
}

/// The alert rule, per-check overrides, sinks (secrets read) and quiet windows of a config.
fn alert_settings(
    config: &Config,
    read: crate::doc::ReadSecret<'_>,
) -> Result<alerting::Settings, crate::doc::SecretReadError> {
    let rule = config.alerts.rule.clone();
    let overrides = config
        .checks
        .iter()
        .filter(|c| c.alert.is_some())
        .map(|c| (c.name.value.clone(), crate::config::check_rule(c, &rule)))
        .collect();
    let sinks = crate::sink::from_config(config, read)?;
    let status_url = config
        .agent
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/", config.agent.listen));
    Ok(alerting::Settings {
        rule,
        overrides,
        sinks,
        quiet: config.alerts.quiet.clone(),
        status_url,
        backlog: config.alerts.backlog,
        batch_window: config.alerts.batch_window,
    })
}

fn interval_of(loaded: &Loaded, key: &Key) -> Duration {
    loaded
        .jobs
        .get(key)
        .and_then(|(i, _)| loaded.envs.get(&*key.env)?.plan.jobs.get(*i)?.interval)
        .unwrap_or(loaded.agent.interval)
}

/// The running agent: state, tasks, and the channel outcomes arrive on.
pub struct Agent {
    pub state: Arc<State>,
    opts: Options,
    tasks: BTreeMap<Key, Task>,
    dispatchers: Vec<tokio::task::JoinHandle<()>>,
    limit: Arc<Semaphore>,
    done: scheduler::DoneFn,
}

impl Agent {
    /// Loads the configuration (an error here is a startup error) and starts the schedule.
    pub fn start(opts: Options) -> Result<Agent, AgentError> {
        return_large_blocks();
        let loaded = load(&opts)?;
        release_freed_memory();
        let limit = Arc::new(Semaphore::new(loaded.agent.concurrency));
        let alerting = Arc::new(alerting::Alerting::open(
            &loaded.agent.state_dir,
            loaded.alerts.clone(),
        )?);
        let location = opts.location.clone().or(loaded.agent.location.clone());
        let metrics = Arc::new(Metrics::at(location.as_deref()));
        let history = Arc::new(history::History::open(
            &loaded.agent.state_dir,
            loaded.agent.history,
            metrics.clone(),
        ));
        let state = Arc::new(State {
            metrics,
            alerting,
            history,
            latest: RwLock::new(BTreeMap::new()),
            loaded: RwLock::new(Arc::new(loaded)),
            ready: AtomicBool::new(false),
            started: SystemTime::now(),
            limit: limit.clone(),
            on_demand: runs::OnDemand::default(),
            before_deploy: RwLock::new(None),
        });
        state.metrics.reloaded(true, unix_now());
        let recorder = state.clone();
        let done: scheduler::DoneFn = Arc::new(move |key, o| recorder.record(key, o));
        let mut agent = Agent {
            state,
            opts,
            tasks: BTreeMap::new(),
            dispatchers: Vec::new(),
            limit,
            done,
        };
        agent.sync_tasks();
        agent.start_dispatchers();
        Ok(agent)
    }

    /// One delivery task per sink; restarted when the sinks change on reload.
    fn start_dispatchers(&mut self) {
        for d in self.dispatchers.drain(..) {
            d.abort();
        }
        let Ok(loaded) = self.state.loaded.read().map(|l| l.clone()) else {
            return;
        };
        for sink in self.state.alerting.sinks() {
            // Every sink's counters exist from the first scrape, at zero: a rate() over a series
            // that appears only on the first failure misses that failure.
            for outcome in crate::metrics::NOTIFICATION_OUTCOMES {
                self.state
                    .metrics
                    .count_notifications(&sink.name, outcome, 0);
            }
            let alerting = self.state.alerting.clone();
            let task =
                alerting.deliver(sink, loaded.sink_engine.clone(), self.state.metrics.clone());
            self.dispatchers.push(tokio::spawn(task));
        }
    }

    fn runner(&self) -> RunFn {
        let state = self.state.clone();
        Arc::new(move |key: Key| {
            let state = state.clone();
            Box::pin(async move {
                match state.run(&key).await {
                    Some(o) => o,
                    None => missing(&key),
                }
            })
        })
    }

    /// Starts tasks for new or changed pairs and stops the rest, keeping unchanged ones running.
    fn sync_tasks(&mut self) -> Vec<Key> {
        let loaded = self.state.loaded.read().map(|l| l.clone());
        let Ok(loaded) = loaded else {
            return Vec::new();
        };
        let stale: Vec<Key> = self
            .tasks
            .keys()
            .filter(|k| !loaded.jobs.contains_key(*k))
            .cloned()
            .collect();
        for key in loaded.jobs.keys() {
            if !self.tasks.contains_key(key) {
                let task = scheduler::spawn(
                    key.clone(),
                    interval_of(&loaded, key),
                    self.limit.clone(),
                    self.runner(),
                    self.done.clone(),
                );
                self.tasks.insert(key.clone(), task);
            }
        }
        stale
    }

    /// Loads the configuration again. An invalid one keeps the old running and says why.
    pub async fn reload(&mut self) -> Result<(), AgentError> {
        let new = match load(&self.opts) {
            Ok(l) => {
                release_freed_memory();
                l
            }
            Err(e) => {
                tracing::error!("reload failed, keeping the running configuration:\n{e}");
                self.state.metrics.reloaded(false, unix_now());
                return Err(e);
            }
        };
        let old = self
            .state
            .loaded
            .read()
            .map(|l| l.clone())
            .map_err(|_| AgentError::Poisoned)?;
        // Pairs whose job changed are restarted; removed ones are stopped and forgotten.
        let changed: Vec<Key> = old
            .jobs
            .iter()
            .filter(|(k, (_, fp))| new.jobs.get(*k).is_none_or(|(_, f)| f != fp))
            .map(|(k, _)| k.clone())
            .collect();
        // A reload is a deploy of the checks: what ran before it is the next comparison's baseline.
        self.state.mark_deploy();
        self.state.alerting.configure(new.alerts.clone());
        self.state.history.configure(new.agent.history);
        if let Ok(mut l) = self.state.loaded.write() {
            *l = Arc::new(new);
        }
        self.start_dispatchers();
        for key in &changed {
            if let Some(task) = self.tasks.remove(key) {
                task.stop(Duration::from_secs(10)).await;
            }
        }
        let loaded = self
            .state
            .loaded
            .read()
            .map(|l| l.clone())
            .map_err(|_| AgentError::Poisoned)?;
        for key in changed.iter().filter(|k| !loaded.jobs.contains_key(*k)) {
            self.forget(key);
        }
        self.sync_tasks();
        self.state.metrics.reloaded(true, unix_now());
        tracing::info!("configuration reloaded: {}", loaded.describe());
        Ok(())
    }

    fn forget(&self, key: &Key) {
        let Ok(mut latest) = self.state.latest.write() else {
            return;
        };
        if latest.remove(key).is_some() {
            self.state.metrics.forget(&key.check, &key.env);
        }
    }

    /// Stops scheduling and lets in-flight runs finish, up to `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        let tasks = std::mem::take(&mut self.tasks);
        let stops = tasks.into_values().map(|t| t.stop(grace));
        futures_util::future::join_all(stops).await;
        // Undelivered notifications stay in the outbox for the next start.
        for d in self.dispatchers.drain(..) {
            d.abort();
        }
        let history = self.state.history.clone();
        let _ = tokio::task::spawn_blocking(move || history.close(Duration::from_secs(5))).await;
    }
}

fn missing(key: &Key) -> Outcome {
    let err = crate::outcome::ProbeError {
        kind: "setup",
        message: "the check is no longer configured".into(),
    };
    Outcome::could_not_run(&key.check, crate::check::Kind::Http.name(), &key.env, err)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs the agent until `shutdown` resolves: serves on `listener`, reloads on SIGHUP or when the
/// file changes, and stops gracefully.
pub async fn run(
    opts: Options,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut agent = Agent::start(opts.clone())?;
    let tls = agent
        .state
        .loaded
        .read()
        .ok()
        .and_then(|l| l.agent.tls.clone());
    // A certificate or key that cannot be used stops the start: an agent that runs but serves
    // nothing would pass a liveness check that cannot reach it.
    let acceptor = tls
        .as_ref()
        .map(|(cert, key)| server::tls_acceptor(cert, key))
        .transpose()?;
    if let (Ok(addr), Ok(loaded)) = (listener.local_addr(), agent.state.loaded.read()) {
        tracing::info!(
            "shipwatch {} agent listening on {}://{addr}: {}",
            env!("CARGO_PKG_VERSION"),
            if tls.is_some() { "https" } else { "http" },
            loaded.describe()
        );
    }
    let server = tokio::spawn(serve(listener, agent.state.clone(), acceptor));
    let mut hup = hangups();
    let mut mtime = modified(&opts.config_path);
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = agent.reload().await;
            }
            _ = poll.tick() => {
                let now = modified(&opts.config_path);
                if now != mtime {
                    mtime = now;
                    tracing::info!("configuration file changed: reloading");
                    let _ = agent.reload().await;
                }
            }
        }
    }
    tracing::info!("shutting down");
    agent.shutdown(Duration::from_secs(10)).await;
    server.abort();
    Ok(())
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// SIGHUP as a stream of unit events; on platforms without it, a stream that never yields.
fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}
