#!/usr/bin/env bash
# CPU per HTTPS probe: blackbox_exporter (Debian's prometheus-blackbox-exporter) and the shipwatch
# agent against the same loopback nginx (TLS 1.3, P-256 ECDSA certificate from a private CA), in
# the same run, at the same rate. Each opens a fresh connection (TCP + full TLS handshake) for
# every probe: blackbox_exporter builds a new client per probe, and the agent resumes no session.
#
# blackbox_exporter is driven the way Prometheus drives it: GET /probe on one keep-alive
# connection, RATE times a second, so its figure includes answering the scrape. The agent runs
# RATE × INTERVAL checks every INTERVAL seconds; its figure includes everything it does per run
# (judging, metrics, alert state, the history database).
#
# Prints CPU milliseconds per probe for both and the ratio (goal: shipwatch ≤ 0.5× blackbox).
# PROFILE=1 also records a perf profile of the agent and prints its top symbols (PERF_DATA=file
# keeps the recording).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-100}
SECONDS_MEASURED=${SECONDS_MEASURED:-30}
INTERVAL=${INTERVAL:-5}
if ! command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus-blackbox-exporter >/dev/null
fi
cargo build --release --quiet --bin shipwatch
. bench/nginx.sh

python3 - "$NGINX_TLS_PORT" "$NGINX_CA" "$BENCH_WORK" "$RATE" "$SECONDS_MEASURED" "$INTERVAL" "${PROFILE:-0}" <<'PY'
import http.client, os, re, socket, subprocess, sys, time, urllib.request
port, ca, work, rate, measured, interval, profile = sys.argv[1:]
rate, measured, interval = int(rate), int(measured), int(interval)
target = f"https://localhost:{port}/index.html"
tick = os.sysconf("SC_CLK_TCK")
perf_data = os.environ.get("PERF_DATA", os.path.join(work, "perf.data"))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def wait_http(url):
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1); return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} never answered")

def blackbox():
    cfg = os.path.join(work, "blackbox.yml")
    with open(cfg, "w") as f:
        f.write(f"modules:\n  https:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
                f"      valid_status_codes: [200]\n      tls_config:\n        ca_file: {ca}\n")
    listen = free_port()
    p = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{listen}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{listen}/metrics")
    conn = http.client.HTTPConnection("127.0.0.1", listen)
    path = f"/probe?module=https&target={target}"
    def probe():
        conn.request("GET", path); body = conn.getresponse().read().decode()
        return re.search(r"^probe_success 1$", body, re.M) is not None
    for _ in range(rate * 3):  # warm-up
        probe()
    cpu0, done, ok = cpu_seconds(p.pid), 0, 0
    start = time.perf_counter()
    while done < rate * measured:
        ok += probe(); done += 1
        pause = start + done / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    cpu = cpu_seconds(p.pid) - cpu0
    p.terminate(); p.wait()
    return cpu / done * 1000, done, ok

def runs_total(listen):
    text = urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=10).read().decode()
    runs = sum(float(v) for v in re.findall(r"^shipwatch_check_runs_total\{[^}]*\} (\S+)$", text, re.M))
    passed = sum(float(v) for v in re.findall(r'^shipwatch_check_runs_total\{[^}]*status="pass"[^}]*\} (\S+)$', text, re.M))
    return runs, passed

def agent():
    checks, listen = rate * interval, free_port()
    cfg = os.path.join(work, "agent-cpu.toml")
    with open(cfg, "w") as f:
        f.write(f'[agent]\nlisten = "127.0.0.1:{listen}"\ninterval = "{interval}s"\nstate_dir = "{work}/state"\n'
                f'[defaults]\nca_file = "{ca}"\n[env.bench]\nbase_url = "{target}"\n')
        for i in range(checks):
            f.write(f'[[check]]\nname = "check-{i:05}"\nkind = "http"\nurl = "{{{{ base_url }}}}"\nexpect = [\'status == 200\']\n')
    p = subprocess.Popen(["./target/release/shipwatch", "agent", "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{listen}/healthz")
    time.sleep(interval * 2 + 2)  # every check has run at least once
    runs0, pass0 = runs_total(listen)
    cpu0 = cpu_seconds(p.pid)
    perf = None
    if profile == "1":
        perf = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", perf_data, "-p", str(p.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(measured)
    cpu = cpu_seconds(p.pid) - cpu0
    runs1, pass1 = runs_total(listen)
    if perf:
        perf.send_signal(2); perf.wait()
    p.terminate(); p.wait()
    done = runs1 - runs0
    return cpu / done * 1000, int(done), int(pass1 - pass0)

bb_ms, bb_n, bb_ok = blackbox()
sw_ms, sw_n, sw_ok = agent()
print(f"CPU per HTTPS probe, fresh connection each, loopback nginx TLS 1.3 (P-256), {rate} probes/s for {measured} s, {os.cpu_count()} cores")
print(f"  blackbox_exporter   {bb_ms:6.3f} ms per probe   ({bb_n} probes, {bb_ok} succeeded)")
print(f"  shipwatch agent     {sw_ms:6.3f} ms per probe   ({sw_n} runs, {sw_ok} passed)")
ratio = sw_ms / bb_ms
print(f"  ratio               {ratio:.2f}x blackbox_exporter   goal <= 0.50   {'OK' if ratio <= 0.5 else 'OVER'}")
if profile == "1":
    out = subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--stdio",
                          "--sort", "dso,symbol", "--percent-limit", "1.5", "-g", "none"], capture_output=True, text=True).stdout
    print("  agent profile (self time, symbols above 1.5%):")
    for line in out.splitlines():
        if line.strip() and not line.startswith("#"):
            print("   ", line.strip()[:150])
PY
