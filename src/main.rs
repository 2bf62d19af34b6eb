//! The shipwatch binary: reads argv and the environment, sets up logging, and maps the result to an exit code.

use std::io::IsTerminal;

use clap::Parser;
use shipwatch::cli::{Cli, EXIT_USAGE, Io, LogFormat, run};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap exits 0 for --help and --version; every real usage error is 2.
            std::process::exit(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    // The agent says what it runs and when it reloads; one-shot commands stay quiet.
    let agent = matches!(cli.command, shipwatch::cli::Command::Agent { .. });
    init_tracing(cli.log_format, cli.verbose, agent);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The agent's probes run on one worker thread: a probe is a chain of short steps, and with
    // two workers each step is as likely to wake the other thread as not. Measured with
    // bench/agent-cpu.sh: 0.60 ms of CPU per HTTPS probe on one worker, 0.88 ms on two. Metrics,
    // pages and the history run on their own threads. TOKIO_WORKER_THREADS=N overrides it.
    if agent && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_USAGE);
        }
    };
    let getenv: shipwatch::agent::SharedEnv =
        std::sync::Arc::new(|name: &str| std::env::var(name).ok());
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let progress = std::io::stderr().is_terminal();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut io = Io {
        getenv,
        out: &mut out,
        err: &mut err,
        color,
        progress,
    };
    let code = runtime.block_on(run(cli, &mut io));
    drop(out);
    // Leftover connection tasks are already aborted; do not wait for idle runtime threads.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

fn init_tracing(format: LogFormat, verbose: u8, agent: bool) {
    let default = match (verbose, agent) {
        // Only shipwatch's own events by default: libraries' debug logs may show request details.
        (0, false) => "warn",
        (0, true) | (1, _) => "warn,shipwatch=info",
        _ => "warn,shipwatch=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal who did not opt out.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
