//! The scheduler: one task per check and environment, each on its own jittered interval, with a
//! bound on how many run at once. A slow check only delays itself.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::outcome::Outcome;

/// What identifies a scheduled check: its name and environment. The agent keeps a key per check
/// in several maps; the names are shared, not copied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub check: Arc<str>,
    pub env: Arc<str>,
}

impl Key {
    pub fn new(check: &str, env: &str) -> Key {
        Key {
            check: Arc::from(check),
            env: Arc::from(env),
        }
    }
}

/// Runs one check once; the agent passes the real runner, tests a counting one.
pub(crate) type RunFn =
    Arc<dyn Fn(Key) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// Takes a finished run and the pair it belongs to (the agent records it where the run ended,
/// with no hop to another task).
pub(crate) type DoneFn = Arc<dyn Fn(&Key, Outcome) + Send + Sync>;

/// A running check task. Dropping it does not stop it; `stop` does.
pub struct Task {
    /// A permit here stops the task at its next wait (a watch channel would cost ten times the
    /// memory, per check).
    stop: Arc<Notify>,
    handle: JoinHandle<()>,
}

impl Task {
    /// Asks the task to stop after its current run, and waits at most `grace` for it.
    pub async fn stop(self, grace: Duration) {
        self.stop.notify_one();
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(grace, self.handle).await.is_err() {
            abort.abort();
        }
    }
}

/// A small deterministic generator: jitter must differ between checks, not between builds.
struct Jitter(u64);

impl Jitter {
    fn new(key: &Key) -> Jitter {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        Jitter(h.finish() | 1)
    }

    /// A fraction in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Starts the loop for one check. The first run comes after a jittered fraction of the interval
/// (at most 5 s, so a fresh agent is ready quickly); later runs every interval ± 10%.
pub fn spawn(
    key: Key,
    interval: Duration,
    limit: Arc<Semaphore>,
    run: RunFn,
    done: DoneFn,
) -> Task {
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let handle = tokio::spawn(async move {
        let mut jitter = Jitter::new(&key);
        let mut next = Instant::now() + interval.min(Duration::from_secs(5)).mul_f64(jitter.next());
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = stopped.notified() => return,
            }
            let started = Instant::now();
            let outcome = {
                let Ok(_permit) = limit.acquire().await else {
                    return;
                };
                run(key.clone()).await
            };
            done(&key, outcome);
            // Runs never stack: the next one is scheduled from when this one started, and never in the past.
            let spread = interval.mul_f64(0.9 + 0.2 * jitter.next());
            next = (started + spread).max(Instant::now());
        }
    });
    Task { stop, handle }
}

/// Keeps the check × environment pairs whose stable hash falls in shard `index` of `count`.
pub(crate) fn in_shard(key: &Key, index: u64, count: u64) -> bool {
    count <= 1 || shard_of(key, count) == index
}

/// The shard that runs `key` among `count`, by rendezvous (highest random weight) hashing: each
/// shard scores the pair and the highest score wins. Going from N to N+1 shards moves only the
/// pairs the new shard now wins, about 1/(N+1) of them, so the rest keep their agent, and with it
/// their history and alert state.
pub fn shard_of(key: &Key, count: u64) -> u64 {
    // FNV-1a of the pair: stable across builds and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.check.bytes().chain([0]).chain(key.env.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (0..count.max(1))
        .max_by_key(|shard| (mix(h ^ mix(*shard + 1)), std::cmp::Reverse(*shard)))
        .unwrap_or(0)
}

/// SplitMix64's finaliser: spreads every input bit over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    fn keys() -> Vec<Key> {
        (0..10_000)
            .map(|i| Key {
                check: format!("check-{i}").into(),
                env: ["prod", "staging"][i % 2].into(),
            })
            .collect()
    }

    /// Growing from 3 agents to 4 moves about a quarter of the checks, and only to the new one.
    #[test]
    fn resizing_moves_only_what_the_new_shard_takes() {
        let keys = keys();
        for (from, to) in [(3u64, 4u64), (4, 5), (1, 2)] {
            let moved: Vec<&Key> = keys
                .iter()
                .filter(|k| shard_of(k, from) != shard_of(k, to))
                .collect();
            assert!(moved.iter().all(|k| shard_of(k, to) == to - 1));
            let share = moved.len() as f64 / keys.len() as f64;
            let ideal = 1.0 / to as f64;
            assert!((share - ideal).abs() < 0.02, "{from}→{to}: {share}");
            eprintln!(
                "{from} → {to} agents: {:.1}% of 10,000 pairs moved",
                share * 100.0
            );
        }
        // Every pair has exactly one shard, and the shards are even within 5%.
        let mut per = [0usize; 4];
        for k in &keys {
            per[shard_of(k, 4) as usize] += 1;
            assert_eq!((0..4).filter(|i| in_shard(k, *i, 4)).count(), 1);
        }
        assert!(per.iter().all(|n| (2375..=2625).contains(n)), "{per:?}");
        eprintln!("4 agents: {per:?} pairs each");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::outcome::Status;

    fn outcome(key: &Key) -> Outcome {
        let err = crate::outcome::ProbeError {
            kind: "setup",
            message: "test".into(),
        };
        let mut o = Outcome::could_not_run(&key.check, "http", &key.env, err);
        o.status = Status::Pass;
        o
    }

    /// A runner that records when each check ran and takes `cost` (longer for the "slow" check).
    fn recording(log: Arc<Mutex<Vec<(String, Duration)>>>, t0: Instant) -> RunFn {
        Arc::new(move |key: Key| {
            let log = log.clone();
            Box::pin(async move {
                let cost = if &*key.check == "slow" {
                    Duration::from_secs(45)
                } else {
                    Duration::from_millis(100)
                };
                tokio::time::sleep(cost).await;
                log.lock()
                    .unwrap()
                    .push((key.check.to_string(), t0.elapsed()));
                outcome(&key)
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn each_check_keeps_its_own_interval_and_a_slow_one_delays_nobody() {
        let t0 = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        let tx: DoneFn = Arc::new(move |_: &Key, o| {
            let _ = tx.try_send(o);
        });
        let limit = Arc::new(Semaphore::new(8));
        let key = |c: &str| Key {
            check: c.into(),
            env: "prod".into(),
        };
        let tasks = vec![
            spawn(
                key("fast"),
                Duration::from_secs(10),
                limit.clone(),
                recording(log.clone(), t0),
                tx.clone(),
            ),
            spawn(
                key("slow"),
                Duration::from_secs(10),
                limit.clone(),
                recording(log.clone(), t0),
                tx.clone(),
            ),
            spawn(
                key("hourly"),
                Duration::from_secs(3600),
                limit.clone(),
                recording(log.clone(), t0),
                tx.clone(),
            ),
        ];
        drop(tx);
        tokio::time::sleep(Duration::from_secs(120)).await;
        let runs = log.lock().unwrap().clone();
        let count = |name: &str| runs.iter().filter(|(c, _)| c == name).count();
        // 120 s at 10 s ± 10%: 11 to 14 runs; the slow check runs back to back, never stacked.
        assert!(
            (11..=14).contains(&count("fast")),
            "fast ran {} times",
            count("fast")
        );
        assert!(
            (2..=3).contains(&count("slow")),
            "slow ran {} times",
            count("slow")
        );
        assert_eq!(
            count("hourly"),
            1,
            "the first run comes within 5 s, the next after an hour"
        );
        for t in tasks {
            t.stop(Duration::from_secs(1)).await;
        }
        let mut received = 0;
        while rx.recv().await.is_some() {
            received += 1;
        }
        assert_eq!(
            received,
            runs.len(),
            "every run's outcome reached the agent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let run: RunFn = {
            let (running, peak) = (running.clone(), peak.clone());
            Arc::new(move |key: Key| {
                let (running, peak) = (running.clone(), peak.clone());
                Box::pin(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    outcome(&key)
                })
            })
        };
        let (tx, _rx) = tokio::sync::mpsc::channel(10_000);
        let tx: DoneFn = Arc::new(move |_: &Key, o| {
            let _ = tx.try_send(o);
        });
        let limit = Arc::new(Semaphore::new(4));
        let tasks: Vec<Task> = (0..50)
            .map(|i| {
                spawn(
                    Key {
                        check: format!("c{i}").into(),
                        env: "e".into(),
                    },
                    Duration::from_secs(10),
                    limit.clone(),
                    run.clone(),
                    tx.clone(),
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(peak.load(Ordering::SeqCst), 4);
        for t in tasks {
            t.stop(Duration::from_secs(5)).await;
        }
    }

    #[test]
    fn shards_split_every_pair_exactly_once() {
        let keys: Vec<Key> = (0..300)
            .map(|i| Key {
                check: format!("check-{i}").into(),
                env: ["a", "b"][i % 2].into(),
            })
            .collect();
        let mut counts = [0usize; 3];
        for k in &keys {
            let owners: Vec<u64> = (0..3).filter(|i| in_shard(k, *i, 3)).collect();
            assert_eq!(owners.len(), 1);
            counts[owners[0] as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 60), "{counts:?}");
        assert!(keys.iter().all(|k| in_shard(k, 0, 1)));
    }
}
