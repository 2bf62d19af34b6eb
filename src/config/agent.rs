//! `[agent]` and `[alerts]`: how the agent runs, the alert rule, sinks and quiet windows.

use std::path::PathBuf;
use std::time::Duration;

use super::{CheckSpec, SecretSource, secret_ref, suggest};
use crate::doc::{Diagnostics, Node, Table, Value};

/// `[alerts]`: the rule, the sinks, and the quiet windows.
#[derive(Debug, Clone)]
pub struct AlertsSpec {
    pub rule: crate::alert::Rule,
    pub sinks: Vec<SinkSpec>,
    pub quiet: Vec<QuietSpec>,
    pub backlog: Backlog,
    /// Notifications within this window of the first go to each sink as one message.
    pub batch_window: Duration,
}

/// Checks run jittered: one bad deploy fails them over a few seconds, not in one instant.
pub(crate) const DEFAULT_BATCH_WINDOW: Duration = Duration::from_secs(5);

impl Default for AlertsSpec {
    fn default() -> Self {
        AlertsSpec {
            rule: crate::alert::Rule::default(),
            sinks: Vec::new(),
            quiet: Vec::new(),
            backlog: Backlog::default(),
            batch_window: DEFAULT_BATCH_WINDOW,
        }
    }
}

/// How much undelivered work the outbox keeps: `outbox_max` notifications, none older than
/// `outbox_max_age`. What goes over either is dropped, counted, logged and shown, never silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub max: usize,
    pub max_age: Duration,
}

impl SinkKind {
    /// The kind as written in the config, and a sink's name when it has none.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Alertmanager => "alertmanager",
            SinkKind::Email => "email",
        }
    }

    /// Notifications per message that suit the receiver: Slack messages stay readable and within
    /// Block Kit's limits, Alertmanager takes large arrays.
    pub(crate) fn default_max_batch(&self) -> usize {
        match self {
            SinkKind::Slack => 20,
            SinkKind::Email | SinkKind::Webhook => 50,
            SinkKind::Alertmanager => 100,
        }
    }

    /// Bytes per message: well under common proxy and gateway limits (1 MiB). A Slack message is
    /// bounded by its own structure (see `sink::slack`), so its byte bound rarely matters.
    pub(crate) fn default_max_bytes(&self) -> usize {
        match self {
            SinkKind::Email => 1 << 20,
            SinkKind::Slack | SinkKind::Webhook | SinkKind::Alertmanager => 256 << 10,
        }
    }
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog {
            max: 10_000,
            max_age: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Webhook,
    Slack,
    Alertmanager,
    Email,
}

/// One `[[alerts.sink]]`.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub name: String,
    pub kind: SinkKind,
    /// The URL, which may itself be a secret (a Slack webhook is).
    pub url: SecretOr,
    /// Alertmanager only: the other instances of an HA cluster (`urls = [...]`); every alert
    /// goes to each, and the cluster deduplicates.
    pub more_urls: Vec<String>,
    pub hmac_secret: Option<SecretSource>,
    pub headers: Vec<(String, String)>,
    pub min_severity: crate::alert::Severity,
    pub timeout: Duration,
    /// At most this many notifications, and this many bytes, in one message.
    pub max_batch: usize,
    pub max_bytes: usize,
    /// Email only: login, sender and recipients.
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// A plain value, or a secret read at start-up.
#[derive(Debug, Clone)]
pub enum SecretOr {
    Plain(String),
    Secret(SecretSource),
}

/// `[[alerts.quiet]]`: notifications are held back (not the checks) between `start` and `end`.
#[derive(Debug, Clone)]
pub struct QuietSpec {
    pub start: i64,
    pub end: i64,
    /// Only these checks; all when empty.
    pub checks: Vec<String>,
}

/// `[agent]`: how `shipwatch agent` runs.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub listen: std::net::SocketAddr,
    /// Default time between two runs of a check.
    pub interval: Duration,
    pub state_dir: PathBuf,
    /// Bearer token for `POST /api/v1/run`; without it the endpoint is off.
    pub api_token: Option<SecretSource>,
    /// Protects `/metrics` with a bearer token...
    pub metrics_token: Option<SecretSource>,
    /// ...or with basic auth.
    pub metrics_user: Option<(String, SecretSource)>,
    /// Serve HTTPS with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Checks running at once, scheduled and asked for through the run API alike.
    pub concurrency: usize,
    /// Runs the run API may start per minute; more answer 429. Requests that join a run already
    /// under way do not count.
    pub api_runs_per_minute: u32,
    /// Where the status page is reachable, for links in alerts.
    pub public_url: Option<String>,
    /// How long run history is kept, and how large it may grow.
    pub history: HistorySpec,
    /// Where this agent probes from (`eu-west-1`): a `location` label on every series.
    pub location: Option<String>,
}

/// `history_raw`, `history_rollups` and `history_max_mb` of `[agent]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    /// Every run is kept this long...
    pub raw: Duration,
    /// ...and hourly roll-ups this long.
    pub rollups: Duration,
    /// The database's bound on disk; the oldest history goes first when it is reached.
    pub max_bytes: u64,
}

impl Default for HistorySpec {
    fn default() -> Self {
        HistorySpec {
            raw: Duration::from_secs(7 * 86400),
            rollups: Duration::from_secs(90 * 86400),
            max_bytes: 1024 << 20,
        }
    }
}

impl Default for AgentSpec {
    fn default() -> Self {
        AgentSpec {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9469)),
            interval: Duration::from_secs(60),
            state_dir: PathBuf::from("./shipwatch-state"),
            api_token: None,
            metrics_token: None,
            metrics_user: None,
            tls: None,
            concurrency: 32,
            api_runs_per_minute: 60,
            public_url: None,
            history: HistorySpec::default(),
            location: None,
        }
    }
}

pub(super) fn read_agent(node: &Node, diags: &mut Diagnostics) -> AgentSpec {
    let mut a = AgentSpec::default();
    let mut t = Table::of(node, "agent", diags);
    if let Some(l) = t.str("listen", diags) {
        match l.value.parse() {
            Ok(addr) => a.listen = addr,
            Err(_) => diags.error(
                l.span,
                format!(
                    "agent.listen: \"{}\" is not an address such as 127.0.0.1:9469",
                    l.value
                ),
            ),
        }
    }
    if let Some(d) = t.duration("interval", diags) {
        a.interval = d.max(Duration::from_secs(1));
    }
    if let Some(s) = t.str("state_dir", diags) {
        a.state_dir = PathBuf::from(s.value);
    }
    a.api_token = t
        .get("api_token")
        .and_then(|n| secret_ref(n, "agent.api_token", diags));
    a.metrics_token = t
        .get("metrics_token")
        .and_then(|n| secret_ref(n, "agent.metrics_token", diags));
    if let Some(n) = t.get("metrics_basic_auth") {
        let mut b = Table::of(n, "agent.metrics_basic_auth", diags);
        let user = b.str("username", diags);
        let pass = b
            .get("password")
            .and_then(|p| secret_ref(p, "agent.metrics_basic_auth.password", diags));
        b.finish(&["username", "password"], diags);
        match (user, pass) {
            (Some(u), Some(p)) => a.metrics_user = Some((u.value, p)),
            _ => diags.error(
                n.span.clone(),
                "agent.metrics_basic_auth needs `username` and `password`",
            ),
        }
    }
    a.tls = read_tls(&mut t, diags);
    if let Some(c) = t.int("concurrency", 1..10_001, diags) {
        a.concurrency = c as usize;
    }
    if let Some(r) = t.int("api_runs_per_minute", 1..100_001, diags) {
        a.api_runs_per_minute = r as u32;
    }
    a.public_url = t.str("public_url", diags).map(|s| s.value);
    a.history = read_history(&mut t, diags);
    a.location = t.str("location", diags).map(|s| s.value);
    t.finish(
        &[
            "listen",
            "interval",
            "state_dir",
            "api_token",
            "metrics_token",
            "metrics_basic_auth",
            "tls_cert",
            "tls_key",
            "concurrency",
            "api_runs_per_minute",
            "public_url",
            "history_raw",
            "history_rollups",
            "history_max_mb",
            "location",
        ],
        diags,
    );
    a
}

/// `tls_cert` and `tls_key`: both or neither.
fn read_tls(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<(PathBuf, PathBuf)> {
    let cert = t.str("tls_cert", diags);
    let key = t.str("tls_key", diags);
    match (cert, key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c.value), PathBuf::from(k.value))),
        (None, None) => None,
        _ => {
            diags.error(
                t.span(),
                "agent: set both `tls_cert` and `tls_key`, or neither",
            );
            None
        }
    }
}

/// The history keys of `[agent]`: raw runs last at least an hour and roll-ups at least as long.
fn read_history(t: &mut Table<'_>, diags: &mut Diagnostics) -> HistorySpec {
    let mut h = HistorySpec::default();
    if let Some(d) = t.duration("history_raw", diags) {
        h.raw = d.max(Duration::from_secs(3600));
    }
    if let Some(d) = t.duration("history_rollups", diags) {
        h.rollups = d;
    }
    if h.rollups < h.raw {
        diags.error(
            t.span(),
            format!(
                "agent: history_rollups ({}) is shorter than history_raw ({}); roll-ups are made from the raw runs and must outlast them",
                crate::units::span(h.rollups),
                crate::units::span(h.raw)
            ),
        );
    }
    if let Some(mb) = t.int("history_max_mb", 1..1_048_577, diags) {
        h.max_bytes = (mb as u64) << 20;
    }
    h
}

const ALERTS_KEYS: &[&str] = &[
    "failures",
    "successes",
    "repeat",
    "send_resolved",
    "window",
    "sink",
    "quiet",
    "outbox_max",
    "outbox_max_age",
    "batch_window",
];

pub(super) fn read_alerts(node: &Node, diags: &mut Diagnostics) -> AlertsSpec {
    let mut a = AlertsSpec::default();
    let mut t = Table::of(node, "alerts", diags);
    let at_most_5m = |d: Duration| d <= Duration::from_secs(300);
    let why = "batch_window must be at most 5m, or alerts wait too long to go out";
    if let Some(d) = bounded(&mut t, "batch_window", at_most_5m, why, diags) {
        a.batch_window = d;
    }
    read_rule(&mut t, &mut a.rule, diags);
    a.sinks = read_sinks(&mut t, diags);
    if let Some(Value::Array(items)) = t.get("quiet").map(|n| &n.value) {
        for (i, item) in items.iter().enumerate() {
            a.quiet.extend(read_quiet(item, i, diags));
        }
    }
    if let Some(n) = t.int("outbox_max", 100..10_000_001, diags) {
        a.backlog.max = n as usize;
    }
    let at_least_1m = |d: Duration| d >= Duration::from_secs(60);
    let why = "outbox_max_age must be at least 1m, or notifications expire before a receiver can come back";
    if let Some(d) = bounded(&mut t, "outbox_max_age", at_least_1m, why, diags) {
        a.backlog.max_age = d;
    }
    t.finish(ALERTS_KEYS, diags);
    a
}

/// A duration that must satisfy `ok`; otherwise `why` points at it.
fn bounded(
    t: &mut Table<'_>,
    key: &str,
    ok: impl Fn(Duration) -> bool,
    why: &str,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let d = t.duration(key, diags)?;
    if ok(d) {
        return Some(d);
    }
    if let Some(n) = t.get(key) {
        diags.error(n.span.clone(), why);
    }
    None
}

fn read_sinks(t: &mut Table<'_>, diags: &mut Diagnostics) -> Vec<SinkSpec> {
    let mut sinks: Vec<SinkSpec> = Vec::new();
    let Some(Value::Array(items)) = t.get("sink").map(|n| &n.value) else {
        return sinks;
    };
    for (i, item) in items.iter().enumerate() {
        let Some(s) = read_sink(item, i, diags) else {
            continue;
        };
        if sinks.iter().any(|o| o.name == s.name) {
            diags.error(
                item.span.clone(),
                format!("duplicate sink name \"{}\"; give each a `name`", s.name),
            );
        }
        sinks.push(s);
    }
    sinks
}

/// One `[[alerts.quiet]]`: a window given as two RFC 3339 times, for some or all checks.
fn read_quiet(item: &Node, i: usize, diags: &mut Diagnostics) -> Option<QuietSpec> {
    let mut q = Table::of(item, format!("alerts.quiet[{i}]"), diags);
    let time = |q: &mut Table<'_>, key: &str, diags: &mut Diagnostics| {
        let v = q.str(key, diags)?;
        let parsed =
            time::OffsetDateTime::parse(&v.value, &time::format_description::well_known::Rfc3339);
        match parsed {
            Ok(t) => Some(t.unix_timestamp()),
            Err(_) => {
                diags.error(
                    v.span,
                    format!(
                        "alerts.quiet: \"{}\" is not an RFC 3339 time such as 2026-11-23T02:00:00Z",
                        v.value
                    ),
                );
                None
            }
        }
    };
    let (start, end) = (time(&mut q, "start", diags), time(&mut q, "end", diags));
    let checks = q
        .str_list("checks", diags)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.value)
        .collect();
    q.finish(&["start", "end", "checks"], diags);
    Some(QuietSpec {
        start: start?,
        end: end?,
        checks,
    })
}

/// The rule keys, shared by `[alerts]` and a check's `alert = { ... }` override.
pub fn read_rule(t: &mut Table<'_>, rule: &mut crate::alert::Rule, diags: &mut Diagnostics) {
    if let Some(n) = t.int("failures", 1..1001, diags) {
        rule.failures = n as u32;
    }
    if let Some(n) = t.int("successes", 1..1001, diags) {
        rule.successes = n as u32;
    }
    if let Some(d) = t.duration("repeat", diags) {
        rule.repeat_s = d.as_secs();
    }
    if let Some(b) = t.bool("send_resolved", diags) {
        rule.send_resolved = b;
    }
    if let Some(node) = t.get("window") {
        let mut w = Table::of(node, format!("{}.window", t.path()), diags);
        let failures = w.int("failures", 1..1001, diags);
        let of = w.int("of", 1..1001, diags);
        w.finish(&["failures", "of"], diags);
        match (failures, of) {
            (Some(f), Some(n)) if f <= n => {
                rule.failures = f as u32;
                rule.window = Some(n as u32);
            }
            _ => diags.error(
                node.span.clone(),
                "window needs `failures` and `of`, with failures ≤ of",
            ),
        }
    }
}

const SINK_KEYS: &[&str] = &[
    "kind",
    "name",
    "url",
    "urls",
    "webhook_url",
    "smtp_url",
    "hmac_secret",
    "headers",
    "min_severity",
    "timeout",
    "max_batch",
    "max_bytes",
    "username",
    "password",
    "from",
    "to",
];

fn read_sink(node: &Node, i: usize, diags: &mut Diagnostics) -> Option<SinkSpec> {
    let mut t = Table::of(node, format!("alerts.sink[{i}]"), diags);
    let kind = read_sink_kind(&mut t, node, i, diags);
    let (url, more_urls) = read_sink_urls(&mut t, kind, node, i, diags);
    let hmac_secret = t
        .get("hmac_secret")
        .and_then(|n| secret_ref(n, &format!("alerts.sink[{i}].hmac_secret"), diags));
    let headers = plain_map(&mut t, "headers", diags);
    let min_severity = read_min_severity(&mut t, diags);
    let timeout = t
        .duration("timeout", diags)
        .unwrap_or(Duration::from_secs(10));
    let max_batch = t.int("max_batch", 1..10_001, diags).map(|n| n as usize);
    let max_bytes = t
        .int("max_bytes", 1024..(64 << 20) + 1, diags)
        .map(|n| n as usize);
    let name = t.str("name", diags).map(|n| n.value);
    let mail = read_mail(&mut t, kind, node, i, diags);
    t.finish(SINK_KEYS, diags);
    let kind = kind?;
    Some(SinkSpec {
        name: name.unwrap_or_else(|| kind.name().to_string()),
        kind,
        url: url?,
        more_urls,
        hmac_secret,
        headers,
        min_severity,
        timeout,
        max_batch: max_batch.unwrap_or_else(|| kind.default_max_batch()),
        max_bytes: max_bytes.unwrap_or_else(|| kind.default_max_bytes()),
        username: mail.username,
        password: mail.password,
        from: mail.from,
        to: mail.to,
    })
}

/// A table of strings, without their positions.
fn plain_map(t: &mut Table<'_>, key: &str, diags: &mut Diagnostics) -> Vec<(String, String)> {
    t.str_map(key, diags)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect()
}

fn read_sink_kind(
    t: &mut Table<'_>,
    node: &Node,
    i: usize,
    diags: &mut Diagnostics,
) -> Option<SinkKind> {
    const KINDS: [SinkKind; 4] = [
        SinkKind::Webhook,
        SinkKind::Slack,
        SinkKind::Alertmanager,
        SinkKind::Email,
    ];
    let Some(k) = t.str("kind", diags) else {
        diags.error(
            node.span.clone(),
            format!("alerts.sink[{i}]: missing `kind`"),
        );
        return None;
    };
    if let Some(kind) = KINDS.iter().find(|kind| kind.name() == k.value) {
        return Some(*kind);
    }
    let hint = suggest(&k.value, KINDS.iter().map(|kind| kind.name()))
        .map(|s| format!(", did you mean \"{s}\"?"))
        .unwrap_or_default();
    diags.error(k.span, format!("unknown sink kind \"{}\"{hint}", k.value));
    None
}

/// The receiver's address (`url`, Slack's `webhook_url`, email's `smtp_url`), which may be a
/// secret.
/// `url`, or for Alertmanager `urls = [...]` (the instances of an HA cluster): the first, and
/// the others.
fn read_sink_urls(
    t: &mut Table<'_>,
    kind: Option<SinkKind>,
    node: &Node,
    i: usize,
    diags: &mut Diagnostics,
) -> (Option<SecretOr>, Vec<String>) {
    let Some(list) = t.str_list("urls", diags) else {
        return (read_sink_url(t, kind, node, i, diags), Vec::new());
    };
    if kind != Some(SinkKind::Alertmanager) || t.get("url").is_some() || list.is_empty() {
        diags.error(
            node.span.clone(),
            format!("alerts.sink[{i}]: `urls` is for an alertmanager sink, instead of `url`, with at least one URL"),
        );
        return (None, Vec::new());
    }
    let mut urls = list.into_iter().map(|u| u.value);
    let first = urls.next().map(SecretOr::Plain);
    (first, urls.collect())
}

fn read_sink_url(
    t: &mut Table<'_>,
    kind: Option<SinkKind>,
    node: &Node,
    i: usize,
    diags: &mut Diagnostics,
) -> Option<SecretOr> {
    let key = match kind {
        Some(SinkKind::Slack) => "webhook_url",
        Some(SinkKind::Email) => "smtp_url",
        _ => "url",
    };
    match t.get(key) {
        Some(Node {
            value: Value::Str(s),
            ..
        }) => Some(SecretOr::Plain(s.clone())),
        Some(n) => secret_ref(n, &format!("alerts.sink[{i}].{key}"), diags).map(SecretOr::Secret),
        None => {
            diags.error(
                node.span.clone(),
                format!("alerts.sink[{i}]: missing `{key}`"),
            );
            None
        }
    }
}

fn read_min_severity(t: &mut Table<'_>, diags: &mut Diagnostics) -> crate::alert::Severity {
    use crate::alert::Severity;
    match t.str("min_severity", diags) {
        Some(s) if s.value == "critical" => Severity::Critical,
        Some(s) if s.value == "warning" => Severity::Warning,
        Some(s) => {
            let msg = format!(
                "min_severity \"{}\" must be \"warning\" or \"critical\"",
                s.value
            );
            diags.error(s.span, msg);
            Severity::Warning
        }
        None => Severity::Warning,
    }
}

/// An email sink's login, sender and recipients.
struct MailKeys {
    username: Option<String>,
    password: Option<SecretSource>,
    from: Option<String>,
    to: Vec<String>,
}

fn read_mail(
    t: &mut Table<'_>,
    kind: Option<SinkKind>,
    node: &Node,
    i: usize,
    diags: &mut Diagnostics,
) -> MailKeys {
    let username = t.str("username", diags).map(|n| n.value);
    let password = t
        .get("password")
        .and_then(|n| secret_ref(n, &format!("alerts.sink[{i}].password"), diags));
    let from = t.str("from", diags).map(|f| f.value);
    let to: Vec<String> = t
        .str_list("to", diags)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.value)
        .collect();
    if kind == Some(SinkKind::Email) && (from.is_none() || to.is_empty()) {
        diags.error(
            node.span.clone(),
            format!("alerts.sink[{i}]: an email sink needs `from` and `to`"),
        );
    }
    MailKeys {
        username,
        password,
        from,
        to,
    }
}

/// A check's own alert rule: `[alerts]`'s rule with the check's `alert = { ... }` keys on top.
pub fn check_rule(spec: &CheckSpec, base: &crate::alert::Rule) -> crate::alert::Rule {
    let mut rule = base.clone();
    if let Some(node) = &spec.alert {
        // The keys were validated when the file was read; a second read cannot fail.
        let mut diags = Diagnostics::default();
        let mut t = Table::of(node, "alert", &mut diags);
        read_rule(&mut t, &mut rule, &mut diags);
    }
    rule
}
