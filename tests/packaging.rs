//! Packaging that no container engine here can run is validated as far as it can be: every YAML
//! parses, the rules pass promtool, the configs validate, and the Dockerfile builds the binary the
//! tests run.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Parses YAML with PyYAML and prints it back as JSON.

#[test]
fn every_yaml_file_parses() {
    let mut n = 0;
    for dir in [
        "docker",
        "docker/k8s",
        "dashboards",
        "dashboards/provisioning",
    ] {
        for e in std::fs::read_dir(repo(dir)).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                let docs = yaml_to_json(&p);
                assert!(
                    docs.as_array()
                        .is_some_and(|d| !d.is_empty() && d.iter().all(|x| !x.is_null())),
                    "{}",
                    p.display()
                );
                n += 1;
            }
        }
    }
    assert!(n >= 8, "found only {n} YAML files");
}

#[test]
fn the_prometheus_rule_matches_the_rules_file_and_passes_promtool() {
    let rule = yaml_to_json(&repo("docker/k8s/prometheusrule.yaml"));
    let file = yaml_to_json(&repo("dashboards/prometheus-rules.yml"));
    assert_eq!(
        rule[0]["spec"], file[0],
        "docker/k8s/prometheusrule.yaml drifted from dashboards/prometheus-rules.yml"
    );
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo("dashboards/prometheus-rules.yml"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The error-budget alerts fire when, and at the severity, the SRE workbook's burn rates say.
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(repo("dashboards/prometheus-rules.test.yml"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shipped_agent_configs_validate() {
    let run = |path: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["validate", "-c"])
            .arg(path)
            .env("SHIPWATCH_API_TOKEN", "t")
            .output()
            .unwrap()
    };
    let out = run(&repo("docker/shipwatch.toml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The sidecar's ConfigMap carries a config too.
    let sidecar = yaml_to_json(&repo("docker/k8s/sidecar.yaml"));
    let toml = sidecar[0]["data"]["shipwatch.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    std::fs::write(&path, toml).unwrap();
    let out = run(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The root filesystem is read-only: the state_dir the config names must be a mounted volume.
    let container = &sidecar[1]["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(container["name"], "shipwatch");
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert!(toml.contains("state_dir = \"/var/lib/shipwatch\""));
    assert!(mounts.contains(&"/var/lib/shipwatch"), "{mounts:?}");
    assert!(
        toml.contains("{{ public_url }}"),
        "the sidecar probes the public URL too"
    );
}

/// The example files in probes/ (the checklist, a login flow, a strict-security profile) are
/// valid configurations.
#[test]
fn the_example_probes_validate() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(repo("probes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        if path.ends_with("checklist.toml") {
            // Its variables come from the command line (`shipwatch check URL`).
            let config = shipwatch::checklist::config().unwrap();
            let target = url::Url::parse("https://shop.example.com").unwrap();
            let vars = shipwatch::checklist::vars(&target, &Default::default()).unwrap();
            let opts = shipwatch::plan::PlanOptions {
                vars,
                ..Default::default()
            };
            let plan = shipwatch::plan::build(&config, &opts).unwrap();
            assert_eq!(plan.jobs.len(), 8);
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["validate", "-c"])
            .arg(&path)
            .env("SHIPWATCH_ADMIN_PASSWORD", "an-example-password")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    seen.sort();
    assert_eq!(
        seen,
        ["checklist.toml", "login-flow.toml", "strict-security.toml"]
    );
}

#[tokio::test]
async fn the_dockerfile_builds_and_health_checks_the_tested_binary() {
    let docker = std::fs::read_to_string(repo("docker/Dockerfile")).unwrap();
    assert!(docker.contains("cargo build --release --locked --bin shipwatch"));
    assert!(
        docker.contains("COPY --from=build /src/target/release/shipwatch /usr/local/bin/shipwatch")
    );
    assert!(docker.contains("USER nonroot"));
    let cargo = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"shipwatch\""));
    assert!(repo("src/main.rs").exists() && repo("Cargo.lock").exists());
    // The HEALTHCHECK command works against /healthz, and fails when nothing answers.
    assert!(docker.contains(
        r#"CMD ["/usr/local/bin/shipwatch", "healthcheck", "http://127.0.0.1:9469/healthz"]"#
    ));
    let s = http_server(|r| {
        if r.path == "/healthz" {
            Resp::new(200, "ok")
        } else {
            Resp::new(404, "")
        }
    })
    .await;
    let hc = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["healthcheck", &url])
            .output()
            .await
            .unwrap()
            .status
            .code()
    };
    assert_eq!(
        hc(format!("{}/healthz", s.url("http", "127.0.0.1"))).await,
        Some(0)
    );
    assert_eq!(
        hc(format!("{}/missing", s.url("http", "127.0.0.1"))).await,
        Some(1)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_eq!(
        hc(format!("http://127.0.0.1:{closed}/healthz")).await,
        Some(1)
    );
}

/// `docker compose config` needs the compose plugin; where it is missing the file is still parsed above.
#[test]
fn compose_file_is_consistent() {
    let compose = yaml_to_json(&repo("docker/compose.yaml"));
    let services = compose[0]["services"].as_object().unwrap();
    for name in [
        "shipwatch",
        "prometheus",
        "grafana",
        "mailcatcher",
        "demo-target",
    ] {
        assert!(services.contains_key(name), "compose is missing {name}");
    }
    for s in services.values() {
        for v in s["volumes"].as_array().into_iter().flatten() {
            let host = v.as_str().unwrap().split(':').next().unwrap();
            assert!(
                repo("docker").join(host).exists(),
                "compose mounts a missing file: {host}"
            );
        }
    }
    let plugin = Command::new("docker").args(["compose", "version"]).output();
    if plugin.is_ok_and(|o| o.status.success()) {
        let out = Command::new("docker")
            .args(["compose", "-f"])
            .arg(repo("docker/compose.yaml"))
            .arg("config")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
