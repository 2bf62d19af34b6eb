#!/usr/bin/env bash
# Latency-engine benchmark: shipwatch against wrk on the same loopback endpoints, same connections
# and duration. Prints the throughput ratio (target ≥ 0.8× wrk), p50/p99 agreement on a
# fixed-delay endpoint (target within 10%), and shipwatch's peak RSS over 100k requests (< 30 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
DELAY_MS=${DELAY_MS:-20}

cargo build --release --quiet --bin shipwatch --example testsite
. bench/nginx.sh
work=$BENCH_WORK
PORT=$NGINX_PORT

# The project's test site for the fixed-delay endpoint (nginx cannot delay by itself).
./target/release/examples/testsite --for 600 >"$work/site.txt" &
BENCH_PIDS=$!
for _ in $(seq 1 100); do [ -s "$work/site.txt" ] && break; sleep 0.05; done
read -r HTTPS_PORT _ CA_FILE <"$work/site.txt"

python3 - "$PORT" "$HTTPS_PORT" "$CA_FILE" "$DURATION" "$CONNS" "$DELAY_MS" "$work" <<'PY'
import json, os, re, subprocess, sys
port, https_port, ca, duration, conns, delay, work = sys.argv[1:]
static = f"http://127.0.0.1:{port}/index.html"
delayed = f"https://localhost:{https_port}/delay/{delay}"

def shipwatch(url, extra, measure_rss=False):
    cfg = os.path.join(work, "lat.toml")
    with open(cfg, "w") as f:
        f.write(f'[[check]]\nname = "lat"\nkind = "latency"\nurl = "{url}"\ntimeout = "300s"\n{extra}\nexpect = [\'errors < 1%\']\n')
    p = subprocess.Popen(["./target/release/shipwatch", "check", "-c", cfg, "--ca-file", ca, "--format", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    report = json.loads(out)
    check = report["checks"][0]
    if check["error"]:
        sys.exit(f"shipwatch could not run against {url}: {check['error']}")
    lat = check["details"]["latency"]
    if lat["errors"]:
        print(f"  note: {lat['errors']} errors against {url}: {[f['message'] for f in check['findings']]}")
    return lat, usage.ru_maxrss / 1024

def wrk(url, threads, c, d):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{c}", f"-d{d}s", "--latency", url], capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw errors against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    return rps, pct("50"), pct("99")

print(f"shipwatch latency engine vs wrk, loopback, {conns} connections, {duration}s each")
w_rps, _, _ = wrk(static, 2, int(conns), duration)
s_lat, s_rss = shipwatch(static, f"concurrency = {conns}\nduration = \"{duration}s\"")
ratio = s_lat["throughput_rps"] / w_rps
print(f"  throughput  nginx static file: wrk {w_rps:9.0f} req/s   shipwatch {s_lat['throughput_rps']:9.0f} req/s   ratio {ratio:.2f}x   target >= 0.80   {'OK' if ratio >= 0.8 else 'UNDER'}")

dc = 4
w_rps, w50, w99 = wrk(delayed.replace("https://localhost", "https://127.0.0.1"), 1, dc, duration)
s_lat, _ = shipwatch(delayed, f"concurrency = {dc}\nduration = \"{duration}s\"")
d50 = abs(s_lat["p50_ms"] - w50) / w50
d99 = abs(s_lat["p99_ms"] - w99) / w99
print(f"  fixed {delay} ms endpoint ({dc} connections): p50 wrk {w50:.2f} ms, shipwatch {s_lat['p50_ms']:.2f} ms ({d50*100:.1f}% apart)   "
      f"p99 wrk {w99:.2f} ms, shipwatch {s_lat['p99_ms']:.2f} ms ({d99*100:.1f}% apart)   target within 10%   {'OK' if max(d50, d99) <= 0.10 else 'APART'}")

s_lat, rss = shipwatch(static, f"requests = 100000\nconcurrency = {conns}")
print(f"  memory      100k requests, {conns} connections: peak RSS {rss:.1f} MiB   target < 30 MiB   {'OK' if rss < 30 else 'OVER'}   ({s_lat['requests']} requests, {s_lat['errors']} errors)")
PY
