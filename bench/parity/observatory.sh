#!/usr/bin/env bash
# Grade parity with the Mozilla HTTP Observatory (npm @mdn/mdn-http-observatory, algorithm 4).
#
# Serves every header set of headers_cases.py on loopback (HTTPS with a private CA, plus plain
# HTTP), grades each with the Observatory and with `shipwatch check`, and prints the agreement
# (exact grade, within one grade step, mean score difference) and every difference. Cases marked
# as a documented deviation are listed but not counted.
#
# Needs node and npm (the scanner is installed into a temporary folder, without its install
# scripts, which download the HSTS preload list and so need the internet), python3 and openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${OBSERVATORY_VERSION:-1.4.8}
WORK=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin shipwatch
echo "installing @mdn/mdn-http-observatory@$VERSION into $WORK/npm ..." >&2
mkdir -p "$WORK/npm"
(cd "$WORK/npm" && npm install --silent --no-audit --no-fund --ignore-scripts \
  "@mdn/mdn-http-observatory@$VERSION" >/dev/null 2>&1)
PKG="$WORK/npm/node_modules/@mdn/mdn-http-observatory"
# The preload list is downloaded at install time; offline, both tools grade without it.
[ -f "$PKG/conf/hsts-preload.json" ] || echo '{}' >"$PKG/conf/hsts-preload.json"

# A private CA and a leaf for localhost and 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=parity CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$WORK/leaf.key" \
  -out "$WORK/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/ext" -out "$WORK/leaf.pem" 2>/dev/null

python3 bench/parity/site.py bench/parity/headers_cases.py "$WORK/leaf.pem" "$WORK/leaf.key" >"$WORK/ports" &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do [ -s "$WORK/ports" ] && break; sleep 0.05; done
read -r HTTPS_PORT HTTP_PORT <"$WORK/ports"
CLOSED_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

python3 - "$WORK" "$HTTPS_PORT" "$HTTP_PORT" "$CLOSED_PORT" <<'PY'
import importlib.util, json, sys
work, https, http, closed = sys.argv[1:]
spec = importlib.util.spec_from_file_location("cases", "bench/parity/headers_cases.py")
cases = importlib.util.module_from_spec(spec); spec.loader.exec_module(cases)
json.dump(cases.CASES, open(f"{work}/cases.json", "w"))
with open(f"{work}/shipwatch.toml", "w") as f:
    for c in cases.CASES:
        port = closed if c.get("http") == "closed" else http
        f.write(f'[[check]]\nname = "{c["name"]}"\nkind = "headers"\n'
                f'url = "https://localhost:{https}/case/{c["name"]}"\n'
                f'http_url = "http://localhost:{port}/case/{c["name"]}"\nmin_grade = "F"\n\n')
PY

echo "grading ${HTTPS_PORT}/${HTTP_PORT} with the Observatory ..." >&2
NODE_EXTRA_CA_CERTS="$WORK/ca.pem" node --dns-result-order=ipv4first bench/parity/observatory.mjs \
  "$PKG" "$HTTPS_PORT" "$HTTP_PORT" "$CLOSED_PORT" "$WORK/cases.json" >"$WORK/observatory.jsonl"
echo "grading with shipwatch ..." >&2
./target/release/shipwatch check -c "$WORK/shipwatch.toml" --ca-file "$WORK/ca.pem" \
  --format json --output "$WORK/shipwatch.json" >/dev/null || true

python3 - "$WORK" "${VERBOSE:-}" <<'PY'
import json, sys
work, verbose = sys.argv[1], sys.argv[2] == "1"
letters = ["A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F"]
cases = {c["name"]: c for c in json.load(open(f"{work}/cases.json"))}
obs = {r["name"]: r for r in map(json.loads, open(f"{work}/observatory.jsonl"))}
ship = {c["name"]: c for c in json.load(open(f"{work}/shipwatch.json"))["checks"]}
exact = near = counted = 0
diffs, deviations, errors = [], [], []
total_diff = 0
for name, case in cases.items():
    o, s = obs.get(name, {}), ship.get(name, {})
    d = s.get("details") or {}
    if "error" in o or "score" not in d:
        errors.append(f"  {name}: observatory {o.get('error', 'ok')}; shipwatch {(s.get('error') or {}).get('message', 'ok')}")
        continue
    mine = {m["test"]: m["result"] for m in d.get("modifiers", [])}
    tests = [f"{t}: {o['tests'].get(t)} vs {mine.get(t)}" for t in o["tests"] if o["tests"].get(t) != mine.get(t)]
    line = f"  {name}: observatory {o['grade']} ({o['score']}), shipwatch {d['grade']} ({d['score']})" + ("".join(f"\n      {t}" for t in tests))
    if case.get("deviation"):
        deviations.append(line + f"\n      documented deviation: {case['deviation']}")
        continue
    counted += 1
    total_diff += abs(o["score"] - d["score"])
    step = abs(letters.index(o["grade"]) - letters.index(d["grade"]))
    exact += step == 0
    near += step <= 1
    if o["score"] != d["score"] or tests:
        diffs.append(line)
    elif verbose:
        print(f"  same  {name}: {o['grade']} ({o['score']})")
print(f"Observatory parity: {counted} header sets (+{len(deviations)} documented deviations, {len(errors)} not graded)")
if counted:
    print(f"  exact grade      {exact}/{counted} ({100 * exact / counted:.1f}%)")
    print(f"  within one step  {near}/{counted} ({100 * near / counted:.1f}%)")
    print(f"  mean |score diff| {total_diff / counted:.2f}")
for title, rows in (("differences", diffs), ("documented deviations", deviations), ("not graded", errors)):
    if rows:
        print(f"{title}:")
        print("\n".join(rows))
PY
