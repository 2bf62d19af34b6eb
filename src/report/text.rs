//! The text report: a sign-off table, then what failed with expected vs actual, then one summary line.

use std::io::{self, Write};

use super::{Report, ms, notable};
use crate::outcome::Status;

struct Paint {
    on: bool,
}

impl Paint {
    fn status(&self, s: Status) -> String {
        let (word, code) = match s {
            Status::Pass => ("pass", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
            Status::Error => ("ERROR", "35"),
        };
        self.wrap(&format!("{word:<5}"), code)
    }

    fn mark(&self, s: Status) -> String {
        let (m, code) = match s {
            Status::Pass => ("✓", "32"),
            Status::Warn => ("!", "33"),
            Status::Fail | Status::Error => ("✗", "31"),
        };
        self.wrap(m, code)
    }

    fn bold(&self, t: &str) -> String {
        self.wrap(t, "1")
    }

    fn wrap(&self, t: &str, code: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    }
}

pub fn write(r: &Report, color: bool, w: &mut dyn Write) -> io::Result<()> {
    let p = Paint { on: color };
    let target = if r.target.is_empty() {
        String::new()
    } else {
        format!(" · {}", r.target)
    };
    writeln!(
        w,
        "{}",
        p.bold(&format!(
            "shipwatch check · {}{target} · {}",
            r.environment,
            r.started_rfc3339()
        ))
    )?;
    writeln!(w)?;
    write_table(r, &p, w)?;
    write_notable(r, &p, w)?;
    let s = r.summary();
    writeln!(w)?;
    writeln!(
        w,
        "Sign-off: {} · {}: {} pass, {} warn, {} fail, {} error in {:.1}ms",
        p.bold(&r.status().as_str().to_uppercase()),
        super::count(r.checks.len() as u64, "check"),
        s.pass,
        s.warn,
        s.fail,
        s.error,
        ms(r.duration)
    )
}

/// One line per check, with a flow's steps, a latency run's figures and `--wait` attempts under it.
fn write_table(r: &Report, p: &Paint, w: &mut dyn Write) -> io::Result<()> {
    let name_w = r
        .checks
        .iter()
        .map(|c| r.label(c).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    // As wide as the longest kind name, so every row lines up.
    let kind_w = crate::outcome::Kind::ALL
        .iter()
        .map(|k| k.name().len())
        .max()
        .unwrap_or(8);
    writeln!(
        w,
        "  {:<7}  {:<name_w$}  {:<kind_w$}  {:>9}",
        "STATUS", "CHECK", "KIND", "TIME"
    )?;
    for c in &r.checks {
        writeln!(
            w,
            "  {} {}  {:<name_w$}  {:<kind_w$}  {:>7.1}ms{}",
            p.mark(c.status),
            p.status(c.status),
            r.label(c),
            c.kind,
            ms(c.duration),
            note(c)
        )?;
        write_steps(c, p, w)?;
        write_latency(c, w)?;
        for a in c.attempts.iter().filter(|_| c.attempts.len() > 1) {
            writeln!(
                w,
                "      attempt {} at {:.1}s: {} ({})",
                a.number,
                a.at_s,
                a.status.as_str(),
                a.summary
            )?;
        }
    }
    Ok(())
}

/// The failures and warnings, worst first, with expected vs actual.
fn write_notable(r: &Report, p: &Paint, w: &mut dyn Write) -> io::Result<()> {
    let bad = notable(r);
    if bad.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{}", p.bold("Findings to look at:"))?;
    for (c, f) in bad {
        writeln!(
            w,
            "  {} {} {}: {}",
            p.status(f.status),
            r.label(c),
            f.id,
            f.message
        )?;
        if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
            writeln!(w, "          expected: {e}")?;
            writeln!(w, "          actual:   {a}")?;
        }
    }
    Ok(())
}

/// A short note after a check's line: why it could not run, or the fact a reader wants at a glance.
fn note(c: &crate::outcome::Outcome) -> String {
    if let Some(e) = &c.error {
        return format!("  {}: {}", e.kind, e.message);
    }
    let mut parts = Vec::new();
    if let Some(tls) = c.details.tls() {
        parts.push(format!(
            "{}, certificate expires in {} days",
            tls.version, tls.days_left
        ));
    }
    if let Some(h) = c.details.headers() {
        parts.push(format!("grade {} (score {})", h.grade, h.score));
    }
    if let Some(d) = c.details.dns() {
        let mut answer = d
            .answers
            .first()
            .cloned()
            .unwrap_or_else(|| "no answer".into());
        if d.answers_total > 1 {
            answer.push_str(&format!(" and {} more", d.answers_total - 1));
        }
        parts.push(format!("{}, {answer}", d.rcode));
    }
    if let Some(g) = c.details.grpc().filter(|g| !g.status.is_empty()) {
        parts.push(g.status.clone());
    }
    if c.attempts.len() > 1 {
        parts.push(format!("after {} attempts", c.attempts.len()));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  {}", parts.join("; "))
    }
}

/// A flow's steps as a short tree under its line.
fn write_steps(c: &crate::outcome::Outcome, p: &Paint, w: &mut dyn Write) -> io::Result<()> {
    let Some(flow) = c.details.flow() else {
        return Ok(());
    };
    for (i, s) in flow.steps.iter().enumerate() {
        let branch = if i + 1 == flow.steps.len() {
            "└─"
        } else {
            "├─"
        };
        let (mark, rest) = match &s.run {
            None => ("○".to_string(), "skipped".to_string()),
            Some(run) => {
                let st = if s.status == "pass" {
                    Status::Pass
                } else {
                    Status::Fail
                };
                let http = run
                    .http_status
                    .map_or("no response".to_string(), |h| h.to_string());
                (
                    p.mark(st),
                    format!("{} {http} {:.1}ms", run.method, run.duration_ms),
                )
            }
        };
        writeln!(w, "      {branch} {mark} {}  {rest}", s.name)?;
    }
    Ok(())
}

/// A latency run's percentiles and a small histogram.
fn write_latency(c: &crate::outcome::Outcome, w: &mut dyn Write) -> io::Result<()> {
    let Some(l) = c.details.latency() else {
        return Ok(());
    };
    writeln!(
        w,
        "      p50 {:.1}ms  p90 {:.1}ms  p95 {:.1}ms  p99 {:.1}ms  p99.9 {:.1}ms  max {:.1}ms  mean {:.1}ms",
        l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p99_9_ms, l.max_ms, l.mean_ms
    )?;
    writeln!(
        w,
        "      {}, {} ({:.2}%), {:.1} req/s",
        super::count(l.requests, "request"),
        super::count(l.errors, "error"),
        l.error_rate * 100.0,
        l.throughput_rps
    )?;
    let most = l
        .histogram
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1);
    for b in &l.histogram {
        let bar = "█".repeat((b.count * 30).div_ceil(most) as usize);
        writeln!(w, "      ≤{:>9.1}ms {bar} {}", b.le_ms, b.count)?;
    }
    Ok(())
}
