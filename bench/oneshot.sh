#!/usr/bin/env bash
# One-shot benchmark: the built-in checklist against a loopback deployment, 20 runs.
# Prints the median and p90 wall time and the peak RSS of `shipwatch check`.
# Targets: median wall < 100 ms, peak RSS < 20 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
cargo build --release --quiet --bin shipwatch --example testsite
SITE_OUT=$(mktemp)
./target/release/examples/testsite --for 300 >"$SITE_OUT" &
SITE_PID=$!
trap 'kill $SITE_PID 2>/dev/null || true; rm -f "$SITE_OUT"' EXIT
for _ in $(seq 1 100); do [ -s "$SITE_OUT" ] && break; sleep 0.05; done
read -r HTTPS_PORT HTTP_PORT CA_FILE <"$SITE_OUT"
python3 - "$RUNS" "$HTTPS_PORT" "$HTTP_PORT" "$CA_FILE" <<'PY'
import os, statistics, subprocess, sys, time
runs, https_port, http_port, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cmd = ["./target/release/shipwatch", "check", f"https://localhost:{https_port}",
       "--http-url", f"http://localhost:{http_port}/", "--ca-file", ca]
walls, rss = [], []
for i in range(runs):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    walls.append((time.perf_counter() - t0) * 1000)
    rss.append(usage.ru_maxrss / 1024)  # KiB -> MiB
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"run {i + 1}: shipwatch exited {code}: {p.stderr.read().decode()}")
walls.sort()
median, p90 = statistics.median(walls), walls[int(0.9 * (len(walls) - 1))]
print(f"shipwatch check (the built-in checklist, loopback TLS + HTTP), {runs} runs")
print(f"  wall time   median {median:6.1f} ms   p90 {p90:6.1f} ms   min {walls[0]:6.1f} ms   target < 100 ms")
print(f"  peak RSS    max {max(rss):6.1f} MiB   median {statistics.median(rss):6.1f} MiB   target < 20 MiB")
print(f"  verdict     wall {'OK' if median < 100 else 'OVER'}, rss {'OK' if max(rss) < 20 else 'OVER'}")
PY
