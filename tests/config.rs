//! Invalid configuration fixtures, each paired with its exact message and position.

use std::path::PathBuf;

use shipwatch::config::{Config, ConfigError};
use shipwatch::plan::{self, PlanError, PlanOptions};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid")
        .join(name)
}

/// Loads and plans a fixture as `shipwatch validate` does; returns `line:col: message` for each problem.
fn errors(name: &str) -> Vec<String> {
    let err: ConfigError = match Config::load(&fixture(name)) {
        Err(e) => e,
        Ok(config) => {
            let getenv = |_: &str| None;
            let opts = PlanOptions {
                env: config.envs.first().map(|e| e.name.clone()),
                getenv: Some(&getenv),
                ..PlanOptions::default()
            };
            match plan::build(&config, &opts) {
                Err(PlanError::Config(e)) => e,
                Err(PlanError::Usage(u)) => panic!("{name}: usage error {u}"),
                Ok(_) => panic!("{name}: expected an error"),
            }
        }
    };
    err.diagnostics
        .iter()
        .map(|d| {
            let (l, c) = err.line_col(d.span.start);
            format!("{l}:{c}: {}", d.message)
        })
        .collect()
}

#[test]
fn each_fixture_has_its_exact_message() {
    let cases = [
        (
            "unknown_key.toml",
            "5:1: unknown key `timout` in `check \"api\"`, did you mean `timeout`?",
        ),
        (
            "unknown_section.toml",
            "1:2: unknown key `defautls` in the top level, did you mean `defaults`?",
        ),
        (
            "unknown_kind.toml",
            "3:8: unknown check kind \"htp\", did you mean \"http\"?",
        ),
        (
            "bad_assertion.toml",
            "5:29: invalid assertion: unknown query \"stauts\", did you mean \"status\"?",
        ),
        (
            "bad_operator.toml",
            "5:19: invalid assertion: unknown operator \"===\", expected one of == != < <= > >= contains !contains matches !matches in startswith endswith exists !exists",
        ),
        (
            "bad_duration.toml",
            "2:11: defaults.timeout: duration \"10\" needs a unit: ms, s, m, h or d",
        ),
        ("missing_url.toml", "1:1: check \"api\": missing `url`"),
        (
            "bad_toml.toml",
            "3:13: invalid TOML: invalid basic string, expected `\"`",
        ),
        (
            "wrong_type.toml",
            "5:13: check \"tls\".warn_days: expected an integer, found a string",
        ),
        ("duplicate_name.toml", "6:8: duplicate check name \"a\""),
        (
            "redirect_https.toml",
            "4:7: a redirect check starts from an http:// URL, not \"https://example.com/\"",
        ),
        (
            "fail_over_warn.toml",
            "1:1: check \"t\": fail_days (10) is larger than warn_days (5)",
        ),
        (
            "unknown_variable.toml",
            "6:8: unknown variable \"base_ur\", did you mean \"base_url\"?",
        ),
        (
            "missing_secret.toml",
            "2:6: secret \"pw\": environment variable SHIPWATCH_TEST_UNSET_VAR is not set",
        ),
        (
            "empty.toml",
            "1:1: the file is empty; add at least one [[check]]",
        ),
        (
            "capture_too_early.toml",
            "6:35: \"token\" is captured by the step \"login\", which has not run yet here: a step can use only what earlier steps captured",
        ),
        (
            "streams_without_http2.toml",
            "6:11: check \"load\": streams = 8 needs HTTP/2, but http2 = false; HTTP/1.1 carries one request at a time on a connection",
        ),
        (
            "unreadable_ca_file.toml",
            "2:11: cannot read CA file \"/nonexistent/shipwatch-ca.pem\": No such file or directory (os error 2)",
        ),
    ];
    for (name, want) in cases {
        assert_eq!(errors(name), vec![want.to_string()], "{name}");
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    assert_eq!(
        errors("many_errors.toml"),
        vec![
            "2:11: defaults.timeout: invalid duration \"fast\", expected something like \"500ms\" or \"10s\"",
            "6:10: unknown method \"FETCH\", expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
            "8:1: check[1]: missing `name`",
        ]
    );
}

#[test]
fn backlog_and_batch_limits_out_of_range_are_pointed_at() {
    let got = errors("bad_sink_limits.toml");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("2:18: outbox_max_age must be at least 1m"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("7:13: ") && got[1].contains("max_batch"),
        "{got:?}"
    );
}

#[test]
fn an_unknown_kind_still_reports_the_other_problems() {
    assert_eq!(
        errors("unknown_kind_and_more.toml"),
        vec![
            "3:8: unknown check kind \"htp\", did you mean \"http\"?",
            "5:1: unknown key `timout` in `check \"api-health\"`, did you mean `timeout`?",
            "6:12: invalid assertion: unknown query \"stauts\", did you mean \"status\"?",
        ]
    );
}

#[test]
fn rendering_shows_file_line_column_and_a_caret() {
    let e = Config::parse(
        "shipwatch.toml",
        "[[check]]\nname = \"a\"\nkind = \"tls\"\nhost = \"x\"\nwarn_dayz = 3\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shipwatch.toml:5:1: unknown key `warn_dayz` in `check \"a\"`, did you mean `warn_days`?\n    5 | warn_dayz = 3\n      | ^^^^^^^^^\n1 error in shipwatch.toml"
    );
}

#[test]
fn the_embedded_checklist_and_the_design_example_shapes_are_valid() {
    let c = shipwatch::checklist::config().expect("checklist parses");
    let names: Vec<&str> = c.checks.iter().map(|c| c.name.value.as_str()).collect();
    assert_eq!(
        names,
        [
            "health",
            "frontend",
            "https-redirect",
            "tls",
            "security-headers",
            "cors",
            "exposure",
            "health-latency"
        ]
    );
    let src = r#"
[agent]
listen = "127.0.0.1:9469"
[defaults]
timeout = "10s"
[vars]
user = "admin"
[secrets]
pw = { file = "/nonexistent/for-shape-only" }
[env.production]
base_url = "https://api.example.com"
web_url  = "https://example.com"
resolve  = { "api.example.com:443" = "10.0.3.7" }
labels   = { region = "eu-west-1" }
[[check]]
name = "api-health"
kind = "http"
url = "{{ base_url }}/health"
expect = ['status == 200', 'json $.status == "healthy"', 'json $.database == "connected"', 'time < 500ms']
"#;
    let c = Config::parse("design.toml", src).expect("design example parses");
    assert_eq!(c.envs[0].resolve[0].0, "api.example.com:443");
    assert_eq!(
        c.envs[0].labels,
        vec![("region".to_string(), "eu-west-1".to_string())]
    );
}

/// The README's quick-start config must stay valid as the code changes.
#[test]
fn readme_quick_start_config_validates() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let section = &readme[readme.find("## Quick-start config").expect("section")..];
    let start = section.find("```toml\n").expect("toml block") + "```toml\n".len();
    let toml = &section[start..start + section[start..].find("```").expect("end of block")];
    let config = Config::parse("README.md", toml).unwrap_or_else(|e| panic!("{e}"));
    let getenv = |name: &str| (name == "SHIPWATCH_ADMIN_TOKEN").then(|| "token".to_string());
    let opts = PlanOptions {
        env: Some("production".into()),
        getenv: Some(&getenv),
        ..PlanOptions::default()
    };
    let plan = plan::build(&config, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.jobs.len(), 5);
}

#[test]
fn alert_rules_sinks_and_per_check_overrides_are_read() {
    let src = r#"
[alerts]
failures = 3
successes = 2
repeat = "4h"
send_resolved = true
[[alerts.sink]]
kind = "slack"
webhook_url = { env = "SLACK_WEBHOOK_URL" }
min_severity = "critical"
[[alerts.sink]]
kind = "email"
smtp_url = "smtp://mail.example.com:587?tls=required"
username = "shipwatch"
password = { env = "SMTP_PASSWORD" }
from = "shipwatch@example.com"
to = ["oncall@example.com"]
[[alerts.quiet]]
start = "2026-11-28T02:00:00Z"
end = "2026-11-28T04:00:00Z"
[[check]]
name = "api"
kind = "http"
url = "https://example.com/"
alert = { failures = 5, window = { failures = 2, of = 4 }, send_resolved = false }
"#;
    let c = Config::parse("alerts.toml", src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (c.alerts.rule.failures, c.alerts.rule.repeat_s),
        (3, 4 * 3600)
    );
    assert_eq!(c.alerts.sinks.len(), 2);
    assert_eq!(c.alerts.quiet[0].end - c.alerts.quiet[0].start, 7200);
    let rule = shipwatch::config::check_rule(&c.checks[0], &c.alerts.rule);
    assert_eq!(
        (
            rule.failures,
            rule.window,
            rule.send_resolved,
            rule.successes
        ),
        (2, Some(4), false, 2)
    );
    let bad = Config::parse(
        "bad.toml",
        "[alerts]\nfailurs = 3\n[[alerts.sink]]\nkind = \"pager\"\nurl = \"x\"\n",
    )
    .unwrap_err();
    let text = bad.to_string();
    assert!(
        text.contains("unknown key `failurs` in `alerts`, did you mean `failures`?"),
        "{text}"
    );
    assert!(text.contains("unknown sink kind \"pager\""), "{text}");
}

/// `validate` reads every secret the file names (sinks and `[agent]` included) and reports them
/// with the shape errors and the unknown variables, all in one pass.
#[test]
fn validate_reports_every_problem_of_the_file_at_once() {
    let getenv = |_: &str| None;
    let err = plan::validate(&fixture("everything_at_once.toml"), &getenv).unwrap_err();
    let got: Vec<String> = err
        .diagnostics
        .iter()
        .map(|d| {
            let (l, c) = err.line_col(d.span.start);
            format!("{l}:{c}: {}", d.message)
        })
        .collect();
    assert_eq!(
        got,
        [
            "2:13: agent.api_token: environment variable SW_UNSET_API_TOKEN is not set",
            "3:17: agent.metrics_token: environment variable SW_UNSET_METRICS_TOKEN is not set",
            "7:15: alerts.sink[0].webhook_url: environment variable SW_UNSET_SLACK_URL is not set",
            "13:12: alerts.sink[1].password: environment variable SW_UNSET_SMTP_PASSWORD is not set",
            "21:15: alerts.sink[2].hmac_secret: environment variable SW_UNSET_HMAC is not set",
            "26:8: unknown variable \"base_ur\"",
            "27:1: unknown key `timout` in `check \"api\"`, did you mean `timeout`?",
        ]
    );
    // The agent starts from the same pass, so it refuses with the same positions.
    let opts = shipwatch::agent::Options {
        config_path: fixture("everything_at_once.toml"),
        shard: (0, 1),
        getenv: std::sync::Arc::new(|_: &str| None),
        location: None,
    };
    let msg = shipwatch::agent::load(&opts).err().unwrap().to_string();
    assert!(
        msg.contains("everything_at_once.toml:21:15: alerts.sink[2].hmac_secret"),
        "{msg}"
    );
    assert!(
        msg.contains("everything_at_once.toml:26:8: unknown variable"),
        "{msg}"
    );
}
