//! The rollout gate's request: Flagger's webhook payload (`{"name", "namespace", "phase",
//! "checksum", "metadata": {…}}`), which Argo Rollouts' `web` metric provider can send too.
//! `metadata.env` names the environment (optional when there is one) and `metadata.checks` the
//! checks, comma-separated (all of the environment's when absent).

use std::sync::Arc;

use serde::Deserialize;

use super::State;
use super::scheduler::Key;

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

/// Why a gate request cannot run: an HTTP status and a sentence.
pub(super) type Refusal = (u16, String);

/// The checks a gate request asks for. `authorized` judges `metadata.token` (empty when absent)
/// and knows whether the request's bearer token was already right.
pub(super) fn keys(
    state: &Arc<State>,
    body: &[u8],
    authorized: impl Fn(&str) -> bool,
) -> Result<Vec<Key>, Refusal> {
    let parsed: Result<Payload, _> = serde_json::from_slice(body);
    let token = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.metadata.get("token").cloned())
        .unwrap_or_default();
    if !authorized(&token) {
        return Err((
            401,
            "a valid bearer token, or metadata.token, is required".into(),
        ));
    }
    let p = parsed.map_err(|e| {
        (
            400,
            format!("the body is not a Flagger webhook payload (JSON with `metadata`): {e}"),
        )
    })?;
    let loaded = state
        .loaded
        .read()
        .map_err(|_| (500, "state unavailable".to_string()))?
        .clone();
    let env = pick_env(&loaded, p.metadata.get("env"))?;
    let keys = pick_checks(&loaded, &env, p.metadata.get("checks"))?;
    if keys.is_empty() {
        return Err((404, format!("no check runs in \"{env}\" on this agent")));
    }
    tracing::info!(
        rollout = %p.name, namespace = %p.namespace, phase = %p.phase, checks = keys.len(),
        "rollout gate: running checks"
    );
    Ok(keys)
}

/// The environment named, or the only one.
fn pick_env(loaded: &super::Loaded, named: Option<&String>) -> Result<String, Refusal> {
    let envs: Vec<&String> = loaded.envs.keys().collect();
    match (named, envs.as_slice()) {
        (Some(e), _) if loaded.envs.contains_key(e) => Ok(e.clone()),
        (Some(e), _) => Err((
            404,
            format!("no environment \"{e}\" (there are: {})", join(&envs)),
        )),
        (None, [one]) => Ok((*one).clone()),
        (None, _) => Err((400, format!("set metadata.env to one of {}", join(&envs)))),
    }
}

/// The checks named (comma-separated) that this agent runs in `env`, or all of them.
fn pick_checks(
    loaded: &super::Loaded,
    env: &str,
    named: Option<&String>,
) -> Result<Vec<Key>, Refusal> {
    let of_env: Vec<&Key> = loaded.jobs.keys().filter(|k| &*k.env == env).collect();
    let Some(list) = named.filter(|c| !c.trim().is_empty()) else {
        return Ok(of_env.into_iter().cloned().collect());
    };
    let wanted: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !of_env.iter().any(|k| &*k.check == *w))
        .collect();
    if !unknown.is_empty() {
        return Err((404, format!("no check {} in \"{env}\"", unknown.join(", "))));
    }
    Ok(of_env
        .into_iter()
        .filter(|k| wanted.contains(&&*k.check))
        .cloned()
        .collect())
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
