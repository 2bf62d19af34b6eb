#!/usr/bin/env bash
# Agent benchmark: 1,000 http checks against one loopback nginx at a 10 s interval for 2 minutes.
# Prints idle RSS (< 15 MiB), steady RSS at minutes 1 and 2 (< 50 MiB, no growth), CPU as a share
# of one core (< 10%) and the time of a /metrics scrape with 1,000 checks (< 20 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKS=${CHECKS:-1000}
MINUTES=${MINUTES:-2}
cargo build --release --quiet --bin shipwatch
. bench/nginx.sh

python3 - "$NGINX_PORT" "$BENCH_WORK" "$CHECKS" "$MINUTES" <<'PY'
import json, os, socket, statistics, subprocess, sys, time, urllib.request
port, work, checks, minutes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tick = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def write_config(n, listen):
    path = os.path.join(work, f"agent-{n}.toml")
    with open(path, "w") as f:
        f.write(f'[agent]\nlisten = "127.0.0.1:{listen}"\ninterval = "10s"\nconcurrency = 64\n[env.bench]\nbase_url = "http://127.0.0.1:{port}"\n')
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

def start(n):
    listen = free_port()
    p = subprocess.Popen(["./target/release/shipwatch", "agent", "-c", write_config(n, listen)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
def scrape(accept):
    # curl's own timer, as a scraper sees it: request sent to last byte read.
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Accept: {accept}", "-w", "%{time_total} %{size_download}",
                          f"http://127.0.0.1:{listen}/metrics"], capture_output=True, text=True).stdout.split()
    return float(out[0]) * 1000, int(out[1])
openmetrics = [scrape("application/openmetrics-text; version=1.0.0") for _ in range(20)]
text = [scrape("text/plain") for _ in range(20)]
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
PY
