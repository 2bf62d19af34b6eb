//! `shipwatch compare --stable ENV|ADDR --canary ENV|ADDR`: every check against both stacks at
//! the same time, so the network and the client's load weigh on both alike, and the canary
//! judged with the stable stack as its baseline. Exit 0 when the canary is no worse, 1 when it
//! is, 2 for usage errors.

use std::net::{IpAddr, SocketAddr};

use super::{CheckArgs, EXIT_FAIL, EXIT_PASS, Io, UsageError, emit, plan_for, usage};
use crate::compare::Baseline;
use crate::net::Engine;
use crate::report::Report;

/// `ADDR` as given: an IP, with an optional port (`10.0.3.7`, `10.0.3.8:8443`, `[::1]:8443`).
fn address(which: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = which.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    which
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .map(|ip| (ip, None))
}

/// One side of the comparison: an environment of the config, or the target's host sent to an
/// address (blue/green behind one name); the name stays for SNI and Host.
fn side(args: &CheckArgs, which: &str, io: &mut Io<'_>) -> Result<crate::plan::Plan, UsageError> {
    let address = address(which);
    let mut args = args.clone();
    if address.is_none() {
        args.env = Some(which.to_string());
    }
    let mut plan = plan_for(&args, io)?;
    if let Some((ip, port)) = address {
        let url = url::Url::parse(&plan.target).map_err(|_| {
            UsageError::from(format!(
                "cannot send {which} the checks: the target \"{}\" is not a URL",
                plan.target
            ))
        })?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let url_port = url.port_or_known_default().unwrap_or(443);
        let to = SocketAddr::new(ip, port.unwrap_or(url_port));
        plan.overrides.connect_to(host, url_port, to);
    }
    plan.environment = which.to_string();
    Ok(plan)
}

/// Each check's stable run, then its canary run with what got worse.
fn side_by_side(
    stable: &[crate::outcome::Outcome],
    canary: Vec<crate::outcome::Outcome>,
) -> Vec<crate::outcome::Outcome> {
    let mut checks = Vec::new();
    for c in canary {
        if let Some(b) = stable.iter().find(|b| b.name == c.name) {
            checks.push(b.clone());
        }
        checks.push(c);
    }
    checks
}

pub(super) async fn compare(args: CheckArgs, stable: &str, canary: &str, io: &mut Io<'_>) -> i32 {
    let (stable_plan, canary_plan) = match (side(&args, stable, io), side(&args, canary, io)) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return usage(io, e),
    };
    let engines = (
        Engine::new(&stable_plan.engine),
        Engine::new(&canary_plan.engine),
    );
    let (Ok(se), Ok(ce)) = engines else {
        return usage(io, "cannot set up the HTTP engine");
    };
    let started_at = time::OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    // Both stacks at once: what slows the network or the client slows both.
    let (before, now) = tokio::join!(
        crate::runner::run_once(&stable_plan, &se),
        crate::runner::run_once(&canary_plan, &ce)
    );
    let baseline = Baseline {
        target: stable_plan.target.clone(),
        checks: before.clone(),
    };
    let mut canary_report = Report {
        environment: canary.to_string(),
        target: canary_plan.target.clone(),
        started_at,
        duration: clock.elapsed(),
        checks: now,
    };
    baseline.judge(&mut canary_report, &canary_plan.compare);
    let worse = crate::compare::worse(&canary_report);
    let checks = side_by_side(&before, canary_report.checks);
    let report = Report {
        environment: format!("canary {canary} vs stable {stable}"),
        target: canary_plan.target,
        started_at,
        duration: clock.elapsed(),
        checks,
    };
    emit(&report, &args, io);
    if worse { EXIT_FAIL } else { EXIT_PASS }
}
