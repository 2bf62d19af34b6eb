"""CORS behaviours both scanners see, served for https://api.example.com/case/<name>.

Each case has `allow(method, origin)` returning the Access-Control-Allow-Origin values to send
(a list; two when a proxy adds its own) or None, `creds` (send Allow-Credentials: true), and
`allowed` (the origins the site means to allow, given to shipwatch). `correct` marks a
configuration with nothing to report; `expect_warn` lists the warnings it should still give;
`deviation` says why the peer's verdict is wrong.
"""
import re

APP = "https://app.example.com"
WWW = "https://www.example.com"


def exact(*origins):
    return lambda m, o: [o] if o in origins else None


def regex(pattern):
    r = re.compile(pattern)
    return lambda m, o: [o] if r.search(o) else None


def host(o):
    return o.split("://", 1)[-1]


def case(name, allow, creds=False, allowed=(APP,), **kw):
    return dict(name=name, allow=allow, creds=creds, allowed=list(allowed), **kw)


CASES = [
    # Configurations with nothing to report.
    case("exact-allowlist", exact(APP), creds=True, correct=True),
    case("exact-two-origins", exact(APP, WWW), creds=True, allowed=(APP, WWW), correct=True),
    case("no-cors-at-all", lambda m, o: None, allowed=(), correct=True),
    case("public-api-wildcard", lambda m, o: ["*"], allowed=(), correct=True, expect_warn=["cors.reflect"]),
    case("deliberate-subdomains", regex(r"^https://[a-z0-9-]+\.example\.com$"), correct=True,
         expect_warn=["cors.subdomain"]),
    case("anchored-regex", regex(r"^https://(app|www)\.example\.com$"), creds=True, correct=True),
    # Reflection.
    case("reflect-any-credentials", lambda m, o: [o], creds=True),
    case("reflect-any", lambda m, o: [o]),
    case("reflect-on-get-only", lambda m, o: [o] if m == "GET" or o == APP else None, creds=True),
    case("reflect-on-post-only", lambda m, o: [o] if m == "POST" or o == APP else None, creds=True),
    # Look-alike hosts.
    case("unanchored-regex", regex(r"api.example.com"), creds=True),
    case("end-anchored-only", regex(r"example\.com$"), creds=True),
    case("start-anchored-only", regex(r"^https://api\.example\.com"), creds=True, allowed=()),
    case("unescaped-dot-before-tld", regex(r"^https://(www|api)\.example.com$"), creds=True, allowed=(WWW,)),
    case("host-is-a-tail-of-the-domain", lambda m, o: [o] if o.startswith("https://") and "example.com".endswith(host(o)) else None, creds=True, allowed=()),
    case("any-char-but-dot-after-host", regex(r"^https://api\.example\.com([^./:].*)?$"), creds=True, allowed=()),
    case("null-allowed", exact(APP, "null"), creds=True),
    case("http-scheme-allowed", regex(r"^https?://(api|app)\.example\.com$"), creds=True),
    case("any-subdomain-of-the-api", regex(r"^https://([a-z0-9-]+\.)*api\.example\.com$"), creds=True, allowed=()),
    # Hosting platforms.
    case("github-pages-trusted", regex(r"^https://([a-z0-9-]+\.github\.io|app\.example\.com)$"), creds=True),
    case("codepen-trusted", exact(APP, "https://codepen.io"), creds=True),
    case("vercel-previews-trusted", regex(r"^https://([a-z0-9-]+\.vercel\.app|app\.example\.com)$"), creds=True),
    # Broken for the site's own front end.
    case("allowed-origin-sent-twice", lambda m, o: [o, o] if o == APP else None),
    case("preflight-only", lambda m, o: [o] if m == "OPTIONS" and o == APP else None),
    case("wildcard-with-credentials", lambda m, o: ["*"], creds=True, allowed=()),
    # Where the peer reads what browsers reject.
    case("reflect-in-upper-case", lambda m, o: [o.upper()] if o != APP else [o], creds=True,
         deviation="browsers compare Access-Control-Allow-Origin byte for byte; CORScanner lower-cases both sides"),
]
