#!/usr/bin/env bash
# Peak memory against hostile targets: each case is one `shipwatch check` of one check against
# examples/hostile.rs on loopback, with a 3 s check timeout (more for the bulk latency run). Prints
# the peak RSS of every case and whether it stays under the 64 MiB target.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin shipwatch --example hostile
BIN=${SHIPWATCH:-./target/release/shipwatch}   # SHIPWATCH=path/to/an/older/build compares one
WORK=$(mktemp -d)
./target/release/examples/hostile --for 600 >"$WORK/port" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
python3 - "$(cat "$WORK/port")" "$WORK" "$BIN" <<'PY'
import json, os, subprocess, sys
port, work, binary = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
cases = [
    ("page of 1.2M tiny tags (10 MB)", f'kind = "page"\nurl = "{base}/tags"'),
    ("headers on the same page", f'kind = "headers"\nurl = "{base}/tags"\nmin_grade = "F"'),
    ("page naming 900,000 assets", f'kind = "page"\nurl = "{base}/assets"'),
    ("http: a 5 GB body", f'kind = "http"\nurl = "{base}/endless"'),
    ("http: deep JSON with a JSONPath", f'kind = "http"\nurl = "{base}/deep-json"\nexpect = [\'json $.a exists\']'),
    ("http: 5,000 response headers", f'kind = "http"\nurl = "{base}/headers"'),
    ("http: a redirect loop", f'kind = "http"\nurl = "{base}/loop"'),
    ("headers: 90 cookies of 4 KB", f'kind = "headers"\nurl = "{base}/cookies"\nmin_grade = "F"'),
    ("cors against an origin echo", f'kind = "cors"\nurl = "{base}/echo"'),
    ("exposure on the tag page", f'kind = "exposure"\nurl = "{base}/tags"'),
    ("latency: 16 connections, 50 MB bodies", f'kind = "latency"\nurl = "{base}/big"\nrequests = 48\nconcurrency = 16\ntimeout = "30s"'),
    ("latency: 4 connections, endless bodies", f'kind = "latency"\nurl = "{base}/endless"\nrequests = 8\nconcurrency = 4'),
    ("latency: server answers Connection: close", f'kind = "latency"\nurl = "{base}/close"\nrequests = 2000\nconcurrency = 8\ntimeout = "30s"'),
    ("latency: server drops kept-alive connections", f'kind = "latency"\nurl = "{base}/drop"\nrequests = 2000\nconcurrency = 8\ntimeout = "30s"'),
]
print(f"{'case':46} {'peak RSS':>10}  {'status':7} target < 64 MiB")
worst = 0.0
for name, body in cases:
    toml = f"{work}/case.toml"
    timeout = "" if "timeout" in body else 'timeout = "3s"\n'
    open(toml, "w").write(f'[[check]]\nname = "case"\n{timeout}{body}\n')
    p = subprocess.Popen([binary, "check", "-c", toml, "--format", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, _, usage = os.wait4(p.pid, 0)
    mib = usage.ru_maxrss / 1024
    worst = max(worst, mib)
    status, extra = "?", ""
    try:
        check = json.loads(out)["checks"][0]
        status = check["status"]
        lat = check.get("details", {}).get("latency")
        if lat:
            extra = f"  errors {lat['errors']}/{lat['requests']}, reconnects {lat.get('reconnects', 0)}"
    except Exception:
        pass
    print(f"{name:46} {mib:7.1f} MiB  {status:7} {'OK' if mib < 64 else 'OVER'}{extra}")
print(f"worst case: {worst:.1f} MiB")
PY
