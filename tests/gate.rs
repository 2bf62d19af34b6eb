//! Rollout gates: `POST /api/v1/gate` answering requests shaped exactly like Flagger's webhooks
//! and Argo Rollouts' `web` metric, both taken from the shipped manifests; the manifests checked
//! against the Kubernetes schema; and `--format github` for GitHub Actions.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const TOKEN: &str = "gate-token-5a6b7c";

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The checks the manifests name, in a canary environment whose login is broken and a healthy
/// production one.
fn config(dir: &Path, port: u16, site: &str) -> PathBuf {
    let text = format!(
        r#"[agent]
listen = "127.0.0.1:{port}"
interval = "1h"
state_dir = "{state}"
api_token = {{ env = "SW_GATE_TOKEN" }}
[env.canary]
base_url = "{site}/canary"
[env.prod]
base_url = "{site}/prod"
[[check]]
name = "health"
kind = "http"
url = "{{{{ base_url }}}}/health"
[[check]]
name = "login"
kind = "http"
url = "{{{{ base_url }}}}/login"
[[check]]
name = "security-headers"
kind = "http"
url = "{{{{ base_url }}}}/"
[[check]]
name = "health-latency"
kind = "latency"
url = "{{{{ base_url }}}}/health"
requests = 3
"#,
        state = dir.join("state").display()
    );
    let path = dir.join("shipwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn site() -> Server {
    http_server(|r| match r.path.as_str() {
        "/canary/login" => Resp::new(500, "broken"),
        _ => Resp::new(200, "ok"),
    })
    .await
}

async fn agent(dir: &Path, site: &Server) -> (u16, tokio::process::Child) {
    let port = free_port();
    let cfg = config(dir, port, &site.url("http", "127.0.0.1"));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(["agent", "-c"])
        .arg(&cfg)
        .env("SW_GATE_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_port(port, "the agent").await;
    (port, child)
}

/// POSTs `body` to `url` (its host replaced by the agent's) with `headers`.
async fn post(
    port: u16,
    url: &str,
    headers: &[(String, String)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut target = url::Url::parse(url).unwrap();
    target.set_host(Some("127.0.0.1")).unwrap();
    target.set_port(Some(port)).unwrap();
    let mut req = shipwatch::net::Request::get(target);
    req.method = http::Method::POST;
    req.headers = headers.to_vec();
    req.body = serde_json::to_vec(body).unwrap().into();
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let r = engine
        .send(&req, &Default::default(), deadline)
        .await
        .unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or_default(),
    )
}

fn failing(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail" || c["status"] == "error")
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagger_webhooks_from_the_shipped_canary_gate_the_rollout() {
    let site = site().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, _agent) = agent(dir.path(), &site).await;
    let canary = &yaml_to_json(&repo("docker/k8s/flagger-canary.yaml"))[0];
    let webhooks = canary["spec"]["analysis"]["webhooks"].as_array().unwrap();
    let mut answers = Vec::new();
    for hook in webhooks {
        let url = hook["url"].as_str().unwrap();
        assert_eq!(url::Url::parse(url).unwrap().path(), "/api/v1/gate");
        let mut metadata = hook["metadata"].clone();
        // The manifest holds a placeholder for the token.
        metadata["token"] = TOKEN.into();
        // Flagger's CanaryWebhookPayload, field for field.
        let payload = serde_json::json!({
            "name": canary["metadata"]["name"],
            "namespace": canary["metadata"]["namespace"],
            "phase": "Progressing",
            "checksum": "7d9f6c8b5",
            "metadata": metadata,
        });
        let (status, report) = post(port, url, &[], &payload).await;
        answers.push((
            hook["type"].as_str().unwrap().to_string(),
            status,
            failing(&report),
            report,
        ));
    }
    // Before traffic moves: login is broken in the canary, so Flagger gets a non-2xx and halts.
    let pre = answers.iter().find(|a| a.0 == "pre-rollout").unwrap();
    assert_eq!(
        (pre.1, &pre.2),
        (412, &vec!["login".to_string()]),
        "{}",
        pre.3
    );
    assert_eq!(pre.3["status"], "fail");
    assert_eq!(pre.3["checks"].as_array().unwrap().len(), 3);
    // During the rollout: health and its latency pass, so it goes on.
    let during = answers.iter().find(|a| a.0 == "rollout").unwrap();
    assert_eq!(during.1, 200, "{}", during.3);
    assert_eq!(during.3["status"], "pass");

    // The token is required, as a bearer token or in metadata.
    let body = serde_json::json!({"name": "shop", "namespace": "shop", "phase": "Progressing", "metadata": {"env": "prod"}});
    let gate = format!("http://127.0.0.1:{port}/api/v1/gate");
    assert_eq!(post(port, &gate, &[], &body).await.0, 401);
    let wrong = [("Authorization".to_string(), "Bearer nope".to_string())];
    assert_eq!(post(port, &gate, &wrong, &body).await.0, 401);
    let bearer = [("Authorization".to_string(), format!("Bearer {TOKEN}"))];
    let (status, report) = post(port, &gate, &bearer, &body).await;
    assert_eq!(
        (status, report["checks"].as_array().map(Vec::len)),
        (200, Some(4))
    );
    let unknown = serde_json::json!({"metadata": {"env": "prod", "checks": "health,nope"}});
    let (status, why) = post(port, &gate, &bearer, &unknown).await;
    assert_eq!(status, 404);
    assert!(
        why["error"].as_str().unwrap().contains("no check nope"),
        "{why}"
    );
}

/// Argo's `{{ args.NAME }}` substitution over a JSON value.
fn substitute(v: &serde_json::Value, args: &[(&str, &str)]) -> serde_json::Value {
    let mut text = v.to_string();
    for (k, val) in args {
        text = text.replace(&format!("{{{{ args.{k} }}}}"), val);
    }
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_argo_analysis_template_reads_the_verdict_from_the_report() {
    let site = site().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, _agent) = agent(dir.path(), &site).await;
    let template = &yaml_to_json(&repo("docker/k8s/argo-analysistemplate.yaml"))[0];
    let metric = &template["spec"]["metrics"][0];
    let web = &metric["provider"]["web"];
    assert_eq!(web["method"], "POST");
    assert_eq!(web["jsonPath"], "{$.status}");
    let condition = metric["successCondition"].as_str().unwrap();
    assert_eq!(condition, "result == \"pass\" || result == \"warn\"");
    let judge = |status: &str| status == "pass" || status == "warn";
    for (env, checks, expected) in [
        ("canary", "health,login,health-latency", false),
        ("canary", "health,health-latency", true),
        ("prod", "health,login,health-latency", true),
    ] {
        let args = [("env", env), ("checks", checks), ("token", TOKEN)];
        let web = substitute(web, &args);
        let headers: Vec<(String, String)> = web["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["key"].as_str().unwrap().to_string(),
                    h["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let (status, report) = post(
            port,
            web["url"].as_str().unwrap(),
            &headers,
            &web["jsonBody"],
        )
        .await;
        // `verdict=body`: always 200, so Argo reads the result instead of counting an error.
        assert_eq!(status, 200, "{report}");
        let result = report["status"].as_str().unwrap();
        assert_eq!(judge(result), expected, "{env} {checks}: {result}");
    }
}

#[test]
fn every_kubernetes_manifest_follows_the_kubernetes_schema() {
    let dir = repo("docker/k8s");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    let out = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30"])
        .args(&files)
        .output()
        .expect("kubernetes-validate (scripts/test.sh installs it from PyPI)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // Core kinds are validated; the CRDs (ServiceMonitor, PrometheusRule, Canary,
    // AnalysisTemplate) have no schema offline and are cross-checked by the tests above.
    for kind in [
        "statefulset/shipwatch",
        "service/shipwatch-headless",
        "poddisruptionbudget/shipwatch",
        "deployment/shipwatch",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{kind}: {text}"
        );
    }
    for line in text.lines().filter(|l| l.starts_with("WARN")) {
        assert!(line.contains("Couldn't find schema for kind"), "{line}");
        assert!(
            [
                "ServiceMonitor",
                "PrometheusRule",
                "Canary",
                "AnalysisTemplate"
            ]
            .iter()
            .any(|k| line.contains(k)),
            "{line}"
        );
    }
}

#[tokio::test]
async fn github_format_annotates_the_failing_checks_lines_and_fills_the_job_summary() {
    let site = site().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port(), &site.url("http", "127.0.0.1"));
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(["check", "-c"])
        .arg(&cfg)
        .args(["--env", "canary", "--format", "github"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("SW_GATE_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let login_line = text.lines().position(|l| l == "name = \"login\"").unwrap() + 1;
    let error = stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let props = format!(
        "file={},line={login_line},title=login http.status::",
        cfg.display()
    )
    .replace(':', "%3A")
    .replace("%3A%3A", "::");
    assert!(
        error.starts_with(&format!("::error {}", props.trim_end_matches("::"))),
        "{error}\n{props}"
    );
    assert!(
        error.contains("status 500%0Aexpected: 2xx%0Aactual: 500"),
        "{error}"
    );
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.starts_with("earlier step\n"), "{written}");
    assert!(written.contains("| `login` |"), "{written}");
}
