//! Runs a plan's checks concurrently within a bound, and re-runs failing ones for `--wait`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::assert::Redactor;
use crate::net::{Engine, Timings};
use crate::plan::{Job, Plan};
use crate::probe::{Ctx, Finding, ProbeError, Probed, Status};

/// One earlier try of a check under `--wait`, kept so the report shows every attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub status: Status,
    /// Seconds since the run started.
    pub at_s: f64,
    pub summary: String,
}

/// The result of one check: what the report, metrics and alerts are built from.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub kind: &'static str,
    pub environment: String,
    pub status: Status,
    pub duration: Duration,
    pub error: Option<ProbeError>,
    pub timings: Option<Timings>,
    pub findings: Vec<Finding>,
    pub details: BTreeMap<String, serde_json::Value>,
    /// Every attempt including the last; one entry unless `--wait` retried.
    pub attempts: Vec<Attempt>,
}

impl Outcome {
    /// The check's status follows from its findings: any fail fails it, any warn warns it.
    pub fn from_probed(job: &Job, env: &str, p: Probed, duration: Duration) -> Outcome {
        let status = if p.error.is_some() {
            Status::Error
        } else {
            p.findings
                .iter()
                .map(|f| f.status)
                .max()
                .unwrap_or(Status::Pass)
        };
        Outcome {
            name: job.name.clone(),
            kind: job.kind(),
            environment: env.to_string(),
            status,
            duration,
            error: p.error,
            timings: p.timings,
            findings: p.findings,
            details: p.details,
            attempts: Vec::new(),
        }
    }

    /// An outcome for a check that could not run at all.
    pub fn could_not_run(name: &str, kind: &'static str, env: &str, error: ProbeError) -> Outcome {
        Outcome {
            name: name.to_string(),
            kind,
            environment: env.to_string(),
            status: Status::Error,
            duration: Duration::ZERO,
            error: Some(error),
            timings: None,
            findings: Vec::new(),
            details: BTreeMap::new(),
            attempts: Vec::new(),
        }
    }

    /// One line on why the check did not pass, for attempt histories and summaries.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("{}: {}", e.kind, e.message);
        }
        let bad: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| f.status >= Status::Warn)
            .map(|f| f.id.as_str())
            .collect();
        if bad.is_empty() {
            "all findings pass".into()
        } else {
            bad.join(", ")
        }
    }

    /// Replaces every secret or captured value in every text field.
    pub fn redact(&mut self, r: &Redactor) {
        if r.is_empty() {
            return;
        }
        if let Some(e) = &mut self.error {
            r.scrub(&mut e.message);
        }
        for f in &mut self.findings {
            r.scrub(&mut f.message);
            f.expected
                .iter_mut()
                .chain(f.actual.iter_mut())
                .for_each(|s| r.scrub(s));
        }
        self.details.values_mut().for_each(|v| scrub_json(v, r));
        for a in &mut self.attempts {
            r.scrub(&mut a.summary);
        }
    }
}

fn scrub_json(v: &mut serde_json::Value, r: &Redactor) {
    match v {
        serde_json::Value::String(s) => r.scrub(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| scrub_json(i, r)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| scrub_json(i, r)),
        _ => {}
    }
}

/// Runs one job of `plan` to completion or to its timeout. Never panics, never outlives the timeout by much.
pub async fn run_job(job: &Job, engine: &Engine, plan: &Plan) -> Outcome {
    let started = Instant::now();
    let deadline = started + job.timeout;
    let ctx = Ctx {
        engine,
        overrides: &plan.overrides,
        deadline,
        progress: plan.progress,
    };
    // The probes honour the deadline phase by phase; this outer bound is a safety net.
    let mut probed =
        match tokio::time::timeout_at(deadline + Duration::from_millis(250), job.probe.run(&ctx))
            .await
        {
            Ok(p) => p,
            Err(_) => Probed {
                error: Some(ProbeError {
                    kind: "timeout",
                    message: format!("check did not finish within {:?}", job.timeout),
                }),
                ..Probed::default()
            },
        };
    let learnt = std::mem::take(&mut probed.redact);
    let mut outcome = Outcome::from_probed(job, &plan.environment, probed, started.elapsed());
    if learnt.is_empty() {
        outcome.redact(&plan.redactor);
    } else {
        let mut redactor = plan.redactor.clone();
        learnt.iter().for_each(|v| redactor.add(v));
        outcome.redact(&redactor);
    }
    // Per run at debug level: the agent logs state changes, not every run.
    tracing::debug!(
        check = %outcome.name,
        env = %outcome.environment,
        kind = outcome.kind,
        status = outcome.status.as_str(),
        duration_ms = crate::report::ms(outcome.duration),
        "check finished"
    );
    if outcome.status >= Status::Warn {
        tracing::debug!(check = %outcome.name, reason = %outcome.summary(), "check did not pass");
    }
    outcome
}

/// Runs every job of the plan once, at most `plan.concurrency` at a time, in plan order.
pub async fn run_once(plan: &Plan, engine: &Engine) -> Vec<Outcome> {
    let all: Vec<usize> = (0..plan.jobs.len()).collect();
    run_some(plan, engine, &all).await
}

async fn run_some(plan: &Plan, engine: &Engine, which: &[usize]) -> Vec<Outcome> {
    let limit = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let runs = which.iter().map(|&i| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            run_job(&plan.jobs[i], engine, plan).await
        }
    });
    futures_util::future::join_all(runs).await
}

/// Runs the plan, then re-runs failing checks every `every` until they pass or `wait` is over.
/// `on_attempt` sees each outcome as it arrives, so progress can be shown.
pub async fn run_until_pass(
    plan: &Plan,
    engine: &Engine,
    wait: Duration,
    every: Duration,
    mut on_attempt: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let started = Instant::now();
    let stamp = |o: &mut Outcome, n: u32| {
        o.attempts.push(Attempt {
            number: n,
            status: o.status,
            at_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            summary: o.summary(),
        });
    };
    let mut outcomes = run_once(plan, engine).await;
    for o in &mut outcomes {
        stamp(o, 1);
        on_attempt(o);
    }
    let mut attempt = 1;
    loop {
        let failing: Vec<usize> = (0..outcomes.len())
            .filter(|&i| outcomes[i].status >= Status::Fail)
            .collect();
        let left = wait.saturating_sub(started.elapsed());
        if failing.is_empty() || left.is_zero() {
            return outcomes;
        }
        tokio::time::sleep(every.min(left)).await;
        attempt += 1;
        let again = run_some(plan, engine, &failing).await;
        for (i, mut o) in failing.into_iter().zip(again) {
            o.attempts = std::mem::take(&mut outcomes[i].attempts);
            stamp(&mut o, attempt);
            on_attempt(&o);
            outcomes[i] = o;
        }
    }
}
