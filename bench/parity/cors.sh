#!/usr/bin/env bash
# CORS parity with CORScanner (PyPI `corscanner`).
#
# Serves every behaviour of cors_cases.py as https://api.example.com:PORT/case/<name> on loopback,
# scans each with CORScanner (all of its tests, through its own CORSCheck.check_all_in_parallel,
# reaching the loopback site through an HTTPS proxy) and with `shipwatch check`, and prints what
# each one flags: the classes CORScanner catches that shipwatch misses, shipwatch's false alarms on
# correct configurations, and what shipwatch alone reports.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin shipwatch
echo "installing corscanner into $WORK/venv ..." >&2
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check corscanner >/dev/null
SITE=$("$WORK/venv/bin/python" -c 'import CORScanner, os; print(os.path.dirname(CORScanner.__file__))')

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=parity CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=api.example.com" -keyout "$WORK/leaf.key" \
  -out "$WORK/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:api.example.com\nextendedKeyUsage=serverAuth\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/ext" -out "$WORK/leaf.pem" 2>/dev/null

python3 bench/parity/cors_site.py bench/parity/cors_cases.py "$WORK/leaf.pem" "$WORK/leaf.key" >"$WORK/ports" &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do [ -s "$WORK/ports" ] && break; sleep 0.05; done
read -r TLS_PORT PROXY_PORT <"$WORK/ports"

python3 - "$WORK" "$TLS_PORT" <<'PY'
import importlib.util, json, sys
work, port = sys.argv[1:]
spec = importlib.util.spec_from_file_location("cases", "bench/parity/cors_cases.py")
cases = importlib.util.module_from_spec(spec); spec.loader.exec_module(cases)
with open(f"{work}/shipwatch.toml", "w") as f:
    f.write('[defaults]\ntimeout = "60s"\n\n')
    f.write(f'[env.parity]\nresolve = {{ "api.example.com:{port}" = "127.0.0.1" }}\n\n')
    for c in cases.CASES:
        allowed = ", ".join(json.dumps(a) for a in c["allowed"])
        f.write(f'[[check]]\nname = "{c["name"]}"\nkind = "cors"\nmethod = "POST"\n'
                f'url = "https://api.example.com:{port}/case/{c["name"]}"\nallowed = [{allowed}]\n\n')
PY

echo "scanning with CORScanner ..." >&2
HTTPS_PROXY="http://127.0.0.1:$PROXY_PORT" NO_PROXY="publicsuffix.org,.publicsuffix.org,.githubusercontent.com" \
"$WORK/venv/bin/python" - "$SITE" "$TLS_PORT" bench/parity/cors_cases.py >"$WORK/corscanner.json" 2>"$WORK/corscanner.log" <<'PY'
import importlib.util, json, sys
site, port, cases_file = sys.argv[1:]
sys.path.insert(0, site)
from common.corscheck import CORSCheck
spec = importlib.util.spec_from_file_location("cases", cases_file)
cases = importlib.util.module_from_spec(spec); spec.loader.exec_module(cases)
class Quiet:
    def __getattr__(self, _):
        return lambda *a, **k: None
out = {}
for c in cases.CASES:
    check = CORSCheck(f"https://api.example.com:{port}/case/{c['name']}", {"headers": None, "logger": Quiet(), "timeout": 5})
    out[c["name"]] = sorted({r["type"] for r in check.check_all_in_parallel() or []})
print(json.dumps(out))
PY
echo "scanning with shipwatch ..." >&2
./target/release/shipwatch check -c "$WORK/shipwatch.toml" --ca-file "$WORK/ca.pem" \
  --format json --output "$WORK/shipwatch.json" >/dev/null || true

python3 - "$WORK" <<'PY'
import importlib.util, json, sys
work = sys.argv[1]
spec = importlib.util.spec_from_file_location("cases", "bench/parity/cors_cases.py")
cases = importlib.util.module_from_spec(spec); spec.loader.exec_module(cases)
peer = json.load(open(f"{work}/corscanner.json"))
ship = {c["name"]: c for c in json.load(open(f"{work}/shipwatch.json"))["checks"]}
MAP = {"reflect_origin": "cors.reflect", "prefix_match": "cors.prefix", "suffix_match": "cors.suffix",
       "include_match": "cors.suffix", "trust_null": "cors.null", "not_escape_dot": "cors.unescaped_dot",
       "custom_third_parties": "cors.third_party", "special_characters_bypass": "cors.special_chars",
       "trust_any_subdomain": "cors.subdomain", "https_trust_http": "cors.http_origin"}
caught = missed = alarms = 0
rows, misses, false_alarms, deviations = [], [], [], []
for c in cases.CASES:
    name, s = c["name"], ship.get(c["name"], {})
    if s.get("error"):
        misses.append(f"  {name}: shipwatch could not run: {s['error']['message']}")
        continue
    flagged = {f["id"]: f["status"] for f in s.get("findings", []) if f["status"] in ("warn", "fail")}
    theirs = sorted({MAP[t] for t in peer.get(name, [])})
    mine = sorted(flagged)
    rows.append(f"  {name:32} CORScanner: {', '.join(theirs) or '-'}\n  {'':32} shipwatch:  {', '.join(f'{k} ({v})' for k, v in flagged.items()) or '-'}")
    lost = [t for t in theirs if t not in flagged]
    if c.get("deviation"):
        deviations.append(f"  {name}: CORScanner {theirs}, shipwatch {mine}: {c['deviation']}")
        continue
    caught += len(theirs)
    if lost:
        missed += len(lost)
        misses.append(f"  {name}: shipwatch misses {', '.join(lost)}")
    if c.get("correct"):
        extra = [k for k, v in flagged.items() if v == "fail" or k not in c.get("expect_warn", [])]
        if extra or sorted(k for k, v in flagged.items() if v == "warn") != sorted(c.get("expect_warn", [])):
            alarms += 1
            false_alarms.append(f"  {name}: flagged {flagged}, expected warnings {c.get('expect_warn', [])}")
correct = sum(1 for c in cases.CASES if c.get("correct"))
print(f"CORS parity: {len(cases.CASES)} behaviours, {caught} classes caught by CORScanner")
print(f"  missed by shipwatch          {missed}")
print(f"  false alarms on the {correct} correct configurations: {alarms}")
print("per case:")
print("\n".join(rows))
for title, items in (("missed", misses), ("false alarms", false_alarms), ("documented deviations", deviations)):
    if items:
        print(f"{title}:")
        print("\n".join(items))
PY
