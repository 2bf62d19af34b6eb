//! `kind = "exposure"`: error responses must leak nothing, and well-known sensitive files must not be served.

use crate::check::build::Build;
use crate::check::read::required;
use crate::doc::{Diagnostics, Spanned, Table};
use std::sync::OnceLock;

use regex::RegexSet;
use url::Url;

use crate::net::{Pool, Request, Response};

use super::{Ctx, Finding, Probed, Status};

/// The site to probe and the endpoints that receive a malformed JSON body.
#[derive(Debug, Clone)]
pub struct ExposureProbe {
    pub request: Request,
    pub endpoints: Vec<Url>,
}

/// Signatures of stack traces, debug pages and database errors, with a name for each.
const LEAKS: &[(&str, &str)] = &[
    ("Python traceback", r"Traceback \(most recent call last\)"),
    (
        "Java exception trace",
        r"(?m)^\s*at [a-zA-Z_$][\w$]*(\.[\w$<>]+)+\([\w$]+\.java:\d+\)",
    ),
    (
        "Java exception",
        r"(java|javax|jakarta)\.[a-z]+(\.[A-Za-z]+)*\.[A-Z]\w*(Exception|Error)\b",
    ),
    (
        ".NET exception trace",
        r"(?m)^\s*at [\w.`<>]+\(.*\) in .*:line \d+",
    ),
    ("ASP.NET error page", r"Server Error in '[^']*' Application"),
    (".NET exception", r"System\.[A-Z]\w*(Exception)\b"),
    (
        "Rails debug page",
        r"(Action(Controller|View)::\w+Error|Rails\.root:)",
    ),
    (
        "Django debug page",
        r"You're seeing this error because you have <code>DEBUG = True</code>",
    ),
    (
        "Laravel debug page",
        r"(Whoops, looks like something went wrong|Illuminate\\[A-Z])",
    ),
    (
        "PHP error",
        r"(PHP )?(Fatal error|Parse error|Warning): .* in \S+\.php on line \d+",
    ),
    (
        "Node.js stack trace",
        r"(?m)^\s*at .+ \(?(/|node:)[^)]*\.?(js|ts|mjs)?:\d+:\d+\)?$",
    ),
    ("Go panic", r"goroutine \d+ \[running\]"),
    ("MySQL error", r"You have an error in your SQL syntax"),
    (
        "SQL error",
        r"(SQLSTATE\[\w+\]|ORA-\d{5}|PG::[A-Z]\w+|psycopg2\.\w+|SQLite3::|syntax error at or near)",
    ),
];

fn leak_set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(LEAKS.iter().map(|(_, r)| *r)).unwrap_or_else(|_| RegexSet::empty())
    })
}

/// The names of the leak signatures found in a body.
pub fn leaks_in(body: &str) -> Vec<&'static str> {
    leak_set()
        .matches(body)
        .iter()
        .map(|i| LEAKS[i].0)
        .collect()
}

/// Paths that must never be served, and how to tell that the real file came back.
const FILES: &[(&str, &str, &str)] = &[
    (
        "exposure.git",
        "/.git/HEAD",
        r"^(ref: refs/|[0-9a-f]{40}\s*$)",
    ),
    ("exposure.env", "/.env", r"(?m)^[A-Z][A-Z0-9_]*=\S*"),
    (
        "exposure.server_status",
        "/server-status",
        r"(Apache Server Status|Server uptime|Total Accesses)",
    ),
];

const MALFORMED_JSON: &str = r#"{"shipwatch": [1, 2,, "unterminated"#;

impl ExposureProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let base = &self.request.url;
        let missing = base
            .join("/shipwatch-probe-does-not-exist-7f3a")
            .unwrap_or_else(|_| base.clone());
        let mut pool = Pool::new();
        let first = match self.get(ctx, &mut pool, missing.clone()).await {
            Ok(r) => r,
            Err(e) => return Probed::failed(e),
        };
        let mut findings = vec![leak_finding(
            "exposure.error_page",
            &format!("GET {}", missing.path()),
            &[(first.status, body(&first))],
        )];
        let targets = if self.endpoints.is_empty() {
            vec![base.clone()]
        } else {
            self.endpoints.clone()
        };
        let mut seen = Vec::new();
        for url in &targets {
            let mut req = self.base_request(url.clone());
            req.method = http::Method::POST;
            req.body = bytes::Bytes::from_static(MALFORMED_JSON.as_bytes());
            req.headers
                .push(("Content-Type".into(), "application/json".into()));
            match pool
                .send(ctx.engine, &req, ctx.overrides, ctx.deadline)
                .await
            {
                Ok(r) => seen.push((r.status, body(&r))),
                Err(e) => return Probed::failed(e),
            }
        }
        let paths: Vec<&str> = targets.iter().map(Url::path).collect();
        findings.push(leak_finding(
            "exposure.bad_request",
            &format!("POST malformed JSON to {}", paths.join(", ")),
            &seen,
        ));
        for (id, path, signature) in FILES {
            let url = base.join(path).unwrap_or_else(|_| base.clone());
            findings.push(match self.get(ctx, &mut pool, url).await {
                Ok(r) => file_finding(id, path, signature, &r),
                Err(e) => Finding::new(
                    *id,
                    Status::Pass,
                    format!("{path} could not be fetched ({})", e.kind()),
                )
                .with_values("not served", e.kind()),
            });
        }
        Probed {
            findings,
            timings: Some(first.timings),
            error: None,
            details: Default::default(),
            redact: Vec::new(),
        }
    }

    fn base_request(&self, url: Url) -> Request {
        Request {
            max_body: self.request.max_body.min(1 << 20),
            ..Request {
                url,
                ..self.request.clone()
            }
        }
    }

    async fn get(
        &self,
        ctx: &Ctx<'_>,
        pool: &mut Pool,
        url: Url,
    ) -> Result<Response, crate::net::NetError> {
        pool.send(
            ctx.engine,
            &self.base_request(url),
            ctx.overrides,
            ctx.deadline,
        )
        .await
    }
}

fn body(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn leak_finding(id: &str, what: &str, responses: &[(u16, String)]) -> Finding {
    let found: Vec<String> = responses
        .iter()
        .flat_map(|(status, b)| {
            leaks_in(b)
                .into_iter()
                .map(move |l| format!("{l} in a {status} response"))
        })
        .collect();
    let msg = if found.is_empty() {
        format!("{what}: the error response leaks nothing")
    } else {
        format!("{what}: {}", found.join(", "))
    };
    Finding::judge(id, found.is_empty(), Status::Fail, msg).with_values(
        "no stack trace, debug page or SQL error",
        if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        },
    )
}

fn file_finding(id: &str, path: &str, signature: &str, r: &Response) -> Finding {
    let served = (200..300).contains(&r.status)
        && regex::Regex::new(signature)
            .is_ok_and(|re| re.is_match(&String::from_utf8_lossy(&r.body)));
    let msg = if served {
        format!("{path} is served with its contents")
    } else {
        format!("{path} is not served ({})", r.status)
    };
    Finding::judge(id, !served, Status::Fail, msg)
        .with_values("not served", format!("{} {} bytes", r.status, r.body.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_real_traces() {
        assert_eq!(
            leaks_in("Traceback (most recent call last):\n  File \"app.py\", line 3"),
            ["Python traceback"]
        );
        assert!(
            leaks_in("java.lang.NullPointerException\n\tat com.shop.Cart.total(Cart.java:42)")
                .contains(&"Java exception trace")
        );
        assert!(
            leaks_in("<h1>Server Error in '/' Application.</h1>").contains(&"ASP.NET error page")
        );
        assert!(
            leaks_in("You have an error in your SQL syntax; check the manual")
                .contains(&"MySQL error")
        );
        assert!(leaks_in("SQLSTATE[42S02]: Base table not found").contains(&"SQL error"));
        assert!(
            leaks_in("    at Object.<anonymous> (/srv/app/index.js:10:15)")
                .contains(&"Node.js stack trace")
        );
        assert!(leaks_in("goroutine 1 [running]:\nmain.main()").contains(&"Go panic"));
        assert!(leaks_in("<h1>Not Found</h1><p>The page does not exist.</p>").is_empty());
        assert!(leaks_in(r#"{"error":"invalid JSON at line 1"}"#).is_empty());
    }
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "exposure"` check takes besides the common ones.
pub const KEYS: &[&str] = &["url", "endpoints"];

/// `kind = "exposure"`: error pages and well-known files.
#[derive(Debug, Clone)]
pub struct ExposureSpec {
    pub url: Spanned<String>,
    pub endpoints: Vec<Spanned<String>>,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<ExposureSpec> {
    let url = required(t, "url", diags);
    let endpoints = t.str_list("endpoints", diags).unwrap_or_default();
    Some(ExposureSpec {
        url: url?,
        endpoints,
    })
}

/// The job of a `kind = "exposure"` check, its strings interpolated.
pub(crate) fn build(spec: &ExposureSpec, b: &mut Build<'_>) -> Option<ExposureProbe> {
    let url = b.url(&spec.url)?;
    let endpoints: Vec<Url> = spec.endpoints.iter().filter_map(|e| b.url(e)).collect();
    Some(ExposureProbe {
        request: b.request(url),
        endpoints,
    })
}
