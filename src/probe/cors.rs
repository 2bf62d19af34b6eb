//! `kind = "cors"`: probes the known CORS misconfiguration classes with a preflight and a simple
//! request per origin, and reports the exact headers that showed a problem.

use std::sync::Arc;

use tokio::sync::Semaphore;
use url::Url;

use crate::net::{Request, Response};

use super::{Ctx, Finding, Probed, Status};

/// The endpoint, the origins it should allow, and the method a browser would use.
#[derive(Debug, Clone)]
pub struct CorsProbe {
    pub request: Request,
    /// Origins that must get exactly themselves back, e.g. `https://app.example.com`.
    pub allowed: Vec<String>,
    pub method: http::Method,
}

/// One origin to try, and the finding it feeds.
#[derive(Debug, Clone)]
struct ProbeOrigin {
    id: &'static str,
    origin: String,
}

/// What one request with one Origin got back.
#[derive(Debug, Clone)]
struct Seen {
    request: String,
    acao: Option<String>,
    credentials: bool,
    vary_origin: bool,
}

impl Seen {
    fn allows(&self, origin: &str) -> bool {
        matches!(self.acao.as_deref(), Some(a) if a == origin || a == "*")
    }

    fn evidence(&self) -> String {
        format!(
            "{} → Access-Control-Allow-Origin: {}{}",
            self.request,
            self.acao.as_deref().unwrap_or("(none)"),
            if self.credentials {
                ", Access-Control-Allow-Credentials: true"
            } else {
                ""
            }
        )
    }
}

const PARALLEL: usize = 8;

/// The findings for origins that must not be allowed, in report order.
pub const FORBIDDEN: [&str; 8] = [
    "cors.reflect",
    "cors.prefix",
    "cors.suffix",
    "cors.unescaped_dot",
    "cors.special_chars",
    "cors.null",
    "cors.http_origin",
    "cors.subdomain",
];
const SPECIAL_CHARS: &[char] = &['_', '`', '!', '~', '$', '&', '+', '=', '{'];

impl CorsProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let origins = self.origins();
        let limit = Arc::new(Semaphore::new(PARALLEL));
        let runs = origins.iter().map(|p| {
            let limit = limit.clone();
            async move {
                let _permit = limit.acquire().await;
                (p.clone(), self.probe(ctx, &p.origin).await)
            }
        });
        let results = futures_util::future::join_all(runs).await;
        let mut seen: Vec<(ProbeOrigin, Vec<Seen>)> = Vec::new();
        for (p, r) in results {
            match r {
                Ok(s) => seen.push((p, s)),
                Err(e) => return Probed::failed(e),
            }
        }
        let mut findings: Vec<Finding> = Vec::new();
        findings.push(self.allowed_finding(&seen));
        for id in FORBIDDEN {
            let group: Vec<&(ProbeOrigin, Vec<Seen>)> =
                seen.iter().filter(|(p, _)| p.id == id).collect();
            if !group.is_empty() {
                findings.push(forbidden_finding(id, &group));
            }
        }
        findings.push(wildcard_credentials(&seen));
        let mut details = std::collections::BTreeMap::new();
        details.insert("origins_probed".into(), origins.len().into());
        Probed {
            findings,
            timings: None,
            error: None,
            details,
            redact: Vec::new(),
        }
    }

    /// The probe origins, derived from the target host and the allowed origins.
    fn origins(&self) -> Vec<ProbeOrigin> {
        let mut out = Vec::new();
        let mut add = |id: &'static str, origin: String| {
            // A derived origin that the user listed as allowed is not a probe of a misconfiguration.
            let listed = id != "cors.allowed" && self.allowed.contains(&origin);
            if !out.iter().any(|p: &ProbeOrigin| p.origin == origin) && !listed {
                out.push(ProbeOrigin { id, origin });
            }
        };
        for o in &self.allowed {
            add("cors.allowed", o.clone());
        }
        add("cors.reflect", "https://evil.com".into());
        add("cors.reflect", "https://shipwatch-probe.invalid".into());
        add("cors.null", "null".into());
        let target = self.request.url.host_str().unwrap_or("").to_string();
        let hosts: Vec<String> = std::iter::once(target)
            .chain(
                self.allowed
                    .iter()
                    .filter_map(|o| Url::parse(o).ok()?.host_str().map(str::to_string)),
            )
            .filter(|h| !h.is_empty())
            .collect();
        for host in &hosts {
            add("cors.prefix", format!("https://{host}.evil.com"));
            add("cors.suffix", format!("https://evil{host}"));
            if let Some(dotless) = unescaped_dot(host) {
                add("cors.unescaped_dot", format!("https://{dotless}"));
            }
            for c in SPECIAL_CHARS {
                add("cors.special_chars", format!("https://{host}{c}.evil.com"));
            }
            add(
                "cors.subdomain",
                format!("https://shipwatch-probe.{}", site_of(host)),
            );
        }
        for o in self.allowed.iter().filter(|o| o.starts_with("https://")) {
            add("cors.http_origin", o.replacen("https://", "http://", 1));
        }
        out
    }

    /// A preflight and a simple request carrying `origin`.
    async fn probe(&self, ctx: &Ctx<'_>, origin: &str) -> Result<Vec<Seen>, crate::net::NetError> {
        let path = self.request.url.path();
        let mut preflight = self.base(http::Method::OPTIONS, origin);
        preflight.headers.push((
            "Access-Control-Request-Method".into(),
            self.method.to_string(),
        ));
        let pre = ctx
            .engine
            .send(&preflight, ctx.overrides, ctx.deadline)
            .await?;
        let simple = ctx
            .engine
            .send(
                &self.base(self.method.clone(), origin),
                ctx.overrides,
                ctx.deadline,
            )
            .await?;
        Ok(vec![
            seen(
                &pre,
                format!(
                    "OPTIONS {path} with Origin: {origin}, Access-Control-Request-Method: {}",
                    self.method
                ),
            ),
            seen(
                &simple,
                format!("{} {path} with Origin: {origin}", self.method),
            ),
        ])
    }

    fn base(&self, method: http::Method, origin: &str) -> Request {
        let mut r = self.request.clone();
        r.method = method;
        r.max_body = 64 << 10;
        r.headers.push(("Origin".into(), origin.into()));
        r
    }

    fn allowed_finding(&self, seen: &[(ProbeOrigin, Vec<Seen>)]) -> Finding {
        if self.allowed.is_empty() {
            return Finding::new(
                "cors.allowed",
                Status::Pass,
                "no allowed origins are configured",
            )
            .expect("each allowed origin gets itself back", "none configured");
        }
        let mut problems = Vec::new();
        let mut warn = Vec::new();
        for (p, results) in seen.iter().filter(|(p, _)| p.id == "cors.allowed") {
            for s in results {
                match s.acao.as_deref() {
                    Some(a) if a == p.origin && !s.vary_origin => {
                        warn.push(format!("{} without Vary: Origin", s.evidence()))
                    }
                    Some(a) if a == p.origin => {}
                    Some("*") => {
                        warn.push(format!("{} (a wildcard, not the origin)", s.evidence()))
                    }
                    _ => problems.push(s.evidence()),
                }
            }
        }
        let (status, detail) = if !problems.is_empty() {
            (Status::Fail, problems.join("; "))
        } else if !warn.is_empty() {
            (Status::Warn, warn.join("; "))
        } else {
            (
                Status::Pass,
                format!("{} origins allowed exactly", self.allowed.len()),
            )
        };
        let msg = match status {
            Status::Pass => detail.clone(),
            Status::Warn => format!("allowed origins work, but: {detail}"),
            _ => format!("an allowed origin is refused: {detail}"),
        };
        Finding::new("cors.allowed", status, msg).expect(
            "each allowed origin gets exactly itself back, with Vary: Origin",
            detail,
        )
    }
}

fn seen(r: &Response, request: String) -> Seen {
    let get = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
    };
    Seen {
        request,
        acao: get("access-control-allow-origin"),
        credentials: get("access-control-allow-credentials")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        vary_origin: r.headers.get_all("vary").iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("origin") || t.trim() == "*")
            })
        }),
    }
}

/// `www.example.com` → `wwwxexample.com`: what a regex with an unescaped dot also accepts.
fn unescaped_dot(host: &str) -> Option<String> {
    let (first, rest) = host.split_once('.')?;
    rest.contains('.')
        .then(|| format!("{first}x{rest}"))
        .or_else(|| Some(format!("{first}x{rest}.com")))
}

/// The host without its first label when it has three or more: a stand-in for the registrable domain.
fn site_of(host: &str) -> &str {
    match host.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest,
        _ => host,
    }
}

/// A forbidden origin that is allowed: a reflection fails, a wildcard only warns unless
/// credentials come with it. An unlisted subdomain warns, and fails with credentials.
fn forbidden_finding(id: &'static str, group: &[&(ProbeOrigin, Vec<Seen>)]) -> Finding {
    let mut worst = Status::Pass;
    let mut evidence = Vec::new();
    for (p, results) in group {
        for s in results.iter().filter(|s| s.allows(&p.origin)) {
            let exact = s.acao.as_deref() == Some(p.origin.as_str());
            let status = match (id, exact, s.credentials) {
                (_, _, true) => Status::Fail,
                ("cors.subdomain", _, false) | (_, false, false) => Status::Warn,
                (_, true, false) => Status::Fail,
            };
            worst = worst.max(status);
            evidence.push(s.evidence());
        }
    }
    let origins: Vec<&str> = group.iter().map(|(p, _)| p.origin.as_str()).collect();
    let what = match id {
        "cors.reflect" => "an unrelated origin",
        "cors.prefix" => "an origin that starts with the site's host",
        "cors.suffix" => "an origin that ends with the site's host",
        "cors.unescaped_dot" => "an origin matching an unescaped dot",
        "cors.special_chars" => "an origin with special characters after the host",
        "cors.null" => "the null origin",
        "cors.http_origin" => "the http:// twin of an allowed origin",
        _ => "an unlisted subdomain",
    };
    let msg = if evidence.is_empty() {
        format!("{what} is not allowed ({} origins tried)", origins.len())
    } else {
        format!("{what} is allowed: {}", evidence.join("; "))
    };
    let actual = if evidence.is_empty() {
        "no Access-Control-Allow-Origin for them".to_string()
    } else {
        evidence.join("; ")
    };
    Finding::new(id, worst, msg).expect(format!("not allowed: {}", origins.join(", ")), actual)
}

fn wildcard_credentials(seen: &[(ProbeOrigin, Vec<Seen>)]) -> Finding {
    let hit = seen
        .iter()
        .flat_map(|(_, r)| r)
        .find(|s| s.acao.as_deref() == Some("*") && s.credentials);
    match hit {
        Some(s) => Finding::new(
            "cors.wildcard_credentials",
            Status::Fail,
            format!("wildcard origin with credentials: {}", s.evidence()),
        )
        .expect(
            "no `*` together with Access-Control-Allow-Credentials: true",
            s.evidence(),
        ),
        None => Finding::new(
            "cors.wildcard_credentials",
            Status::Pass,
            "no wildcard origin with credentials",
        )
        .expect(
            "no `*` together with Access-Control-Allow-Credentials: true",
            "none",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_probe_origins() {
        let p = CorsProbe {
            request: Request::get(Url::parse("https://api.example.com/login").unwrap()),
            allowed: vec!["https://www.example.com".into()],
            method: http::Method::POST,
        };
        let origins: Vec<(String, &str)> =
            p.origins().into_iter().map(|o| (o.origin, o.id)).collect();
        let has = |o: &str, id: &str| origins.iter().any(|(x, i)| x == o && *i == id);
        assert!(has("https://www.example.com", "cors.allowed"));
        assert!(has("https://evil.com", "cors.reflect"));
        assert!(has("null", "cors.null"));
        assert!(has("https://api.example.com.evil.com", "cors.prefix"));
        assert!(has("https://evilwww.example.com", "cors.suffix"));
        assert!(has("https://wwwxexample.com", "cors.unescaped_dot"));
        assert!(has(
            "https://www.example.com_.evil.com",
            "cors.special_chars"
        ));
        assert!(has("http://www.example.com", "cors.http_origin"));
        assert!(has("https://shipwatch-probe.example.com", "cors.subdomain"));
    }
}
