//! Reports: a run's outcomes as text, JSON, JUnit XML or Markdown, each written to any `Write`.

pub mod github;
mod json;
mod junit;
mod markdown;
mod text;

use std::io::{self, Write};
use std::time::Duration;

use time::OffsetDateTime;

use crate::outcome::Outcome;
use crate::outcome::Status;

pub use crate::units::{count, ms};
pub use json::{outcome_from_json, to_json};

/// The output formats of `shipwatch check --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
    Markdown,
    /// GitHub Actions annotations (`::error` / `::warning`); the Markdown report goes to the job
    /// summary when `GITHUB_STEP_SUMMARY` is set.
    Github,
}

/// One run, ready to render: the outcomes plus when, where and how long.
#[derive(Debug, Clone)]
pub struct Report {
    pub environment: String,
    pub target: String,
    pub started_at: OffsetDateTime,
    pub duration: Duration,
    pub checks: Vec<Outcome>,
}

/// Counts of checks by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub error: usize,
}

impl Report {
    /// True when the checks ran in more than one environment (the agent's API runs them all).
    pub(crate) fn spans_environments(&self) -> bool {
        let mut envs = self
            .checks
            .iter()
            .map(|c| c.environment.as_str())
            .filter(|e| !e.is_empty());
        envs.next()
            .is_some_and(|first| envs.any(|other| other != first))
    }

    /// The environment a check ran in.
    pub(crate) fn env_of<'a>(&'a self, c: &'a Outcome) -> &'a str {
        if c.environment.is_empty() {
            &self.environment
        } else {
            &c.environment
        }
    }

    /// A check's name in the report: with its environment when the report spans several, so two
    /// rows never read the same.
    pub fn label(&self, c: &Outcome) -> String {
        if self.spans_environments() {
            format!("{} ({})", c.name, self.env_of(c))
        } else {
            c.name.clone()
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.checks {
            match c.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Error => s.error += 1,
            }
        }
        s
    }

    /// The run's verdict: `fail` if any check failed or could not run, else `warn` if any warned.
    pub fn status(&self) -> Status {
        match self.checks.iter().map(|c| c.status).max() {
            Some(Status::Error) | Some(Status::Fail) => Status::Fail,
            Some(Status::Warn) => Status::Warn,
            _ => Status::Pass,
        }
    }

    /// The process exit code: 0 pass (warnings allowed unless `strict`), 1 otherwise.
    pub(crate) fn exit_code(&self, strict: bool) -> i32 {
        match self.status() {
            Status::Pass => 0,
            Status::Warn if !strict => 0,
            _ => 1,
        }
    }

    pub(crate) fn started_rfc3339(&self) -> String {
        self.started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.started_at.unix_timestamp().to_string())
    }

    /// Renders the report in `format`. `color` only affects text.
    pub fn write(&self, format: Format, color: bool, w: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Text => text::write(self, color, w),
            Format::Json => {
                serde_json::to_writer_pretty(&mut *w, &to_json(self))?;
                writeln!(w)
            }
            Format::Junit => junit::write(self, w),
            Format::Markdown => markdown::write(self, w),
            Format::Github => github::write(self, None, w),
        }
    }
}

/// The findings a reader must look at: failures and warnings, worst first, in check order.
pub(crate) fn notable(report: &Report) -> Vec<(&Outcome, &crate::outcome::Finding)> {
    let mut out: Vec<_> = report
        .checks
        .iter()
        .flat_map(|c| {
            c.findings
                .iter()
                .filter(|f| f.status >= Status::Warn)
                .map(move |f| (c, f))
        })
        .collect();
    out.sort_by_key(|(_, f)| std::cmp::Reverse(f.status));
    out
}
