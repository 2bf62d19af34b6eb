//! `kind = "page"`: the front end answers 200 with HTML, and every same-origin asset it names loads.

use crate::assert::Context;
use crate::check::build::Build;
use crate::check::read::{read_expect, required};
use crate::doc::{Diagnostics, Spanned, Table};
use std::ops::ControlFlow;
use std::sync::Mutex;

use url::Url;

use crate::assert::Assertion;
use crate::net::{MAX_REDIRECTS, Pool, Request};

use super::{Ctx, Finding, Probed, Status, body_limit, judge_assertions, subject_of};

/// A page and the assertions a user added to it.
#[derive(Debug, Clone)]
pub struct PageProbe {
    pub request: Request,
    pub expect: Vec<Assertion>,
    pub assets: bool,
}

/// At most this many same-origin assets are checked, so a page with thousands of images stays a
/// smoke test; the finding says how many more there were.
const MAX_ASSETS: usize = 200;
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
            .with_values("200", resp.status.to_string()),
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
            .with_values(
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
            redact: Vec::new(),
        }
    }

    async fn check_assets(&self, ctx: &Ctx<'_>, assets: Assets) -> Finding {
        let total = assets.urls.len();
        // A few workers, each on its own keep-alive connection, share the assets.
        let queue = Mutex::new(assets.urls.into_iter());
        let workers = (0..PARALLEL_ASSETS.min(total)).map(|_| async {
            let mut pool = Pool::new();
            let mut broken = Vec::new();
            while let Some(url) = queue.lock().ok().and_then(|mut q| q.next()) {
                let mut req = Request::get(url.clone());
                req.insecure = self.request.insecure;
                req.headers = self.request.headers.clone();
                req.secret_headers = self.request.secret_headers.clone();
                // Only the status matters for an asset: a short read keeps memory flat.
                req.max_body = self.request.max_body.min(ASSET_BODY);
                match pool
                    .fetch(ctx.engine, &req, ctx.overrides, ctx.deadline, MAX_REDIRECTS)
                    .await
                {
                    Ok(ex) if (200..300).contains(&ex.response.status) => {}
                    Ok(ex) => broken.push(format!("{} ({})", url.path(), ex.response.status)),
                    Err(e) => broken.push(format!("{} ({})", url.path(), e.kind())),
                }
            }
            broken
        });
        let broken: Vec<String> = futures_util::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect();
        let skipped = if assets.skipped > 0 {
            format!(
                "; {} more same-origin assets were not checked (the first {MAX_ASSETS} were)",
                assets.skipped
            )
        } else {
            String::new()
        };
        let actual = if broken.is_empty() {
            format!("{total} loaded{skipped}")
        } else {
            broken.join(", ")
        };
        let message = if broken.is_empty() {
            format!("all {total} same-origin assets load{skipped}")
        } else {
            format!(
                "{} of {total} assets failed: {}{skipped}",
                broken.len(),
                broken.join(", ")
            )
        };
        Finding::judge("page.assets", broken.is_empty(), Status::Fail, message)
            .with_values("every asset 2xx", actual)
    }
}

/// The scripts, stylesheets and images of a page that live on the page's own origin.
/// The same-origin assets a page names, the first [`MAX_ASSETS`] of them.
#[derive(Debug, Default)]
pub(crate) struct Assets {
    pub urls: Vec<Url>,
    /// Further distinct same-origin assets that were not kept.
    pub skipped: usize,
}

/// Same-origin scripts, stylesheets and images, in page order, without repeats. One pass over the
/// page, with memory bounded by [`MAX_ASSETS`] whatever the page holds.
pub(crate) fn same_origin_assets(html: &str, base: &Url) -> Assets {
    let mut out = Assets::default();
    // Seen assets by hash only, capped, so a hostile page cannot grow this without bound.
    let mut seen = std::collections::HashSet::new();
    crate::html::scan(html, |tag| {
        if let Some(url) = asset_url(tag, base).filter(|u| u.origin() == base.origin())
            && seen.len() < 100_000
            && seen.insert(hash(url.as_str()))
        {
            if out.urls.len() < MAX_ASSETS {
                out.urls.push(url);
            } else {
                out.skipped += 1;
            }
        }
        ControlFlow::Continue(())
    });
    out
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The URL a tag loads as a script, stylesheet or image, if it loads one.
fn asset_url(tag: &crate::html::Tag<'_>, base: &Url) -> Option<Url> {
    let attr = if tag.is("script") || tag.is("img") {
        "src"
    } else if tag.is("link")
        && tag.attr("rel").is_some_and(|r| {
            r.split_whitespace()
                .any(|t| t.eq_ignore_ascii_case("stylesheet"))
        })
    {
        "href"
    } else {
        return None;
    };
    let value = tag.attr(attr)?;
    let value = value.trim();
    if value.is_empty() || tag.in_template {
        return None;
    }
    base.join(value).ok()
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
            .urls
            .iter()
            .map(|u| u.path().to_string())
            .collect();
        assert_eq!(got, ["/s.css", "/app/main.js", "/logo.png", "/abs.png"]);
        assert!(
            same_origin_assets("<<<>>><img src=\"", &base)
                .urls
                .is_empty()
        );
        let many: String = (0..250).map(|i| format!("<img src=/i{i}.png>")).collect();
        let a = same_origin_assets(&many, &base);
        assert_eq!((a.urls.len(), a.skipped), (MAX_ASSETS, 50));
    }
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "page"` check takes besides the common ones.
pub const KEYS: &[&str] = &["url", "expect", "assets"];

/// `kind = "page"`: a front-end page and its same-origin assets.
#[derive(Debug, Clone)]
pub struct PageSpec {
    pub url: Spanned<String>,
    pub expect: Vec<Spanned<String>>,
    pub assets: bool,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<PageSpec> {
    let url = required(t, "url", diags);
    let expect = read_expect(t, Context::Response, diags);
    let assets = t.bool("assets", diags).unwrap_or(true);
    Some(PageSpec {
        url: url?,
        expect,
        assets,
    })
}

/// The job of a `kind = "page"` check, its strings interpolated.
pub(crate) fn build(p: &PageSpec, b: &mut Build<'_>) -> Option<PageProbe> {
    let url = b.url(&p.url)?;
    let expect = b.expect(&p.expect, Context::Response);
    Some(PageProbe {
        request: b.request(url),
        expect,
        assets: p.assets,
    })
}
