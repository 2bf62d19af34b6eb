//! The Markdown report, for pull-request comments and chat.

use std::io::{self, Write};

use super::{Report, ms, notable};
use crate::outcome::Status;

fn icon(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅",
        Status::Warn => "⚠️",
        Status::Fail => "❌",
        Status::Error => "🛑",
    }
}

/// Table cells cannot hold pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub fn write(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    let s = r.summary();
    let target = if r.target.is_empty() {
        String::new()
    } else {
        format!(" — {}", r.target)
    };
    writeln!(
        w,
        "### {} shipwatch: {} · {}{target}",
        icon(r.status()),
        r.status().as_str().to_uppercase(),
        cell(&r.environment)
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{} pass · {} warn · {} fail · {} error · {:.0} ms · {}",
        s.pass,
        s.warn,
        s.fail,
        s.error,
        ms(r.duration),
        r.started_rfc3339()
    )?;
    writeln!(w)?;
    checks_table(r, w)?;
    attempts_table(r, w)?;
    findings_table(r, w)
}

fn checks_table(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "| | Check | Kind | Status | Time |")?;
    writeln!(w, "|---|---|---|---|---:|")?;
    for c in &r.checks {
        let status = match &c.error {
            Some(e) => format!("error: {}", cell(&e.message)),
            None => c.status.as_str().to_string(),
        };
        writeln!(
            w,
            "| {} | `{}` | {} | {} | {:.1} ms |",
            icon(c.status),
            cell(&r.label(c)),
            c.kind,
            status,
            ms(c.duration)
        )?;
    }
    Ok(())
}

/// Every `--wait` attempt of the checks that needed more than one.
fn attempts_table(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    let retried: Vec<_> = r.checks.iter().filter(|c| c.attempts.len() > 1).collect();
    if !retried.is_empty() {
        writeln!(w)?;
        writeln!(w, "| Check | Attempt | At | Status | Summary |")?;
        writeln!(w, "|---|---:|---:|---|---|")?;
        for c in retried {
            for a in &c.attempts {
                writeln!(
                    w,
                    "| `{}` | {} | {:.1} s | {} {} | {} |",
                    cell(&r.label(c)),
                    a.number,
                    a.at_s,
                    icon(a.status),
                    a.status.as_str(),
                    cell(&a.summary)
                )?;
            }
        }
    }
    Ok(())
}

/// The failures and warnings, with expected vs actual.
fn findings_table(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    let bad = notable(r);
    if !bad.is_empty() {
        writeln!(w)?;
        writeln!(w, "| Check | Finding | Status | Expected | Actual |")?;
        writeln!(w, "|---|---|---|---|---|")?;
        for (c, f) in bad {
            writeln!(
                w,
                "| `{}` | `{}` | {} {} | {} | {} |",
                cell(&r.label(c)),
                f.id,
                icon(f.status),
                f.status.as_str(),
                cell(f.expected.as_deref().unwrap_or("")),
                cell(f.actual.as_deref().unwrap_or(""))
            )?;
        }
    }
    Ok(())
}
