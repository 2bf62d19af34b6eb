#!/usr/bin/env bash
# Latency-engine benchmark: shipwatch against wrk on the same loopback endpoints, same connections,
# threads and duration, at 32 and at 256 connections (target ≥ 1.0× wrk); over HTTP/2 against
# h2load (Debian's nghttp2-client) with the same connections, streams and threads (target ≥ 1.0×);
# p50/p99 agreement on a fixed-delay endpoint (target within 10%), and shipwatch's peak RSS over
# 100k requests (< 30 MiB).
#
# The load generator and nginx share this machine's cores, so one run against another swings by
# 10% or more: each comparison runs ROUNDS times, the peer and shipwatch alternating, and prints
# the median of each and the median of the rounds' ratios, with each tool's own CPU time per
# request (user + system, from the kernel's accounting of the child), which swings much less.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-1 2}
CONNS=${CONNS:-32}
DELAY_MS=${DELAY_MS:-20}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-16}
command -v h2load >/dev/null 2>&1 || {
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client >/dev/null
}

cargo build --release --quiet --bin shipwatch --example testsite
. bench/nginx.sh
work=$BENCH_WORK
PORT=$NGINX_PORT

# The project's test site for the fixed-delay endpoint (nginx cannot delay by itself).
./target/release/examples/testsite --for 600 >"$work/site.txt" &
BENCH_PIDS=$!
for _ in $(seq 1 100); do [ -s "$work/site.txt" ] && break; sleep 0.05; done
read -r HTTPS_PORT _ CA_FILE <"$work/site.txt"

python3 - "$PORT" "$HTTPS_PORT" "$CA_FILE" "$DURATION" "$CONNS" "$DELAY_MS" "$work" "$NGINX_TLS_PORT" "$NGINX_CA" "$H2_CONNS" "$H2_STREAMS" "$ROUNDS" "$THREADS" <<'PY'
import json, os, re, statistics, subprocess, sys
(port, https_port, ca, duration, conns, delay, work, tls_port, nginx_ca, h2_conns, h2_streams,
 rounds, threads) = sys.argv[1:]
rounds = int(rounds)
static = f"http://127.0.0.1:{port}/index.html"
delayed = f"https://localhost:{https_port}/delay/{delay}"

def timed(cmd):
    """Runs cmd; returns its stdout, and its CPU seconds (user + system)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, _, usage = os.wait4(p.pid, 0)
    return out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

def shipwatch(url, extra, ca=ca):
    cfg = os.path.join(work, "lat.toml")
    with open(cfg, "w") as f:
        f.write(f'[[check]]\nname = "lat"\nkind = "latency"\nurl = "{url}"\ntimeout = "300s"\n{extra}\nexpect = [\'errors < 1%\']\n')
    out, cpu, rss = timed(["./target/release/shipwatch", "check", "-c", cfg, "--ca-file", ca, "--format", "json"])
    check = json.loads(out)["checks"][0]
    if check["error"]:
        sys.exit(f"shipwatch could not run against {url}: {check['error']}")
    lat = check["details"]["latency"]
    if lat["errors"]:
        print(f"  note: {lat['errors']} errors against {url}: {[f['message'] for f in check['findings']]}")
    return lat, cpu, rss

def wrk(url, threads, c, d):
    out, cpu, _ = timed(["wrk", f"-t{threads}", f"-c{c}", f"-d{d}s", "--latency", url])
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw errors against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    def pct(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    return rps, cpu / n * 1e6, pct("50"), pct("99")

def h2load(url, threads, c, m, d):
    out, cpu, _ = timed(["h2load", "-t", str(threads), "-c", str(c), "-m", str(m), "-D", str(d), url])
    done = re.search(r"requests: \d+ total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    if not done or int(done.group(4)) > 0:
        sys.exit(f"h2load saw failures against {url}:\n{out}")
    return float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1)), cpu / int(done.group(2)) * 1e6

def compare(label, peer_name, peer, ours):
    """ROUNDS alternating runs of the peer and shipwatch; medians and the median ratio."""
    p_rps, p_cpu, s_rps, s_cpu, ratios = [], [], [], [], []
    for _ in range(rounds):
        r, c = peer()
        lat, cpu, _ = ours()
        p_rps.append(r); p_cpu.append(c)
        s_rps.append(lat["throughput_rps"]); s_cpu.append(cpu / max(lat["requests"], 1) * 1e6)
        ratios.append(s_rps[-1] / r)
    ratio = statistics.median(ratios)
    print(f"  {label}: {peer_name} {statistics.median(p_rps):8.0f} req/s ({statistics.median(p_cpu):5.2f} us CPU/req)   "
          f"shipwatch {statistics.median(s_rps):8.0f} req/s ({statistics.median(s_cpu):5.2f} us CPU/req)   "
          f"ratio {ratio:.2f}x (rounds {', '.join(f'{x:.2f}' for x in ratios)})   target >= 1.00   {'OK' if ratio >= 1.0 else 'UNDER'}")

print(f"shipwatch latency engine vs wrk and h2load, loopback nginx, {duration}s a run, {rounds} rounds, {os.cpu_count()} cores")
for t in [int(x) for x in threads.split()]:
    for c in sorted({int(conns), 256}):
        compare(f"HTTP/1.1, {c:3} connections, {t} thread{'s' if t > 1 else ' '}", "wrk",
                lambda: wrk(static, t, c, duration)[:2],
                lambda: shipwatch(static, f"concurrency = {c}\nthreads = {t}\nduration = \"{duration}s\"\nhttp2 = false"))
    h2_url = f"https://localhost:{tls_port}/index.html"
    compare(f"HTTP/2, {h2_conns} connections x {h2_streams} streams (TLS 1.3), {t} thread{'s' if t > 1 else ' '}", "h2load",
            lambda: h2load(h2_url, t, h2_conns, h2_streams, duration),
            lambda: shipwatch(h2_url, f"concurrency = {h2_conns}\nstreams = {h2_streams}\nthreads = {t}\nhttp2 = true\nduration = \"{duration}s\"", ca=nginx_ca))

dc = 4
_, _, w50, w99 = wrk(delayed.replace("https://localhost", "https://127.0.0.1"), 1, dc, duration)
s_lat, _, _ = shipwatch(delayed, f"concurrency = {dc}\nduration = \"{duration}s\"")
d50 = abs(s_lat["p50_ms"] - w50) / w50
d99 = abs(s_lat["p99_ms"] - w99) / w99
print(f"  fixed {delay} ms endpoint ({dc} connections): p50 wrk {w50:.2f} ms, shipwatch {s_lat['p50_ms']:.2f} ms ({d50*100:.1f}% apart)   "
      f"p99 wrk {w99:.2f} ms, shipwatch {s_lat['p99_ms']:.2f} ms ({d99*100:.1f}% apart)   target within 10%   {'OK' if max(d50, d99) <= 0.10 else 'APART'}")

s_lat, _, rss = shipwatch(static, f"requests = 100000\nconcurrency = {conns}")
print(f"  memory      100k requests, {conns} connections: peak RSS {rss:.1f} MiB   target < 30 MiB   {'OK' if rss < 30 else 'OVER'}   ({s_lat['requests']} requests, {s_lat['errors']} errors)")
PY
