"""The header sets both graders see: real site profiles and single-rule variations.

Each case is served at /case/<name> over HTTPS (and over plain HTTP, with the behaviour `http`).
Fields: headers (pairs, repeats allowed), body, ctype, http (redirect | closed | page | http-first |
offhost | stay-http), chain (HTTPS redirect hops before the page, each with its own headers),
cors (none | star | reflect | reflect-credentials), deviation (why shipwatch differs on purpose).
"""

HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
XFO = ("X-Frame-Options", "DENY")
NOSNIFF = ("X-Content-Type-Options", "nosniff")
REF = ("Referrer-Policy", "strict-origin-when-cross-origin")
CORP = ("Cross-Origin-Resource-Policy", "same-origin")
CSP_NONE = ("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'")
PAGE = "<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"
SCRIPT_PAGE = '<!doctype html><html><head><script src="/app.js"></script></head><body></body></html>'
HARDENED = [HSTS, XFO, NOSNIFF, REF, CORP, CSP_NONE]


def case(name, headers, body=PAGE, **kw):
    c = {"name": name, "headers": [list(h) for h in headers], "body": body}
    c.update(kw)
    return c


def without(name):
    return [h for h in HARDENED if h[0] != name]


def variant(name, header, value):
    return case(name, without(header) + [(header, value)])


CASES = [
    # Profiles of what real stacks send by default or when configured well.
    case("bare", []),
    case("hardened", HARDENED),
    case("nginx-default", [("Server", "nginx/1.22.1")]),
    case("apache-php", [("Server", "Apache/2.4.57 (Debian)"), ("X-Powered-By", "PHP/8.2.7"),
                        ("Set-Cookie", "PHPSESSID=abc123; path=/")]),
    case("express-default", [("X-Powered-By", "Express"), ("ETag", 'W/"1c-abc"')]),
    case("helmet-defaults", [
        ("Content-Security-Policy", "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"),
        ("Cross-Origin-Opener-Policy", "same-origin"), ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Origin-Agent-Cluster", "?1"), ("Referrer-Policy", "no-referrer"),
        ("Strict-Transport-Security", "max-age=15552000; includeSubDomains"),
        ("X-Content-Type-Options", "nosniff"), ("X-DNS-Prefetch-Control", "off"),
        ("X-Download-Options", "noopen"), ("X-Frame-Options", "SAMEORIGIN"),
        ("X-Permitted-Cross-Domain-Policies", "none"), ("X-XSS-Protection", "0")]),
    case("django-defaults", [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                             ("Referrer-Policy", "same-origin"), ("Cross-Origin-Opener-Policy", "same-origin"),
                             ("Set-Cookie", "csrftoken=abc; expires=Thu, 01 Jan 2099 00:00:00 GMT; Max-Age=31449600; Path=/; SameSite=Lax")]),
    case("rails-defaults", [("X-Frame-Options", "SAMEORIGIN"), ("X-XSS-Protection", "0"),
                            ("X-Content-Type-Options", "nosniff"), ("X-Permitted-Cross-Domain-Policies", "none"),
                            ("Referrer-Policy", "strict-origin-when-cross-origin"),
                            ("Set-Cookie", "_app_session=abc; path=/; secure; HttpOnly; SameSite=Lax")]),
    case("spring-security", [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
                             ("X-Content-Type-Options", "nosniff"),
                             ("Strict-Transport-Security", "max-age=31536000 ; includeSubDomains"),
                             ("X-Frame-Options", "DENY"), ("X-XSS-Protection", "0"),
                             ("Set-Cookie", "JSESSIONID=abc; Path=/; Secure; HttpOnly")]),
    case("aspnet", [("Server", "Microsoft-IIS/10.0"), ("X-AspNet-Version", "4.0.30319"), ("X-Powered-By", "ASP.NET"),
                    ("Set-Cookie", "ASP.NET_SessionId=abc; path=/; HttpOnly; SameSite=Lax")]),
    case("wordpress", [("Link", '<https://localhost/wp-json/>; rel="https://api.w.org/"'),
                       ("Set-Cookie", "wordpress_test_cookie=WP%20Cookie%20check; path=/; secure")],
         body='<html><head><script src="/wp-includes/js/jquery/jquery.min.js?ver=3.7.1"></script>'
              '<script src="https://stats.wp.com/e-202447.js" defer></script></head></html>'),
    case("bigtech-search", [("Content-Security-Policy-Report-Only", "object-src 'none';base-uri 'self';script-src 'nonce-abc' 'strict-dynamic' 'report-sample' 'unsafe-eval' 'unsafe-inline' https: http:;report-uri https://csp.example/cspreport"),
                            ("X-XSS-Protection", "0"), ("X-Frame-Options", "SAMEORIGIN"),
                            ("Set-Cookie", "AEC=abc; expires=Fri, 16-May-2099 12:00:00 GMT; path=/; domain=localhost; Secure; HttpOnly; SameSite=lax"),
                            ("Set-Cookie", "NID=xyz; expires=Sat, 17-May-2099 12:00:00 GMT; path=/; domain=localhost; HttpOnly")],
         body='<html><script nonce="abc">x()</script></html>'),
    case("code-host", [("Strict-Transport-Security", "max-age=31536000; includeSubdomains; preload"),
                       ("X-Frame-Options", "deny"), ("X-Content-Type-Options", "nosniff"), ("X-XSS-Protection", "0"),
                       ("Referrer-Policy", "origin-when-cross-origin, strict-origin-when-cross-origin"),
                       ("Content-Security-Policy", "default-src 'none'; base-uri 'self'; child-src https://localhost/assets-cdn/worker/; connect-src 'self' uploads.example.com wss://alive.example.com; font-src https://assets.example.com; form-action 'self' https://localhost; frame-ancestors 'none'; img-src 'self' data: https://avatars.example.com; manifest-src 'self'; media-src https://localhost; script-src https://assets.example.com; style-src 'unsafe-inline' https://assets.example.com; upgrade-insecure-requests"),
                       ("Set-Cookie", "_gh_sess=abc; path=/; secure; HttpOnly; SameSite=Lax"),
                       ("Set-Cookie", "_octo=GH1.1; Path=/; Domain=localhost; Expires=Sun, 23 Nov 2099 21:00:00 GMT; Secure; SameSite=Lax"),
                       ("Set-Cookie", "logged_in=no; Path=/; Domain=localhost; Expires=Sun, 23 Nov 2099 21:00:00 GMT; HttpOnly; Secure; SameSite=Lax")],
         body='<html><script crossorigin="anonymous" type="application/javascript" src="https://assets.example.com/app.js" integrity="sha512-abc"></script></html>'),
    case("docs-site", [("Strict-Transport-Security", "max-age=63072000"), ("X-Content-Type-Options", "nosniff"),
                       ("X-Frame-Options", "DENY"), ("Referrer-Policy", "strict-origin-when-cross-origin"),
                       ("Content-Security-Policy", "default-src 'self'; script-src 'report-sample' 'self' https://www.googletagmanager.com/gtag/js; style-src 'report-sample' 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; connect-src 'self'; font-src 'self'; frame-src 'self'; img-src 'self' data: https:; manifest-src 'self'; media-src 'self'; worker-src 'self'")],
         body='<html><script src="/static/js/main.js"></script><script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script></html>'),
    case("cdn-static", [("Server", "AmazonS3"), ("x-amz-request-id", "ABC"), ("Cache-Control", "max-age=3600")]),
    case("spa-cloud", [HSTS, ("X-Content-Type-Options", "nosniff"),
                       ("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src * data:"),
                       ("Set-Cookie", "session=abc; Path=/; Secure; SameSite=None")],
         body=SCRIPT_PAGE),
    # Strict-Transport-Security.
    variant("hsts-six-months-exact", HSTS[0], "max-age=15552000"),
    variant("hsts-just-under-six-months", HSTS[0], "max-age=15551999"),
    variant("hsts-seconds-suffix", HSTS[0], "max-age=31536000s"),
    variant("hsts-max-age-twice", HSTS[0], "max-age=100; max-age=31536000"),
    variant("hsts-quoted", HSTS[0], 'max-age="31536000"'),
    variant("hsts-no-max-age", HSTS[0], "includeSubDomains"),
    variant("hsts-zero", HSTS[0], "max-age=0"),
    variant("hsts-spaces-around-equals", HSTS[0], "max-age = 31536000"),
    case("hsts-sent-twice", HARDENED + [HSTS]),
    case("hsts-missing", without(HSTS[0])),
    # X-Frame-Options and frame-ancestors.
    variant("xfo-sameorigin", XFO[0], "SAMEORIGIN"),
    case("xfo-sent-twice", without(XFO[0]) + [("X-Frame-Options", "SAMEORIGIN"), ("X-Frame-Options", "SAMEORIGIN")]),
    variant("xfo-allow-from", XFO[0], "ALLOW-FROM https://example.com/"),
    variant("xfo-invalid", XFO[0], "allowall"),
    case("xfo-missing-csp-without-fa", [HSTS, NOSNIFF, REF, ("Content-Security-Policy", "default-src 'self'")]),
    case("frame-ancestors-self-only", [HSTS, NOSNIFF, REF, ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'")]),
    case("frame-ancestors-star", [HSTS, NOSNIFF, REF, ("Content-Security-Policy", "default-src 'self'; frame-ancestors *")]),
    case("frame-ancestors-in-meta", [HSTS, NOSNIFF, REF],
         body="<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; frame-ancestors 'none'\"></head></html>"),
    # X-Content-Type-Options and Cross-Origin-Resource-Policy.
    case("nosniff-sent-twice", HARDENED + [NOSNIFF]),
    variant("nosniff-invalid", NOSNIFF[0], "nosniff; mode=block"),
    case("nosniff-missing", without(NOSNIFF[0])),
    variant("corp-same-site", CORP[0], "same-site"),
    variant("corp-cross-origin", CORP[0], "cross-origin"),
    case("corp-sent-twice", HARDENED + [CORP]),
    variant("corp-invalid", CORP[0], "same-origin-allow-popups"),
    # Referrer-Policy, header and meta.
    variant("referrer-no-referrer", REF[0], "no-referrer"),
    variant("referrer-unsafe-url", REF[0], "unsafe-url"),
    variant("referrer-last-valid-wins", REF[0], "no-referrer, unsafe-url"),
    variant("referrer-invalid", REF[0], "sometimes"),
    case("referrer-meta-only", without(REF[0]), body='<html><head><meta name="referrer" content="no-referrer"></head></html>'),
    case("referrer-meta-overrides", without(REF[0]) + [("Referrer-Policy", "unsafe-url")],
         body='<html><head><meta name="referrer" content="same-origin"></head></html>'),
    # Content-Security-Policy.
    variant("csp-unsafe-inline-script", "Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'"),
    variant("csp-unsafe-eval", "Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-eval'; object-src 'none'"),
    variant("csp-nonce-disables-inline", "Content-Security-Policy", "default-src 'self'; script-src 'nonce-r4nd0m' 'unsafe-inline'; object-src 'none'"),
    variant("csp-strict-dynamic-no-nonce", "Content-Security-Policy", "default-src 'self'; script-src 'strict-dynamic'"),
    variant("csp-strict-dynamic-nonce", "Content-Security-Policy", "object-src 'none'; script-src 'nonce-r4nd0m' 'strict-dynamic' https: 'unsafe-inline'; base-uri 'none'"),
    variant("csp-http-images", "Content-Security-Policy", "default-src 'self'; img-src 'self' http://img.example.com"),
    variant("csp-http-scripts", "Content-Security-Policy", "default-src 'self'; script-src 'self' http://js.example.com"),
    variant("csp-inline-style-only", "Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'"),
    variant("csp-repeated-directive", "Content-Security-Policy", "default-src 'self'; script-src 'self'; script-src 'none'"),
    variant("csp-repeated-report-uri", "Content-Security-Policy", "default-src 'none'; report-uri /r1; report-uri /r2"),
    case("csp-two-headers", without("Content-Security-Policy") + [("Content-Security-Policy", "default-src 'self'"),
                                                                   ("Content-Security-Policy", "script-src 'self'")]),
    case("csp-report-only-only", without("Content-Security-Policy") + [("Content-Security-Policy-Report-Only", "default-src 'self'")]),
    case("csp-meta-only", without("Content-Security-Policy"),
         body="<html><head><meta http-equiv=\"content-security-policy\" content=\"default-src 'self'; object-src 'none'\"></head></html>"),
    case("csp-meta-and-header", without("Content-Security-Policy") + [("Content-Security-Policy", "default-src 'self' https://cdn.example.com")],
         body="<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'\"></head></html>"),
    variant("csp-too-short", "Content-Security-Policy", "a"),
    variant("csp-no-default-src", "Content-Security-Policy", "script-src 'self'; object-src 'none'"),
    variant("csp-data-script", "Content-Security-Policy", "default-src 'self'; script-src 'self' data:"),
    variant("csp-broad-object", "Content-Security-Policy", "default-src 'self'; object-src https:"),
    # Cookies, on the page and on the way to it.
    case("cookie-session-no-secure", HARDENED + [("Set-Cookie", "sessionid=abc; Path=/; HttpOnly")]),
    case("cookie-session-no-secure-no-hsts", without(HSTS[0]) + [("Set-Cookie", "sessionid=abc; Path=/; HttpOnly")]),
    case("cookie-session-no-httponly", HARDENED + [("Set-Cookie", "sessionid=abc; Path=/; Secure; SameSite=Lax")]),
    case("cookie-csrf-no-samesite", HARDENED + [("Set-Cookie", "csrftoken=abc; Path=/; Secure")]),
    case("cookie-xsrf-readable", HARDENED + [("Set-Cookie", "XSRF-TOKEN=abc; Path=/; Secure; SameSite=Strict")]),
    case("cookie-samesite-invalid", HARDENED + [("Set-Cookie", "pref=1; Path=/; Secure; SameSite=Sometimes")]),
    case("cookie-samesite-none-insecure", HARDENED + [("Set-Cookie", "pref=1; Path=/; SameSite=None")]),
    case("cookie-all-good", HARDENED + [("Set-Cookie", "sessionid=abc; Path=/; Secure; HttpOnly; SameSite=Strict"),
                                        ("Set-Cookie", "theme=dark; Path=/; Secure; SameSite=Lax")]),
    case("cookie-no-samesite", HARDENED + [("Set-Cookie", "sessionid=abc; Path=/; Secure; HttpOnly")]),
    case("cookie-login-name", HARDENED + [("Set-Cookie", "remember_login=1; Path=/; Secure")]),
    case("cookie-affinity-ignored", HARDENED + [("Set-Cookie", "heroku-session-affinity=abc; Path=/")]),
    case("cookie-other-domain", HARDENED + [("Set-Cookie", "sessionid=abc; Domain=example.org; Path=/")]),
    case("cookie-bad-host-prefix", HARDENED + [("Set-Cookie", "__Host-sess=abc; Path=/app; Secure; HttpOnly")]),
    case("cookie-expired-session", HARDENED + [("Set-Cookie", "sessionid=; Path=/; Max-Age=0")]),
    case("cookie-on-redirect-hop", HARDENED, chain=[{"status": 302, "headers": [["Set-Cookie", "sessionid=abc; Path=/"]]}]),
    case("cookie-fixed-after-redirect", HARDENED + [("Set-Cookie", "sessionid=abc; Path=/; Secure; HttpOnly; SameSite=Lax")],
         chain=[{"status": 302, "headers": [["Set-Cookie", "sessionid=abc; Path=/"]]}]),
    # Subresource integrity.
    case("sri-same-origin-no-sri", HARDENED, body=SCRIPT_PAGE),
    case("sri-same-origin-one-with-sri", HARDENED, body='<html><script src="/a.js" integrity="sha384-x"></script><script src="/b.js"></script></html>'),
    case("sri-external-no-sri", HARDENED, body='<html><script src="https://cdn.example.com/lib.js"></script></html>'),
    case("sri-external-with-sri", HARDENED, body='<html><script src="/own.js"></script><script src="https://cdn.example.com/lib.js" integrity="sha384-x" crossorigin="anonymous"></script></html>'),
    case("sri-protocol-relative", HARDENED, body='<html><script src="//cdn.example.com/lib.js"></script></html>'),
    case("sri-insecure-external", HARDENED, body='<html><script src="http://cdn.example.com/lib.js"></script></html>'),
    case("sri-insecure-external-with-sri", HARDENED, body='<html><script src="http://cdn.example.com/lib.js" integrity="sha384-x"></script></html>'),
    case("sri-sibling-subdomain", HARDENED, body='<html><script src="https://static.localhost/app.js"></script></html>'),
    case("sri-commented-script", HARDENED, body='<html><!-- <script src="https://cdn.example.com/x.js"></script> --><p>x</p></html>'),
    case("sri-not-html", HARDENED, ctype="application/json", body='{"ok": true}'),
    case("sri-inline-only", HARDENED, body="<html><script>boot()</script></html>"),
    # Redirection from plain HTTP.
    case("redirect-none-listening", HARDENED, http="closed"),
    case("redirect-missing", HARDENED, http="page"),
    case("redirect-via-http-first", HARDENED, http="http-first"),
    case("redirect-off-host", HARDENED, http="offhost"),
    case("redirect-stays-http", HARDENED, http="stay-http"),
    # CORS on the page.
    case("cors-wildcard", HARDENED, cors="star"),
    case("cors-reflect", HARDENED, cors="reflect"),
    case("cors-reflect-credentials", HARDENED, cors="reflect-credentials",
         deviation="the Observatory documents -50 for any origin reflected with credentials but never applies it; shipwatch does"),
]
