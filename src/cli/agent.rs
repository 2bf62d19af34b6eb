//! `agent` and the container `healthcheck`: running the agent until a signal stops it, and asking
//! it whether it is alive.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{EXIT_FAIL, EXIT_PASS, Io, usage};
use crate::net::Engine;

pub(super) async fn healthcheck(url: &str, io: &mut Io<'_>) -> i32 {
    let Ok(parsed) = Url::parse(url) else {
        return usage(io, format!("invalid URL \"{url}\""));
    };
    let Ok(engine) = Engine::new(&crate::net::EngineOptions::default()) else {
        return EXIT_FAIL;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    match engine
        .send(
            &crate::net::Request::get(parsed),
            &crate::net::Overrides::default(),
            deadline,
        )
        .await
    {
        Ok(r) if r.status == 200 => EXIT_PASS,
        Ok(r) => {
            let _ = writeln!(io.err, "unhealthy: {url} answered {}", r.status);
            EXIT_FAIL
        }
        Err(e) => {
            let _ = writeln!(io.err, "unhealthy: {e}");
            EXIT_FAIL
        }
    }
}

/// Parses `--shard I/N`, or `--shard auto`: I from the StatefulSet pod's name (`HOSTNAME`,
/// `shipwatch-2` is shard 2) and N from `SHIPWATCH_SHARDS`.
pub(super) fn parse_shard(
    s: &str,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<(u64, u64), super::UsageError> {
    if s == "auto" {
        return auto_shard(getenv);
    }
    let bad = || format!("invalid --shard \"{s}\", expected I/N such as 0/3, or auto");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad().into());
    }
    Ok((i, n))
}

fn auto_shard(getenv: &dyn Fn(&str) -> Option<String>) -> Result<(u64, u64), super::UsageError> {
    let host = getenv("HOSTNAME").unwrap_or_default();
    let index = host
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .ok_or_else(|| {
            format!(
                "--shard auto needs a StatefulSet pod name ending in its ordinal, such as shipwatch-2; HOSTNAME is \"{host}\""
            )
        })?;
    let count_text = getenv("SHIPWATCH_SHARDS").unwrap_or_default();
    let count = count_text
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!(
                "--shard auto needs SHIPWATCH_SHARDS, the number of agents; it is \"{count_text}\""
            )
        })?;
    if index >= count {
        return Err(format!(
            "--shard auto: pod {host} has ordinal {index}, but SHIPWATCH_SHARDS is {count}"
        )
        .into());
    }
    Ok((index, count))
}

pub(super) async fn agent(
    config: PathBuf,
    shard: Option<&str>,
    location: Option<String>,
    io: &mut Io<'_>,
) -> i32 {
    let getenv = io.getenv.clone();
    let shard = match shard.map(|s| parse_shard(s, &*getenv)).transpose() {
        Ok(s) => s.unwrap_or((0, 1)),
        Err(e) => return usage(io, e),
    };
    let opts = crate::agent::Options {
        config_path: config,
        shard,
        getenv: io.getenv.clone(),
        location,
    };
    let listen = match crate::agent::load(&opts) {
        Ok(l) => l.agent.listen,
        Err(e) => return usage(io, e),
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return usage(io, format!("cannot listen on {listen}: {e}")),
    };
    match crate::agent::run(opts, listener, terminated()).await {
        Ok(()) => EXIT_PASS,
        Err(e) => usage(io, e),
    }
}

/// `validate --shard I/N`: the checks that shard runs, one per line (`ENV/NAME` when the file has
/// several environments), after validating the file.
pub(super) fn shard_checks(config: PathBuf, shard: &str, io: &mut Io<'_>) -> i32 {
    let getenv = io.getenv.clone();
    let shard = match parse_shard(shard, &*getenv) {
        Ok(s) => s,
        Err(e) => return usage(io, e),
    };
    let opts = crate::agent::Options {
        config_path: config.clone(),
        shard,
        getenv,
        location: None,
    };
    let loaded = match crate::agent::load(&opts) {
        Ok(l) => l,
        Err(e) => return usage(io, e),
    };
    let several = loaded.envs.len() > 1;
    for key in loaded.jobs.keys() {
        let _ = if several {
            writeln!(io.out, "{}/{}", key.env, key.check)
        } else {
            writeln!(io.out, "{}", key.check)
        };
    }
    let _ = writeln!(
        io.err,
        "{}: ok; shard {}/{} runs {}",
        config.display(),
        shard.0,
        shard.1,
        crate::units::count(loaded.jobs.len() as u64, "check")
    );
    EXIT_PASS
}

/// Resolves on Ctrl-C or SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
            Ok(mut t) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = t.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
