//! Durability in `state_dir`: the alert states and the notification outbox. Every write goes to
//! a temporary file, is synced, then renamed over the old one, so a crash leaves either the old
//! or the new file. A notification is on disk before any send is tried, and leaves only after
//! its sink accepted it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::{AlertState, Notification};

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Moves an unreadable file aside so the agent starts clean instead of crash-looping.
fn set_aside(path: &Path, why: &str) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = path.with_extension(format!("corrupt-{stamp}"));
    let _ = std::fs::rename(path, &aside);
    format!(
        "{} is unreadable ({why}); moved to {}",
        path.display(),
        aside.display()
    )
}

/// Loads the alert states; a corrupt file is set aside and reported.
pub(crate) fn load_states(path: &Path) -> (BTreeMap<String, AlertState>, Option<String>) {
    match std::fs::read(path) {
        Err(_) => (BTreeMap::new(), None),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => (s, None),
            Err(e) => (BTreeMap::new(), Some(set_aside(path, &e.to_string()))),
        },
    }
}

/// One notification waiting for one sink.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub sink: String,
    pub notification: Notification,
    /// On disk. An entry that could not be written is kept in memory, delivered from there, and
    /// written again until it is.
    #[serde(skip, default = "on_disk")]
    pub durable: bool,
}

fn on_disk() -> bool {
    true
}

/// The outbox: one file per entry, named by sequence so the order survives restarts.
#[derive(Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    next: u64,
    pending: BTreeMap<u64, Entry>,
}

impl Outbox {
    /// Opens (and creates) `dir`, loading what a previous run left; corrupt entries are set aside.
    pub fn open(dir: &Path) -> std::io::Result<(Outbox, Vec<String>)> {
        std::fs::create_dir_all(dir)?;
        let mut pending = BTreeMap::new();
        let mut warnings = Vec::new();
        for e in std::fs::read_dir(dir)?.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
            {
                Some(entry) => {
                    pending.insert(entry.seq, entry);
                }
                None => warnings.push(set_aside(&p, "not a notification")),
            }
        }
        let next = pending.keys().next_back().map_or(1, |s| s + 1);
        Ok((
            Outbox {
                dir: dir.to_path_buf(),
                next,
                pending,
            },
            warnings,
        ))
    }

    /// Stores a notification for a sink. It is on disk when this returns `Ok`; on an error it is
    /// kept in memory all the same, and [`Outbox::persist`] tries again.
    pub fn push(&mut self, sink: &str, notification: Notification) -> std::io::Result<u64> {
        let seq = self.next;
        self.next += 1;
        let mut entry = Entry {
            seq,
            sink: sink.to_string(),
            notification,
            durable: false,
        };
        let written = self.write(&entry);
        entry.durable = written.is_ok();
        self.pending.insert(seq, entry);
        written.map(|_| seq)
    }

    fn write(&self, entry: &Entry) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        write_atomic(&self.path(entry.seq), &bytes)
    }

    /// Writes every entry that is only in memory; the first error stops it.
    pub(crate) fn persist(&mut self) -> std::io::Result<()> {
        let waiting: Vec<u64> = self
            .pending
            .values()
            .filter(|e| !e.durable)
            .map(|e| e.seq)
            .collect();
        for seq in waiting {
            if let Some(e) = self.pending.get(&seq) {
                self.write(e)?;
            }
            if let Some(e) = self.pending.get_mut(&seq) {
                e.durable = true;
            }
        }
        Ok(())
    }

    /// True when every waiting entry is on disk.
    pub(crate) fn durable(&self) -> bool {
        self.pending.values().all(|e| e.durable)
    }

    /// Every waiting entry, oldest first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.pending.values()
    }

    /// What waits for `sink`, oldest first.
    pub(crate) fn pending_for(&self, sink: &str) -> Vec<Entry> {
        self.pending
            .values()
            .filter(|e| e.sink == sink)
            .cloned()
            .collect()
    }

    /// Forgets delivered entries.
    pub fn remove(&mut self, seqs: &[u64]) {
        for s in seqs {
            self.pending.remove(s);
            let _ = std::fs::remove_file(self.path(*s));
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:012}.json"))
    }

    /// Drops entries older than `max_age` (by the time of their notification) and, beyond `max`
    /// entries, the oldest. Returns each dropped entry with the reason.
    pub(crate) fn prune(
        &mut self,
        max: usize,
        max_age: std::time::Duration,
        now: u64,
    ) -> Vec<(Entry, Drop)> {
        let cutoff = now.saturating_sub(max_age.as_secs());
        let mut gone: Vec<(u64, Drop)> = self
            .pending
            .values()
            .filter(|e| e.notification.at < cutoff)
            .map(|e| (e.seq, Drop::Expired))
            .collect();
        let over = (self.pending.len() - gone.len()).saturating_sub(max);
        let expired: std::collections::BTreeSet<u64> = gone.iter().map(|(s, _)| *s).collect();
        gone.extend(
            self.pending
                .keys()
                .filter(|s| !expired.contains(s))
                .take(over)
                .map(|s| (*s, Drop::Overflow)),
        );
        let mut dropped = Vec::new();
        for (seq, why) in gone {
            if let Some(e) = self.pending.remove(&seq) {
                let _ = std::fs::remove_file(self.path(seq));
                dropped.push((e, why));
            }
        }
        dropped
    }
}

/// Why the outbox dropped an undelivered notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Older than `outbox_max_age`.
    Expired,
    /// Beyond `outbox_max` waiting notifications.
    Overflow,
}

impl Drop {
    /// The `outcome` label it is counted under.
    pub fn outcome(self) -> &'static str {
        match self {
            Drop::Expired => "expired",
            Drop::Overflow => "dropped",
        }
    }
}

/// A notification its receiver refused for good, with the receiver's answer. It waits in
/// `state_dir/dead/` for `shipwatch notify --retry-dead`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeadLetter {
    pub sink: String,
    pub notification: Notification,
    pub answer: String,
    /// Unix seconds of the refusal.
    pub at: u64,
}

/// Why a dead letter cannot be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LetterError {
    #[error("{0}")]
    Read(std::io::Error),
    #[error("not a dead letter: {0}")]
    Parse(serde_json::Error),
}

/// The dead-letter folder: one file per refused notification, named by time and sequence.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetters {
    dir: PathBuf,
}

impl DeadLetters {
    pub fn new(dir: PathBuf) -> DeadLetters {
        DeadLetters { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps a refused notification; it is on disk when this returns `Ok`.
    pub(crate) fn bury(&self, seq: u64, letter: &DeadLetter) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{:010}-{seq:012}.json", letter.at));
        let bytes = serde_json::to_vec_pretty(letter).map_err(std::io::Error::other)?;
        write_atomic(&path, &bytes)?;
        Ok(path)
    }

    /// Every dead letter, oldest first. An unreadable file is reported by its path.
    pub fn list(&self) -> Vec<(PathBuf, Result<DeadLetter, LetterError>)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let letter = std::fs::read(&p)
                    .map_err(LetterError::Read)
                    .and_then(|b| serde_json::from_slice(&b).map_err(LetterError::Parse));
                (p, letter)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(check: &str) -> Notification {
        Notification::sample(check)
    }

    #[test]
    fn survives_a_reopen_in_order_and_sets_corrupt_files_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path()).unwrap();
        o.push("slack", n("a")).unwrap();
        let b = o.push("hook", n("b")).unwrap();
        o.push("slack", n("c")).unwrap();
        o.remove(&[b]);
        std::fs::write(dir.path().join("999999999999.json"), b"{half a notifi").unwrap();
        let (o, warnings) = Outbox::open(dir.path()).unwrap();
        assert_eq!(
            o.pending_for("slack")
                .iter()
                .map(|e| e.notification.check.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert!(o.pending_for("hook").is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("moved to"));
        let (mut o2, _) = Outbox::open(dir.path()).unwrap();
        assert_eq!(
            o2.push("slack", n("d")).unwrap(),
            4,
            "sequence numbers continue after a restart"
        );
    }

    #[test]
    fn prune_drops_the_expired_then_the_oldest_beyond_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path()).unwrap();
        let mut old = n("old");
        old.at = 100;
        o.push("s", old).unwrap();
        for c in ["a", "b", "c", "d"] {
            let mut x = n(c);
            x.at = 10_000;
            o.push("s", x).unwrap();
        }
        let gone = o.prune(3, std::time::Duration::from_secs(3600), 10_000);
        let what: Vec<(&str, Drop)> = gone
            .iter()
            .map(|(e, d)| (e.notification.check.as_str(), *d))
            .collect();
        assert_eq!(what, [("old", Drop::Expired), ("a", Drop::Overflow)]);
        assert_eq!(o.len(), 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn dead_letters_are_kept_in_order_with_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let dead = DeadLetters::new(dir.path().join("dead"));
        for (seq, at) in [(7, 200), (3, 100)] {
            let letter = DeadLetter {
                sink: "hook".into(),
                notification: n(&format!("c{seq}")),
                answer: "hook answered 400: no".into(),
                at,
            };
            dead.bury(seq, &letter).unwrap();
        }
        std::fs::write(dead.dir().join("0000000300-000000000009.json"), b"{").unwrap();
        let list = dead.list();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].1.as_ref().unwrap().notification.check, "c3");
        assert_eq!(list[1].1.as_ref().unwrap().answer, "hook answered 400: no");
        assert!(list[2].1.is_err());
    }

    #[test]
    fn corrupt_state_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        std::fs::write(&path, b"\x00\x01not json").unwrap();
        let (states, warning) = load_states(&path);
        assert!(states.is_empty());
        assert!(warning.unwrap().contains("unreadable"));
        assert!(!path.exists());
        let mut m = BTreeMap::new();
        m.insert("prod/api".to_string(), AlertState::default());
        write_atomic(&path, &serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(load_states(&path).0, m);
    }
}
