//! `notify --test`, `notify --retry-dead`, and the sign-off of `check --notify`: the commands
//! that talk to alert sinks directly.

use std::path::Path;

use super::{CheckArgs, EXIT_FAIL, EXIT_PASS, Io, UsageError, usage};
use crate::config::Config;
use crate::net::Engine;
use crate::report::Report;

/// The sinks of a config file, secrets read; every failure is a usage error.
fn sinks_of(
    path: &Path,
    io: &mut Io<'_>,
) -> Result<(Vec<crate::sink::Sink>, String), super::UsageError> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let getenv = io.getenv.clone();
    // Every sink secret that cannot be read, at once and with its position.
    let missing = config.check_secret_refs("alerts.", &*getenv);
    if !missing.is_empty() {
        return Err(config.error(missing).to_string().into());
    }
    let read = |s: &crate::config::SecretSource, what: &str| {
        s.read(&*getenv)
            .map_err(|source| crate::doc::SecretReadError {
                what: what.to_string(),
                source,
            })
    };
    let sinks =
        crate::sink::from_config(&config, &read).map_err(|e| UsageError::from(e.to_string()))?;
    let status = config
        .agent
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/", config.agent.listen));
    Ok((sinks, status))
}

pub(super) async fn notify_test(
    path: &Path,
    test: bool,
    only: Option<&str>,
    io: &mut Io<'_>,
) -> i32 {
    if !test {
        return usage(io, "notify needs --test or --retry-dead");
    }
    let (sinks, status_url) = match sinks_of(path, io) {
        Ok(s) => s,
        Err(e) => return usage(io, e),
    };
    let chosen: Vec<_> = sinks
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
        return usage(
            io,
            format!(
                "no sink to test (configured: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
        );
    }
    let Ok(engine) = Engine::new(&crate::net::EngineOptions::default()) else {
        return EXIT_FAIL;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let test_note = crate::alert::Notification {
        fingerprint: format!("shipwatch-test:{now}"),
        event: crate::alert::Event::Test,
        check: "shipwatch-test".into(),
        kind: crate::check::Kind::Http.name().into(),
        env: "test".into(),
        severity: crate::alert::Severity::Warning,
        problems: vec![crate::alert::Problem {
            id: "test.message".into(),
            status: "warn".into(),
            message: "a test message from shipwatch notify --test".into(),
            expected: Some("delivered".into()),
            actual: Some("delivered".into()),
        }],
        first_failure: now,
        started_at: now,
        at: now,
        failed_runs: 0,
        finding: "test.message".into(),
    };
    let mut failed = 0;
    for sink in chosen {
        match sink
            .notify(&engine, std::slice::from_ref(&test_note), &status_url)
            .await
        {
            Ok(()) => {
                let _ = writeln!(io.out, "{} ({}): ok", sink.name, sink.to.kind());
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(io.out, "{} ({}): failed: {e}", sink.name, sink.to.kind());
            }
        }
    }
    if failed == 0 { EXIT_PASS } else { EXIT_FAIL }
}

/// `notify --retry-dead`: each dead letter goes again, on its own, to the sink that refused it.
/// Accepted ones leave the folder; refused ones stay with the new answer. Exit 0 when the folder
/// is empty afterwards (for the chosen sink), 1 otherwise.
pub(super) async fn retry_dead_letters(path: &Path, only: Option<&str>, io: &mut Io<'_>) -> i32 {
    use crate::alert::outbox::DeadLetters;
    let (sinks, status_url) = match sinks_of(path, io) {
        Ok(s) => s,
        Err(e) => return usage(io, e),
    };
    let state_dir = match Config::load(path) {
        Ok(c) => c.agent.state_dir,
        Err(e) => return usage(io, e),
    };
    let dead = DeadLetters::new(state_dir.join("dead"));
    let Ok(engine) = Engine::new(&crate::net::EngineOptions::default()) else {
        return EXIT_FAIL;
    };
    let (mut sent, mut kept) = (0, 0);
    for (file, letter) in dead.list() {
        let letter = match letter {
            Ok(l) if only.is_some_and(|o| o != l.sink) => continue,
            Ok(l) => l,
            Err(e) => {
                kept += 1;
                let _ = writeln!(io.out, "{}: unreadable ({e}); kept", file.display());
                continue;
            }
        };
        let line = match resend(&file, letter, &sinks, &engine, &status_url).await {
            Resent::Sent(line) => {
                sent += 1;
                line
            }
            Resent::Kept(line) => {
                kept += 1;
                line
            }
        };
        let _ = writeln!(io.out, "{line}");
    }
    let _ = writeln!(
        io.out,
        "{sent} dead letters sent, {kept} kept in {}",
        dead.dir().display()
    );
    if kept == 0 { EXIT_PASS } else { EXIT_FAIL }
}

/// What became of one dead letter, as the line to print.
enum Resent {
    /// Accepted, and its file removed.
    Sent(String),
    /// Still in the folder: refused again (with the new answer kept), or no such sink.
    Kept(String),
}

/// Sends one dead letter to the sink that refused it.
async fn resend(
    file: &Path,
    mut letter: crate::alert::outbox::DeadLetter,
    sinks: &[crate::sink::Sink],
    engine: &Engine,
    status_url: &str,
) -> Resent {
    let n = &letter.notification;
    let what = format!(
        "{} {} {} ({}) for {}",
        n.env,
        n.check,
        n.event.as_str(),
        n.fingerprint,
        letter.sink
    );
    let Some(sink) = sinks.iter().find(|s| s.name == letter.sink) else {
        return Resent::Kept(format!(
            "{what}: kept; no sink named \"{}\" is configured",
            letter.sink
        ));
    };
    match sink
        .notify(engine, std::slice::from_ref(n), status_url)
        .await
    {
        Ok(()) => match std::fs::remove_file(file) {
            Ok(()) => Resent::Sent(format!("{what}: sent")),
            Err(e) => Resent::Kept(format!(
                "{what}: sent, but {} could not be removed ({e}); it would be sent again",
                file.display()
            )),
        },
        Err(e) => {
            letter.answer = e.to_string();
            if let Ok(bytes) = serde_json::to_vec_pretty(&letter) {
                let _ = crate::alert::outbox::write_atomic(file, &bytes);
            }
            Resent::Kept(format!("{what}: refused again: {e}; kept"))
        }
    }
}

/// `check --notify`: the sign-off goes to every sink that takes one; a sink failure is reported
/// but does not change the run's exit code.
pub(super) async fn sign_off(report: &Report, args: &CheckArgs, io: &mut Io<'_>) {
    let Some(path) = args.config.clone() else {
        let _ = writeln!(
            io.err,
            "warning: --notify needs -c FILE with [[alerts.sink]]; nothing sent"
        );
        return;
    };
    let sinks = match sinks_of(&path, io) {
        Ok((s, _)) => s,
        Err(e) => {
            let _ = writeln!(io.err, "warning: --notify: {e}");
            return;
        }
    };
    let Ok(engine) = Engine::new(&crate::net::EngineOptions {
        ca_file: args.ca_file.clone(),
        nameservers: Vec::new(),
    }) else {
        return;
    };
    for sink in &sinks {
        match sink.sign_off(&engine, report).await {
            Ok(true) => {
                let _ = writeln!(io.err, "sign-off sent to {}", sink.name);
            }
            Ok(false) => {
                let _ = writeln!(io.err, "{} takes alerts, not sign-offs: skipped", sink.name);
            }
            Err(e) => {
                let _ = writeln!(io.err, "warning: sign-off to {} failed: {e}", sink.name);
            }
        }
    }
}
