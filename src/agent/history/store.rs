//! The history database: SQLite (bundled, through rusqlite) in WAL mode, in `state_dir`.
//!
//! SQLite because the job is an append-heavy time series read by range per check, queried with
//! aggregates, and written by one thread while the server reads: WAL gives readers that never
//! wait for the writer, one file that survives `kill -9` (a transaction is either in the log or
//! not), and `PRAGMA quick_check` to find a damaged file. The alternative, an embedded key-value
//! store, would need the roll-up aggregates and range scans written by hand.
//!
//! Tables: `series` (one row per check and environment), `runs` (every run, kept `raw`), `hourly`
//! (one roll-up per series and hour: runs, failures, duration percentiles, kept `rollups`) and
//! `incidents` (each alert from firing to resolved).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Hour, Incident, Record, RunRow, Uptime};
use crate::outcome::Status;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, check_name TEXT NOT NULL, env TEXT NOT NULL, UNIQUE (check_name, env));
CREATE TABLE IF NOT EXISTS runs (series INTEGER NOT NULL, at INTEGER NOT NULL, status INTEGER NOT NULL,
  duration_ms REAL NOT NULL, p50 REAL, p95 REAL, p99 REAL, days_left INTEGER, score INTEGER, grade TEXT, failing TEXT);
CREATE INDEX IF NOT EXISTS runs_by_series ON runs (series, at);
CREATE TABLE IF NOT EXISTS hourly (series INTEGER NOT NULL, hour INTEGER NOT NULL, runs INTEGER NOT NULL,
  failures INTEGER NOT NULL, p50 REAL, p95 REAL, p99 REAL, PRIMARY KEY (series, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, check_name TEXT NOT NULL,
  env TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, fired_at INTEGER NOT NULL, resolved_at INTEGER,
  last_event TEXT NOT NULL, last_event_at INTEGER NOT NULL, findings TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_by_time ON incidents (fired_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// Statuses as stored: the order of [`Status`].
fn status_code(s: Status) -> i64 {
    s as i64
}

/// A stored status read back; anything unknown counts as an error.
fn status_from(code: i64) -> Status {
    match code {
        0 => Status::Pass,
        1 => Status::Warn,
        2 => Status::Fail,
        _ => Status::Error,
    }
}

/// Runs that count against uptime: fail and error (pass and warn are up).
const DOWN: &str = "status >= 2";

/// Opens the database, setting aside a damaged file (`history.db.corrupt-UNIX`) and starting a
/// new one, as the alert state does.
pub(super) fn open(dir: &Path) -> Result<(Connection, Option<PathBuf>), rusqlite::Error> {
    let path = dir.join("history.db");
    match open_checked(&path) {
        Ok(c) => Ok((c, None)),
        Err(e) if path.exists() => {
            let aside = dir.join(format!("history.db.corrupt-{}", super::now_ms() / 1000));
            tracing::error!(
                "the history database {} is unusable ({e}); it is set aside as {} and a new one is started",
                path.display(),
                aside.display()
            );
            let _ = std::fs::rename(&path, &aside);
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("history.db{suffix}")));
            }
            Ok((open_checked(&path)?, Some(aside)))
        }
        Err(e) => Err(e),
    }
}

fn open_checked(path: &Path) -> Result<Connection, rusqlite::Error> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(2))?;
    // Before any table exists, so freed pages can be given back to the file system.
    c.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    // A small page cache: the writer appends and the readers look at one series at a time.
    c.pragma_update(None, "cache_size", -1024)?;
    let ok: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(ok),
        ));
    }
    c.execute_batch(SCHEMA)?;
    Ok(c)
}

/// A read-only connection for the server's queries; WAL lets it read while the writer writes.
pub(super) fn open_reader(dir: &Path) -> Result<Connection, rusqlite::Error> {
    let c = Connection::open_with_flags(
        dir.join("history.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(2))?;
    c.pragma_update(None, "cache_size", -1024)?;
    Ok(c)
}

fn series_id(c: &Connection, check: &str, env: &str) -> Result<i64, rusqlite::Error> {
    c.execute(
        "INSERT OR IGNORE INTO series (check_name, env) VALUES (?1, ?2)",
        params![check, env],
    )?;
    c.query_row(
        "SELECT id FROM series WHERE check_name = ?1 AND env = ?2",
        params![check, env],
        |r| r.get(0),
    )
}

/// The series of a check, if it ever ran.
pub(super) fn find_series(
    c: &Connection,
    check: &str,
    env: &str,
) -> Result<Option<i64>, rusqlite::Error> {
    c.query_row(
        "SELECT id FROM series WHERE check_name = ?1 AND env = ?2",
        params![check, env],
        |r| r.get(0),
    )
    .optional()
}

/// Writes a batch of runs in one transaction.
pub(super) fn insert(c: &mut Connection, batch: &[Record]) -> Result<(), rusqlite::Error> {
    let tx = c.transaction()?;
    {
        let mut ids = std::collections::HashMap::new();
        let mut stmt = tx.prepare_cached(
            "INSERT INTO runs (series, at, status, duration_ms, p50, p95, p99, days_left, score, grade, failing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for r in batch {
            let key = (r.check.as_str(), r.env.as_str());
            let id = match ids.get(&key) {
                Some(id) => *id,
                None => {
                    let id = series_id(&tx, &r.check, &r.env)?;
                    ids.insert(key, id);
                    id
                }
            };
            let failing = (!r.failing.is_empty()).then(|| r.failing.join(","));
            stmt.execute(params![
                id,
                r.at_ms,
                status_code(r.status),
                r.duration_ms,
                r.p50,
                r.p95,
                r.p99,
                r.days_left,
                r.score,
                r.grade,
                failing
            ])?;
        }
    }
    tx.commit()
}

/// Records an alert's state change: a new incident when it fires, its end when it resolves.
pub(super) fn incident(c: &Connection, i: &Incident) -> Result<(), rusqlite::Error> {
    c.execute(
        "INSERT INTO incidents (fingerprint, check_name, env, kind, severity, fired_at, resolved_at, last_event, last_event_at, findings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (fingerprint) DO UPDATE SET severity = excluded.severity, resolved_at = excluded.resolved_at,
           last_event = excluded.last_event, last_event_at = excluded.last_event_at, findings = excluded.findings",
        params![
            i.fingerprint,
            i.check,
            i.env,
            i.kind,
            i.severity,
            i.fired_at,
            i.resolved_at,
            i.last_event,
            i.last_event_at,
            i.findings.join(",")
        ],
    )?;
    Ok(())
}

fn meta(c: &Connection, key: &str) -> Result<Option<i64>, rusqlite::Error> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn set_meta(c: &Connection, key: &str, value: i64) -> Result<(), rusqlite::Error> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

const HOUR_MS: i64 = 3_600_000;

/// When the oldest run kept finished: the first by rowid, which is time order.
fn oldest_run(c: &Connection) -> Result<Option<i64>, rusqlite::Error> {
    c.query_row("SELECT at FROM runs ORDER BY rowid LIMIT 1", [], |r| {
        r.get(0)
    })
    .optional()
}

/// The value at quantile `q` of sorted `v`, by nearest rank.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1;
    v.get(i).copied()
}

/// Rolls up every complete hour not rolled up yet, at most `max_hours` of them per call so the
/// writer returns to its queue quickly. Returns how many hours were rolled up.
pub(super) fn roll_up(
    c: &mut Connection,
    now_ms: i64,
    max_hours: usize,
) -> Result<usize, rusqlite::Error> {
    let Some(first_run) = oldest_run(c)? else {
        return Ok(0);
    };
    let mut hour = meta(c, "rolled_until")?.unwrap_or(first_run / HOUR_MS * HOUR_MS);
    hour = hour.max(first_run / HOUR_MS * HOUR_MS);
    let mut done = 0;
    // An hour is complete a few seconds after it ends: a run that finished in it is written by then.
    while hour + HOUR_MS + 5_000 <= now_ms && done < max_hours {
        let tx = c.transaction()?;
        roll_hour(&tx, hour)?;
        set_meta(&tx, "rolled_until", hour + HOUR_MS)?;
        tx.commit()?;
        hour += HOUR_MS;
        done += 1;
    }
    Ok(done)
}

fn roll_hour(tx: &rusqlite::Transaction<'_>, hour: i64) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare_cached(
        "SELECT series, status, duration_ms FROM runs WHERE at >= ?1 AND at < ?2 ORDER BY series",
    )?;
    let rows = stmt.query_map(params![hour, hour + HOUR_MS], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO hourly (series, hour, runs, failures, p50, p95, p99) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut current: Option<(i64, u32, Vec<f64>)> = None;
    let mut flush = |(series, failures, mut d): (i64, u32, Vec<f64>)| {
        d.sort_by(f64::total_cmp);
        insert.execute(params![
            series,
            hour / 1000,
            d.len() as i64,
            failures,
            quantile(&d, 0.5),
            quantile(&d, 0.95),
            quantile(&d, 0.99)
        ])
    };
    for row in rows {
        let (series, status, duration) = row?;
        match &mut current {
            Some((s, failures, d)) if *s == series => {
                *failures += u32::from(status >= 2);
                d.push(duration);
            }
            _ => {
                if let Some(done) = current.take() {
                    flush(done)?;
                }
                current = Some((series, u32::from(status >= 2), vec![duration]));
            }
        }
    }
    if let Some(done) = current {
        flush(done)?;
    }
    Ok(())
}

/// Deletes what is past retention, then the oldest history while the file is over `max_bytes`,
/// a bounded chunk at a time. Returns the rows deleted.
pub(super) fn prune(
    c: &mut Connection,
    now_ms: i64,
    spec: &crate::config::HistorySpec,
) -> Result<u64, rusqlite::Error> {
    let rolled = meta(c, "rolled_until")?.unwrap_or(0);
    // Raw runs go once they are past retention and rolled up.
    let raw_cutoff = (now_ms - spec.raw.as_millis() as i64).min(rolled);
    let mut deleted = delete_runs_before(c, raw_cutoff)?;
    let rollup_cutoff = (now_ms - spec.rollups.as_millis() as i64) / 1000;
    deleted += c.execute("DELETE FROM hourly WHERE hour < ?1", [rollup_cutoff])? as u64;
    deleted += c.execute(
        "DELETE FROM incidents WHERE fired_at < ?1 AND resolved_at IS NOT NULL",
        [rollup_cutoff],
    )? as u64;
    // Over the size bound: the oldest day of raw runs (rolled up or not), then of roll-ups.
    for _ in 0..64 {
        if size(c)? <= spec.max_bytes {
            break;
        }
        let n = match oldest_run(c)? {
            Some(t) => delete_runs_before(c, t + 24 * HOUR_MS)?,
            None => {
                let h: Option<i64> =
                    c.query_row("SELECT min(hour) FROM hourly", [], |r| r.get(0))?;
                match h {
                    Some(h) => c.execute("DELETE FROM hourly WHERE hour < ?1", [h + 86400])? as u64,
                    None => 0,
                }
            }
        };
        c.execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")?;
        if n == 0 {
            break;
        }
        deleted += n;
    }
    if deleted > 0 {
        c.execute_batch("PRAGMA incremental_vacuum;")?;
    }
    Ok(deleted)
}

/// Runs are written in the order they finish, so rowid order is time order: the runs before
/// `cutoff` are the rowids below the first run at or after it, found by binary search and
/// deleted 50,000 at a time. No scan of the table, however large.
fn delete_runs_before(c: &mut Connection, cutoff: i64) -> Result<u64, rusqlite::Error> {
    let bounds: (Option<i64>, Option<i64>) =
        c.query_row("SELECT min(rowid), max(rowid) FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut lo), Some(max)) = bounds else {
        return Ok(0);
    };
    let at_from = |c: &Connection, rowid: i64| -> Result<Option<i64>, rusqlite::Error> {
        c.query_row(
            "SELECT at FROM runs WHERE rowid >= ?1 ORDER BY rowid LIMIT 1",
            [rowid],
            |r| r.get(0),
        )
        .optional()
    };
    // The first rowid whose run is at or after the cutoff (max + 1 when none is).
    let (mut a, mut b) = (lo, max + 1);
    while a < b {
        let mid = a + (b - a) / 2;
        match at_from(c, mid)? {
            Some(at) if at >= cutoff => b = mid,
            _ => a = mid + 1,
        }
    }
    let mut deleted = 0;
    while lo < a {
        let upto = (lo + 50_000).min(a);
        deleted += c.execute("DELETE FROM runs WHERE rowid < ?1", [upto])? as u64;
        lo = upto;
    }
    Ok(deleted)
}

/// The database's size on disk: its pages, plus the write-ahead log.
pub(super) fn size(c: &Connection) -> Result<u64, rusqlite::Error> {
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let freelist: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(((pages - freelist).max(0) * page) as u64)
}

/// The latest `limit` runs of a series since `since_ms`, newest first.
pub(super) fn runs(
    c: &Connection,
    series: i64,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<RunRow>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT at, status, duration_ms, p95, days_left, score, grade, failing FROM runs
         WHERE series = ?1 AND at >= ?2 ORDER BY at DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![series, since_ms, limit as i64], |r| {
        Ok(RunRow {
            at_ms: r.get(0)?,
            status: status_from(r.get(1)?),
            duration_ms: r.get(2)?,
            p95: r.get(3)?,
            days_left: r.get(4)?,
            score: r.get(5)?,
            grade: r.get(6)?,
            failing: r
                .get::<_, Option<String>>(7)?
                .map(|f| f.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// The hourly roll-ups of a series since `since_s`, oldest first.
pub(super) fn hours(
    c: &Connection,
    series: i64,
    since_s: i64,
) -> Result<Vec<Hour>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT hour, runs, failures, p50, p95, p99 FROM hourly WHERE series = ?1 AND hour >= ?2 ORDER BY hour",
    )?;
    let rows = stmt.query_map(params![series, since_s], |r| {
        Ok(Hour {
            hour_s: r.get(0)?,
            runs: r.get(1)?,
            failures: r.get(2)?,
            p50: r.get(3)?,
            p95: r.get(4)?,
            p99: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Runs and failures of a series since `since_ms`: roll-ups for the hours rolled up, raw runs for
/// the rest.
pub(super) fn uptime(
    c: &Connection,
    series: i64,
    since_ms: i64,
) -> Result<Uptime, rusqlite::Error> {
    let rolled = meta(c, "rolled_until")?.unwrap_or(0);
    let (mut runs, mut down): (i64, i64) = c.query_row(
        "SELECT coalesce(sum(runs), 0), coalesce(sum(failures), 0) FROM hourly
         WHERE series = ?1 AND hour >= ?2 AND hour < ?3",
        params![series, since_ms / 1000, rolled / 1000],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (raw_runs, raw_down): (i64, i64) = c.query_row(
        &format!(
            "SELECT count(*), coalesce(sum({DOWN}), 0) FROM runs WHERE series = ?1 AND at >= ?2"
        ),
        params![series, since_ms.max(rolled)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    runs += raw_runs;
    down += raw_down;
    Ok(Uptime { runs, down })
}

/// When the current run of failures began: the first failed run after the last one that was up.
/// Both walk the series' index from its newest end and stop at the first match.
pub(super) fn failing_since(c: &Connection, series: i64) -> Result<Option<i64>, rusqlite::Error> {
    let last_up: i64 = c
        .query_row(
            &format!(
                "SELECT at FROM runs WHERE series = ?1 AND NOT ({DOWN}) ORDER BY at DESC LIMIT 1"
            ),
            [series],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    c.query_row(
        &format!(
            "SELECT at FROM runs WHERE series = ?1 AND at > ?2 AND {DOWN} ORDER BY at LIMIT 1"
        ),
        params![series, last_up],
        |r| r.get(0),
    )
    .optional()
}

/// Incidents, newest first.
pub(super) fn incidents(c: &Connection, limit: usize) -> Result<Vec<Incident>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT fingerprint, check_name, env, kind, severity, fired_at, resolved_at, last_event, last_event_at, findings
         FROM incidents ORDER BY fired_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Incident {
            fingerprint: r.get(0)?,
            check: r.get(1)?,
            env: r.get(2)?,
            kind: r.get(3)?,
            severity: r.get(4)?,
            fired_at: r.get(5)?,
            resolved_at: r.get(6)?,
            last_event: r.get(7)?,
            last_event_at: r.get(8)?,
            findings: r
                .get::<_, String>(9)?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(check: &str, at_ms: i64, status: Status, duration_ms: f64) -> Record {
        Record {
            at_ms,
            check: check.into(),
            env: "prod".into(),
            status,
            duration_ms,
            p50: None,
            p95: None,
            p99: None,
            days_left: None,
            score: None,
            grade: None,
            failing: if status >= Status::Fail {
                vec!["http.status".into()]
            } else {
                Vec::new()
            },
        }
    }

    /// Four hours of one run a minute, the third hour failing; `now` is 30 minutes into the
    /// fifth hour.
    fn four_hours(c: &mut Connection) -> i64 {
        let start = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
        let batch: Vec<Record> = (0..4 * 60 + 30)
            .map(|m| {
                let at = start + m * 60_000;
                let status = if m / 60 == 2 {
                    Status::Fail
                } else {
                    Status::Pass
                };
                record("api", at, status, 10.0 + (m % 60) as f64)
            })
            .collect();
        insert(c, &batch).unwrap();
        start + 4 * HOUR_MS + 30 * 60_000
    }

    #[test]
    fn complete_hours_roll_up_and_uptime_adds_them_to_the_raw_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = open(dir.path()).unwrap();
        let now = four_hours(&mut c);
        assert_eq!(roll_up(&mut c, now, 24).unwrap(), 4);
        // Nothing more until the current hour is complete.
        assert_eq!(roll_up(&mut c, now, 24).unwrap(), 0);
        let series = find_series(&c, "api", "prod").unwrap().unwrap();
        let h = hours(&c, series, 0).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!((h[2].runs, h[2].failures), (60, 60));
        assert_eq!((h[0].p50, h[0].p99), (Some(39.0), Some(69.0)));
        let all = uptime(&c, series, 0).unwrap();
        assert_eq!((all.runs, all.down), (270, 60));
        // Since the middle of the failing hour: the roll-ups count whole hours from the one
        // that starts after it, and the raw runs fill in the current hour.
        let last_two = uptime(&c, series, now - 90 * 60_000).unwrap();
        assert_eq!((last_two.runs, last_two.down), (90, 0));
        assert_eq!(failing_since(&c, series).unwrap(), None);
    }

    #[test]
    fn a_failing_streak_starts_at_its_first_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = open(dir.path()).unwrap();
        let runs = [
            Status::Fail,
            Status::Pass,
            Status::Warn,
            Status::Fail,
            Status::Error,
        ];
        let batch: Vec<Record> = runs
            .iter()
            .enumerate()
            .map(|(i, s)| record("api", 1000 * i as i64, *s, 1.0))
            .collect();
        insert(&mut c, &batch).unwrap();
        let series = find_series(&c, "api", "prod").unwrap().unwrap();
        assert_eq!(failing_since(&c, series).unwrap(), Some(3000));
        assert_eq!(runs_since(&c, series), 5);
    }

    fn runs_since(c: &Connection, series: i64) -> usize {
        runs(c, series, 0, 1000).unwrap().len()
    }

    #[test]
    fn retention_keeps_raw_runs_until_rolled_up_then_bounds_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = open(dir.path()).unwrap();
        let now = four_hours(&mut c);
        let series = find_series(&c, "api", "prod").unwrap().unwrap();
        let spec = crate::config::HistorySpec {
            raw: Duration::from_secs(3600),
            rollups: Duration::from_secs(90 * 86400),
            max_bytes: 1 << 30,
        };
        // Not rolled up yet: nothing goes, however old.
        assert_eq!(prune(&mut c, now, &spec).unwrap(), 0);
        roll_up(&mut c, now, 24).unwrap();
        let deleted = prune(&mut c, now, &spec).unwrap();
        assert_eq!(deleted, 210, "the runs older than an hour");
        assert_eq!(runs_since(&c, series), 60);
        // Uptime over everything is unchanged: the roll-ups carry the deleted runs.
        let all = uptime(&c, series, 0).unwrap();
        assert_eq!((all.runs, all.down), (270, 60));
        // Over the size bound, the oldest history goes.
        let tiny = crate::config::HistorySpec {
            max_bytes: 1,
            ..spec
        };
        prune(&mut c, now, &tiny).unwrap();
        assert_eq!(runs_since(&c, series), 0);
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("history.db"), vec![0x5a; 8192]).unwrap();
        let (mut c, aside) = open(dir.path()).unwrap();
        let aside = aside.expect("set aside");
        assert!(aside.exists());
        insert(&mut c, &[record("api", 1, Status::Pass, 1.0)]).unwrap();
    }
}
