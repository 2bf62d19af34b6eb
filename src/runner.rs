//! Runs a plan's checks concurrently within a bound, and re-runs failing ones for `--wait`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::check::Ctx;
use crate::net::Engine;
use crate::outcome::{ProbeError, Probed, Status};
use crate::plan::{Job, Plan};

pub use crate::outcome::{Attempt, Outcome};

/// Runs one job of `plan` to completion or to its timeout. Never panics, never outlives the timeout by much.
pub(crate) async fn run_job(job: &Job, engine: &Engine, plan: &Plan) -> Outcome {
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
                    message: format!(
                        "check did not finish within its {} s timeout",
                        job.timeout.as_secs_f64()
                    ),
                }),
                ..Probed::default()
            },
        };
    let learnt = std::mem::take(&mut probed.redact);
    let mut outcome = Outcome::from_probed(
        &job.name,
        job.kind(),
        &plan.environment,
        probed,
        started.elapsed(),
    );
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
        duration_ms = crate::units::ms(outcome.duration),
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
/// Records the outcome as attempt `n`, timed from `started`.
fn stamp(o: &mut Outcome, n: u32, started: Instant) {
    o.attempts.push(Attempt {
        number: n,
        status: o.status,
        at_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        summary: o.summary(),
    });
}

pub(crate) async fn run_until_pass(
    plan: &Plan,
    engine: &Engine,
    wait: Duration,
    every: Duration,
    mut on_attempt: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let started = Instant::now();
    let stamp = |o: &mut Outcome, n: u32| stamp(o, n, started);
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
