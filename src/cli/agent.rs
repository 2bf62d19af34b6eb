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

/// Parses `--shard I/N`.
fn parse_shard(s: &str) -> Result<(u64, u64), super::UsageError> {
    let bad = || format!("invalid --shard \"{s}\", expected I/N such as 0/3");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad().into());
    }
    Ok((i, n))
}

pub(super) async fn agent(config: PathBuf, shard: Option<&str>, io: &mut Io<'_>) -> i32 {
    let shard = match shard.map(parse_shard).transpose() {
        Ok(s) => s.unwrap_or((0, 1)),
        Err(e) => return usage(io, e),
    };
    let opts = crate::agent::Options {
        config_path: config,
        shard,
        getenv: io.getenv.clone(),
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
