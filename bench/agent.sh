#!/usr/bin/env bash
# Agent benchmark: 1,000 http checks against one loopback nginx at a 10 s interval for 2 minutes.
# Prints idle RSS (< 15 MiB), steady RSS at minutes 1 and 2 (< 50 MiB, no growth), CPU as a share
# of one core (< 10%) and the time of a /metrics scrape with 1,000 checks (< 20 ms).
#
# Then 10,000 HTTPS checks (a fresh TLS 1.3 connection each run) at a 60 s interval for
# BIG_MINUTES minutes: steady RSS (< 64 MiB), CPU per run (< 1.0 ms) and scrape time (< 0.5 s).
# BIG_CHECKS=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKS=${CHECKS:-1000}
MINUTES=${MINUTES:-2}
BIG_CHECKS=${BIG_CHECKS:-10000}
BIG_MINUTES=${BIG_MINUTES:-3}
cargo build --release --quiet --bin shipwatch
. bench/nginx.sh

python3 - "$NGINX_PORT" "$BENCH_WORK" "$CHECKS" "$MINUTES" "$NGINX_TLS_PORT" "$NGINX_CA" "$BIG_CHECKS" "$BIG_MINUTES" <<'PY'
import json, os, re, socket, statistics, subprocess, sys, time, urllib.request
port, work, checks, minutes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tls_port, ca, big_checks, big_minutes = sys.argv[5], sys.argv[6], int(sys.argv[7]), int(sys.argv[8])
tick = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def write_config(n, listen, interval="10s", base=f"http://127.0.0.1:{port}"):
    path = os.path.join(work, f"agent-{n}.toml")
    with open(path, "w") as f:
        f.write(f'[agent]\nlisten = "127.0.0.1:{listen}"\ninterval = "{interval}"\nconcurrency = 64\nstate_dir = "{work}/state-{n}"\n'
                f'[defaults]\nca_file = "{ca}"\n[env.bench]\nbase_url = "{base}"\n')
        for i in range(n):
            f.write(f'[[check]]\nname = "check-{i:04}"\nkind = "http"\nurl = "{{{{ base_url }}}}/index.html"\nexpect = [\'status == 200\']\n')
    return path

def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def start(n, **config):
    listen = free_port()
    p = subprocess.Popen(["./target/release/shipwatch", "agent", "-c", write_config(n, listen, **config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{listen}/healthz", timeout=1); break
        except OSError:
            time.sleep(0.1)
    return p, listen

idle, _ = start(0)
time.sleep(3)
idle_rss = rss_mib(idle.pid)
idle.terminate(); idle.wait()

agent, listen = start(checks)
samples = {}
cpu_start, wall_start = None, None
for minute in range(1, minutes + 1):
    time.sleep(60 if minute > 1 else 60)
    samples[minute] = rss_mib(agent.pid)
    if minute == 1:
        cpu_start, wall_start = cpu_seconds(agent.pid), time.time()
cpu = (cpu_seconds(agent.pid) - cpu_start) / (time.time() - wall_start) * 100
def scrape(accept, listen):
    # curl's own timer, as a scraper sees it: request sent to last byte read.
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Accept: {accept}", "-w", "%{time_total} %{size_download}",
                          f"http://127.0.0.1:{listen}/metrics"], capture_output=True, text=True).stdout.split()
    return float(out[0]) * 1000, int(out[1])
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
openmetrics = [scrape(OPENMETRICS, listen) for _ in range(20)]
text = [scrape("text/plain", listen) for _ in range(20)]
size = openmetrics[0][1]
status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{listen}/api/v1/status", timeout=5).read())
passing = sum(1 for c in status["checks"] if c["status"] == "pass")
agent.terminate(); agent.wait(timeout=20)
first, last = samples[1], samples[minutes]
growth = last - first
print(f"shipwatch agent, {checks} http checks every 10 s against loopback nginx, {minutes} minutes")
print(f"  idle RSS            {idle_rss:6.1f} MiB   target < 15 MiB   {'OK' if idle_rss < 15 else 'OVER'}")
print(f"  steady RSS          minute 1: {first:.1f} MiB, minute {minutes}: {last:.1f} MiB (growth {growth:+.1f} MiB)   target < 50 MiB, no growth   {'OK' if last < 50 and growth < 2 else 'OVER'}")
print(f"  CPU                 {cpu:5.1f}% of one core   target < 10%   {'OK' if cpu < 10 else 'OVER'}")
om = statistics.median(t for t, _ in openmetrics)
tx = statistics.median(t for t, _ in text)
print(f"  /metrics scrape     OpenMetrics (as Prometheus asks) median {om:.1f} ms; text format median {tx:.1f} ms; {size/1024:.0f} KiB   target < 20 ms   {'OK' if om < 20 else 'OVER'}")
print(f"  checks passing      {passing} of {checks}")

def runs_total(listen):
    body = urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=30).read().decode()
    return sum(float(v) for v in re.findall(r"^shipwatch_check_runs_total\{[^}]*\} (\S+)$", body, re.M))

if big_checks:
    agent, listen = start(big_checks, interval="60s", base=f"https://localhost:{tls_port}")
    time.sleep(70)  # every check has run once
    rss = [rss_mib(agent.pid)]
    runs0, cpu0 = runs_total(listen), cpu_seconds(agent.pid)
    for _ in range(big_minutes - 1):
        time.sleep(60)
        rss.append(rss_mib(agent.pid))
    per_run = (cpu_seconds(agent.pid) - cpu0) / (runs_total(listen) - runs0) * 1000
    scrapes = [scrape(OPENMETRICS, listen) for _ in range(5)]
    sm = statistics.median(t for t, _ in scrapes)
    status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{listen}/api/v1/status", timeout=30).read())
    passing = sum(1 for c in status["checks"] if c["status"] == "pass")
    agent.terminate(); agent.wait(timeout=30)
    print(f"shipwatch agent, {big_checks} https checks every 60 s against loopback nginx (TLS 1.3), {big_minutes} minutes")
    print(f"  steady RSS          {' → '.join(f'{r:.1f}' for r in rss)} MiB (one sample a minute)   target <= 64 MiB   {'OK' if max(rss) <= 64 else 'OVER'}")
    print(f"  CPU per run         {per_run:.3f} ms   target <= 1.0 ms   {'OK' if per_run <= 1.0 else 'OVER'}")
    print(f"  /metrics scrape     median {sm:.0f} ms, {scrapes[0][1]/1048576:.1f} MiB   target <= 500 ms   {'OK' if sm <= 500 else 'OVER'}")
    print(f"  checks passing      {passing} of {big_checks}")
PY
