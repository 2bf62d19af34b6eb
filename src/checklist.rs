//! The built-in standard checklist (`probes/checklist.toml`), and the starter config `init` writes.

use url::Url;

use crate::config::{Config, ConfigError};

/// The checklist's source, embedded so `shipwatch check URL` needs no file.
pub(crate) const SOURCE: &str = include_str!("../probes/checklist.toml");

/// Command-line tuning of the checklist.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    pub health_path: Option<String>,
    pub http_url: Option<String>,
    pub allow_origins: Vec<String>,
}

/// The checklist's configuration, parsed from the embedded source.
pub fn config() -> Result<Config, ConfigError> {
    Config::parse("probes/checklist.toml", SOURCE)
}

/// Why the checklist cannot be pointed at a target: the URL or a tuning flag.
#[derive(Debug, thiserror::Error)]
pub enum ChecklistError {
    #[error("URL \"{0}\" has no host")]
    NoHost(Url),
    #[error("invalid --http-url \"{url}\": {source}")]
    HttpUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("invalid --allow-origin \"{0}\", expected an origin such as https://app.example.com")]
    Origin(String),
    #[error("--allow-origin \"{0}\" is not a bare origin (scheme://host[:port])")]
    NotBareOrigin(String),
}

/// The variables the checklist needs, derived from the target URL.
pub fn vars(target: &Url, tuning: &Tuning) -> Result<Vec<(String, String)>, ChecklistError> {
    let host = target
        .host_str()
        .ok_or_else(|| ChecklistError::NoHost(target.clone()))?;
    let port = target.port_or_known_default().unwrap_or(443);
    let base = target.as_str().trim_end_matches('/').to_string();
    let http_url = match &tuning.http_url {
        Some(u) => Url::parse(u)
            .map_err(|source| ChecklistError::HttpUrl {
                url: u.clone(),
                source,
            })?
            .to_string(),
        None => format!("http://{}/", bracket(host)),
    };
    let health = tuning
        .health_path
        .clone()
        .unwrap_or_else(|| "/health".into());
    let health = if health.starts_with('/') {
        health
    } else {
        format!("/{health}")
    };
    tuning
        .allow_origins
        .iter()
        .try_for_each(|o| bare_origin(o))?;
    Ok(vec![
        ("base_url".into(), base),
        ("health_path".into(), health),
        ("http_url".into(), http_url),
        ("tls_host".into(), format!("{}:{port}", bracket(host))),
        ("allowed_origins".into(), tuning.allow_origins.join(" ")),
    ])
}

/// `--allow-origin` takes origins only: scheme, host and port.
fn bare_origin(o: &str) -> Result<(), ChecklistError> {
    let u = Url::parse(o).map_err(|_| ChecklistError::Origin(o.to_string()))?;
    if u.origin().ascii_serialization() != o.trim_end_matches('/') {
        return Err(ChecklistError::NotBareOrigin(o.to_string()));
    }
    Ok(())
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Check names that only make sense over HTTPS; a plain-http target skips them.
pub(crate) const HTTPS_ONLY: &[&str] = &["https-redirect", "tls"];

/// The checklist's checks with their comments; without the HTTPS-only ones for a plain-HTTP site.
fn starter_checks(https: bool) -> String {
    // The checks start with the comment block of the first one, after the file's header.
    let first = SOURCE.find("[[check]]").unwrap_or(0);
    let start = SOURCE[..first].rfind("\n\n").map_or(0, |i| i + 2);
    SOURCE[start..]
        .split("\n\n")
        .filter(|block| {
            https
                || !HTTPS_ONLY
                    .iter()
                    .any(|name| block.contains(&format!("name = \"{name}\"")))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A commented starter `shipwatch.toml` for `target`, built from the checklist.
pub(crate) fn starter(target: &Url, tuning: &Tuning) -> Result<String, ChecklistError> {
    let vars = vars(target, tuning)?;
    let get = |k: &str| {
        vars.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let checks = starter_checks(target.scheme() == "https");
    Ok(format!(
        r#"# shipwatch configuration, written by `shipwatch init`.
# Validate it with `shipwatch validate -c shipwatch.toml`, run it with `shipwatch check -c shipwatch.toml`.
# Durations are written 500ms, 10s, 5m, 4h or 30d. Strings may use {{{{ name }}}} to insert a variable.

[defaults]
timeout = "10s"                       # one deadline per check
# ca_file = "certs/internal-ca.pem"   # extra trusted roots (PEM), added to Mozilla's bundle

# [secrets]                           # never printed, logged or sent anywhere but the target
# admin_password = {{ env = "SHIPWATCH_ADMIN_PASSWORD" }}

[env.production]
base_url = "{base}"
http_url = "{http}"                   # where plain HTTP listens: the redirect check and the grade use it
vars = {{ health_path = "{health}", tls_host = "{tls}", allowed_origins = "" }}   # allowed_origins: space-separated, for the CORS check
# resolve = {{ "{tls}" = "10.0.3.7" }}   # probe a new stack's address with the production name
# labels = {{ region = "eu-west-1" }}

{checks}

# More of what a deploy breaks. Uncomment and adapt:
#
# [[check]]                           # the name still points at the right load balancer
# name = "api-dns"
# kind = "dns"
# query = "api.example.com"
# type = "A"                          # A AAAA CNAME MX TXT NS CAA SOA SRV PTR
# server = "10.0.0.2:53"              # default: the system resolver's name servers
# transport = "udp"                   # udp (asks again over tcp when truncated) | tcp
# expect = ['answers contains "10.0.3.7"', 'ttl <= 300']
#
# [[check]]                           # the mail server's certificate, behind STARTTLS
# name = "smtp"
# kind = "tcp"
# host = "mail.example.com:587"
# starttls = "smtp"                   # smtp | imap | pop3 | postgres | none
# expect = ['banner matches "^220 "']
#
# [[check]]                           # grpc.health.v1: SERVING expected
# name = "payments-grpc"
# kind = "grpc"
# url = "https://payments.example.com:443"   # http:// for plain-text HTTP/2
# service = "payments.v1.Payments"    # "" asks about the whole server
#
# [[check]]                           # the ingress still upgrades WebSockets
# name = "live-updates"
# kind = "websocket"
# url = "wss://example.com/socket"
# send = '{{"type":"ping"}}'
# expect = ['message contains "pong"']
"#,
        base = get("base_url"),
        http = get("http_url"),
        health = get("health_path"),
        tls = get("tls_host"),
    ))
}
