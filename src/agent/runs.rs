//! Runs asked for through the API: bounded by the same limit as scheduled runs, shared between
//! concurrent requests for the same check, and rate-limited, so a pipeline (or anyone with the
//! token) cannot turn the agent into a load generator against the target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::State;
use super::scheduler::Key;
use crate::outcome::Outcome;

type Run = Shared<BoxFuture<'static, Option<Outcome>>>;

/// Runs under way, and the budget for starting new ones.
pub struct OnDemand {
    inflight: Mutex<HashMap<Key, Run>>,
    bucket: Mutex<Bucket>,
}

/// A token bucket refilled at `per_minute` tokens a minute, holding at most that many.
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Default for OnDemand {
    fn default() -> Self {
        OnDemand {
            inflight: Mutex::new(HashMap::new()),
            bucket: Mutex::new(Bucket {
                tokens: f64::MAX,
                last: Instant::now(),
            }),
        }
    }
}

impl Bucket {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self, per_minute: u32) -> Result<(), Duration> {
        let cap = f64::from(per_minute.max(1));
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * cap / 60.0;
        self.tokens = (self.tokens.min(cap) + refill).min(cap);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) * 60.0 / cap))
        }
    }
}

impl OnDemand {
    /// Runs `keys` now, joining any run of the same check already under way. `Err` says when to
    /// try again when the request would start runs beyond the rate.
    pub async fn run(
        state: &Arc<State>,
        keys: &[Key],
        per_minute: u32,
    ) -> Result<Vec<Outcome>, Duration> {
        let runs: Vec<Run> = {
            let me = &state.on_demand;
            let Ok(mut inflight) = me.inflight.lock() else {
                return Ok(Vec::new());
            };
            let starts = keys.iter().any(|k| !inflight.contains_key(k));
            if starts {
                me.bucket
                    .lock()
                    .map_err(|_| Duration::from_secs(1))?
                    .take(per_minute)?;
            }
            keys.iter()
                .map(|k| {
                    inflight
                        .entry(k.clone())
                        .or_insert_with(|| start(state.clone(), k.clone()))
                        .clone()
                })
                .collect()
        };
        Ok(futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect())
    }
}

/// One run in its own task, so a caller that hangs up does not cancel it for the others.
fn start(state: Arc<State>, key: Key) -> Run {
    let task = tokio::spawn(async move {
        let outcome = match state.limit.clone().acquire_owned().await {
            Ok(_permit) => state.run(&key).await,
            Err(_) => None,
        };
        if let Some(o) = &outcome {
            state.record(&key, o.clone());
        }
        if let Ok(mut inflight) = state.on_demand.inflight.lock() {
            inflight.remove(&key);
        }
        outcome
    });
    async move { task.await.ok().flatten() }.boxed().shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_refills_at_its_rate() {
        let mut b = Bucket {
            tokens: f64::MAX,
            last: Instant::now(),
        };
        assert!(b.take(2).is_ok() && b.take(2).is_ok());
        let wait = b.take(2).unwrap_err();
        assert_eq!(wait.as_secs(), 30);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(b.take(2).is_ok());
    }
}
