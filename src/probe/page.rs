//! `kind = "page"`: the front end answers 200 with HTML, and every same-origin asset it names loads.

use std::sync::Arc;

use tokio::sync::Semaphore;
use url::Url;

use crate::assert::Assertion;
use crate::net::{MAX_REDIRECTS, Request};

use super::{Ctx, Finding, Probed, Status, body_limit, judge_assertions, subject_of};

/// A page and the assertions a user added to it.
#[derive(Debug, Clone)]
pub struct PageProbe {
    pub request: Request,
    pub expect: Vec<Assertion>,
    pub assets: bool,
}

/// At most this many assets are fetched, so a page with thousands of images stays a smoke test.
const MAX_ASSETS: usize = 50;
const PARALLEL_ASSETS: usize = 6;
const ASSET_BODY: u64 = 1 << 20;

impl PageProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let ex = match ctx
            .engine
            .fetch(&self.request, ctx.overrides, ctx.deadline, MAX_REDIRECTS)
            .await
        {
            Ok(ex) => ex,
            Err(e) => return Probed::failed(e),
        };
        let resp = &ex.response;
        let mut findings = vec![
            Finding::judge(
                "page.status",
                resp.status == 200,
                Status::Fail,
                format!("status {}", resp.status),
            )
            .expect("200", resp.status.to_string()),
        ];
        let ctype = resp
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let is_html = ctype
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/html");
        findings.push(
            Finding::judge(
                "page.content_type",
                is_html,
                Status::Fail,
                format!("content type \"{ctype}\""),
            )
            .expect(
                "text/html",
                if ctype.is_empty() { "(missing)" } else { ctype },
            ),
        );
        findings.extend(body_limit(resp, self.request.max_body));
        if self.assets && is_html {
            let html = String::from_utf8_lossy(&resp.body);
            let urls = same_origin_assets(&html, &resp.url);
            findings.push(self.check_assets(ctx, urls).await);
        }
        findings.extend(judge_assertions(
            &subject_of(resp, ex.hops.len()),
            &self.expect,
            "page.status",
            "http.assert",
        ));
        Probed {
            findings,
            timings: Some(resp.timings),
            error: None,
            details: Default::default(),
        }
    }

    async fn check_assets(&self, ctx: &Ctx<'_>, urls: Vec<Url>) -> Finding {
        let total = urls.len();
        let limit = Arc::new(Semaphore::new(PARALLEL_ASSETS));
        let checks = urls.into_iter().map(|url| {
            let limit = limit.clone();
            let mut req = Request::get(url.clone());
            req.insecure = self.request.insecure;
            req.headers = self.request.headers.clone();
            // Only the status matters for an asset: a short read keeps memory flat on heavy pages.
            req.max_body = self.request.max_body.min(ASSET_BODY);
            async move {
                let _permit = limit.acquire().await;
                match ctx
                    .engine
                    .fetch(&req, ctx.overrides, ctx.deadline, MAX_REDIRECTS)
                    .await
                {
                    Ok(ex) if (200..300).contains(&ex.response.status) => None,
                    Ok(ex) => Some(format!("{} ({})", url.path(), ex.response.status)),
                    Err(e) => Some(format!("{} ({})", url.path(), e.kind())),
                }
            }
        });
        let broken: Vec<String> = futures_util::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let actual = if broken.is_empty() {
            format!("{total} loaded")
        } else {
            broken.join(", ")
        };
        let message = if broken.is_empty() {
            format!("all {total} same-origin assets load")
        } else {
            format!(
                "{} of {total} assets failed: {}",
                broken.len(),
                broken.join(", ")
            )
        };
        Finding::judge("page.assets", broken.is_empty(), Status::Fail, message)
            .expect("every asset 2xx", actual)
    }
}

/// The scripts, stylesheets and images of a page that live on the page's own origin.
pub fn same_origin_assets(html: &str, base: &Url) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    for tag in tags(html) {
        let attr = match tag.name.as_str() {
            "script" | "img" => "src",
            "link"
                if tag.attr("rel").is_some_and(|r| {
                    r.split_whitespace()
                        .any(|t| t.eq_ignore_ascii_case("stylesheet"))
                }) =>
            {
                "href"
            }
            _ => continue,
        };
        let Some(value) = tag.attr(attr).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let Ok(url) = base.join(value.trim()) else {
            continue;
        };
        if url.origin() == base.origin() && !out.contains(&url) && out.len() < MAX_ASSETS {
            out.push(url);
        }
    }
    out
}

struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A forgiving scan of start tags: enough to find asset references, never a panic on bad HTML.
fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        let inner = &rest[..end];
        rest = &rest[end.min(rest.len())..];
        let name_len = inner
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner[..name_len].to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        out.push(Tag {
            name,
            attrs: attributes(&inner[name_len..]),
        });
    }
    out
}

fn attributes(mut s: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if s.is_empty() {
            return attrs;
        }
        let key_len = s
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(s.len());
        let key = s[..key_len].to_ascii_lowercase();
        s = s[key_len..].trim_start();
        let value = if let Some(v) = s.strip_prefix('=') {
            let v = v.trim_start();
            let (val, rest) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &v[1..];
                    let close = body.find(q).unwrap_or(body.len());
                    (&body[..close], &body[(close + 1).min(body.len())..])
                }
                _ => {
                    let e = v.find(char::is_whitespace).unwrap_or(v.len());
                    (&v[..e], &v[e..])
                }
            };
            s = rest;
            val.to_string()
        } else {
            String::new()
        };
        if key_len == 0 {
            // A stray character such as `=`: skip it so the loop always advances.
            s = s.get(1..).unwrap_or("");
            continue;
        }
        attrs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_same_origin_assets_only() {
        let base = Url::parse("https://example.com/app/").unwrap();
        let html = r#"<html><!-- <script src="/commented.js"> --><head>
            <link rel="stylesheet" href="/s.css"><link rel=icon href="/i.png">
            <script src='main.js' defer></script><script src="https://cdn.example.net/x.js"></script>
            <img src=/logo.png alt=x><img src="/logo.png"><a href="/page">x</a><script src="/s.css"></script>
            <img src="//example.com/abs.png"><broken <tag =x>"#;
        let got: Vec<String> = same_origin_assets(html, &base)
            .iter()
            .map(|u| u.path().to_string())
            .collect();
        assert_eq!(got, ["/s.css", "/app/main.js", "/logo.png", "/abs.png"]);
        assert!(same_origin_assets("<<<>>><img src=\"", &base).is_empty());
    }
}
