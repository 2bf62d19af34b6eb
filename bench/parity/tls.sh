#!/usr/bin/env bash
# TLS verdict parity with testssl.sh (Debian's testssl.sh).
#
# Starts one `openssl s_server` per case of tls_cases.py on loopback, each with a certificate set-up
# made here by openssl (a private root, an intermediate and a leaf), scans every server with
# testssl.sh and with `shipwatch check`, and compares the verdicts both give: chain trust, host name,
# expiry, legacy protocols, TLS 1.3, key strength and SHA-1 signatures. It prints the agreement,
# every difference, and the servers testssl.sh could judge but shipwatch could not.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
trap 'pkill -P $$ openssl 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
if ! command -v testssl >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq testssl.sh >/dev/null
fi
cargo build --release --quiet --bin shipwatch

python3 - "$WORK" <<'PY'
import importlib.util, json, os, socket, subprocess, sys
from datetime import datetime, timedelta, timezone
work = sys.argv[1]
spec = importlib.util.spec_from_file_location("cases", "bench/parity/tls_cases.py")
cases = importlib.util.module_from_spec(spec); spec.loader.exec_module(cases)

def run(*args):
    subprocess.run(args, check=True, capture_output=True)

def when(days):
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y%m%d%H%M%SZ")

def key(path, spec):
    kind, _, arg = spec.partition(":")
    if kind == "rsa":
        run("openssl", "genrsa", "-out", path, arg)
    elif kind == "ec":
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{arg}", "-out", path)
    else:
        run("openssl", "genpkey", "-algorithm", spec.upper(), "-out", path)

def sign(csr, out, issuer, issuer_key, start, end, digest, ext, selfsign=False):
    """`openssl ca` signs with exact start and end dates, which `x509 -req` cannot do."""
    d = f"{out}.ca"
    os.makedirs(d, exist_ok=True)
    open(f"{d}/index.txt", "w").close()
    open(f"{d}/ext", "w").write(ext)
    open(f"{d}/cnf", "w").write(f"[ca]\ndefault_ca=c\n[c]\ndatabase={d}/index.txt\nnew_certs_dir={d}\n"
                                f"serial={d}/serial\npolicy=p\nunique_subject=no\ncopy_extensions=none\n[p]\ncommonName=supplied\n")
    open(f"{d}/serial", "w").write(os.urandom(8).hex() + "\n")
    args = ["openssl", "ca", "-batch", "-notext", "-config", f"{d}/cnf", "-in", csr, "-out", out,
            "-startdate", when(start), "-enddate", when(end), "-md", digest, "-extfile", f"{d}/ext", "-keyfile", issuer_key]
    args += ["-selfsign"] if selfsign else ["-cert", issuer]
    run(*args)

ca_ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
def make_ca(prefix, name, start, end, issuer=None):
    key(f"{prefix}.key", "rsa:2048")
    run("openssl", "req", "-new", "-key", f"{prefix}.key", "-subj", f"/CN={name}", "-out", f"{prefix}.csr")
    if issuer:
        sign(f"{prefix}.csr", f"{prefix}.pem", f"{issuer}.pem", f"{issuer}.key", start, end, "sha256", ca_ext)
    else:
        sign(f"{prefix}.csr", f"{prefix}.pem", None, f"{prefix}.key", start, end, "sha256", ca_ext, selfsign=True)

make_ca(f"{work}/root", "parity root", -400, 2000)
servers = []
for c in cases.CASES:
    n = f"{work}/{c['name']}"
    make_ca(f"{n}-inter", "parity intermediate", -400, c["inter_end"], issuer=f"{work}/root")
    key(f"{n}.key", c["key"])
    run("openssl", "req", "-new", "-key", f"{n}.key", "-subj", f"/CN={c['names'][0]}", "-out", f"{n}.csr")
    ext = "subjectAltName=" + ",".join(f"DNS:{h}" for h in c["names"]) + "\nextendedKeyUsage=serverAuth\n"
    if c["issuer"] == "self":
        sign(f"{n}.csr", f"{n}.pem", None, f"{n}.key", c["start"], c["end"], c["digest"], ext, selfsign=True)
    else:
        sign(f"{n}.csr", f"{n}.pem", f"{n}-inter.pem", f"{n}-inter.key", c["start"], c["end"], c["digest"], ext)
    parts = {"inter": [f"{n}-inter.pem"], "none": [], "inter+root": [f"{n}-inter.pem", f"{work}/root.pem"],
             "root+inter": [f"{work}/root.pem", f"{n}-inter.pem"]}[c["chain"]]
    open(f"{n}-chain.pem", "w").write("".join(open(p).read() for p in parts))
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    servers.append({"name": c["name"], "port": port, "trusted": c["trusted"], "chain": bool(parts), "args": c["args"],
                    "deviation": c["deviation"]})
json.dump(servers, open(f"{work}/servers.json", "w"))
PY

# Start the servers.
while read -r name port chain args; do
  extra=()
  [ "$chain" = "True" ] && extra=(-cert_chain "$WORK/$name-chain.pem")
  # shellcheck disable=SC2086
  openssl s_server -quiet -www -accept "127.0.0.1:$port" -cert "$WORK/$name.pem" -key "$WORK/$name.key" \
    "${extra[@]}" $args >/dev/null 2>&1 &
done < <(python3 -c '
import json, sys
for s in json.load(open(sys.argv[1])): print(s["name"], s["port"], s["chain"], " ".join(s["args"]))
' "$WORK/servers.json")
sleep 1

echo "scanning with testssl.sh (one scan per server, in parallel) ..." >&2
python3 - "$WORK" <<'PY'
import json, subprocess, sys
work = sys.argv[1]
procs = []
for s in json.load(open(f"{work}/servers.json")):
    ca = ["--add-ca", f"{work}/root.pem"] if s["trusted"] else []
    procs.append(subprocess.Popen(["testssl", "--quiet", "--color", "0", "--warnings", "off", "-p", "-S", *ca,
                                   "--jsonfile", f"{work}/{s['name']}.testssl.json", f"localhost:{s['port']}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
for p in procs:
    p.wait()
PY

echo "scanning with shipwatch ..." >&2
python3 - "$WORK" <<'PY'
import json, subprocess, sys
work = sys.argv[1]
for s in json.load(open(f"{work}/servers.json")):
    toml = f'[[check]]\nname = "tls"\nkind = "tls"\nhost = "localhost:{s["port"]}"\n'
    open(f"{work}/{s['name']}.toml", "w").write(toml)
    ca = ["--ca-file", f"{work}/root.pem"] if s["trusted"] else []
    subprocess.run(["./target/release/shipwatch", "check", "-c", f"{work}/{s['name']}.toml", *ca, "--format", "json",
                    "--output", f"{work}/{s['name']}.shipwatch.json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
PY

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
agree = total = errors = judged = 0
diffs, errored, deviations, unjudged = [], [], [], []
for s in json.load(open(f"{work}/servers.json")):
    name = s["name"]
    try:
        t = {x["id"]: x for x in json.load(open(f"{work}/{name}.testssl.json"))}
    except (OSError, ValueError):
        diffs.append(f"  {name}: testssl.sh gave no result"); continue
    check = json.load(open(f"{work}/{name}.shipwatch.json"))["checks"][0]
    f = {x["id"]: x for x in check["findings"]}
    if "cert_chain_of_trust" not in t:
        unjudged.append(f"  {name}: testssl.sh reports no certificate verdict")
        continue
    judged += 1
    if check["status"] == "error":
        errors += 1
        errored.append(f"  {name}: {check['error']['message']}")
        continue
    tf = lambda i: t.get(i, {}).get("finding", "")
    offered = lambda i: tf(i).startswith("offered")
    theirs = {
        "trusted": tf("cert_chain_of_trust").startswith("passed"),
        "name matches": tf("cert_trust").startswith("Ok"),
        "expired": tf("cert_expirationStatus").startswith("expired"),
        "expires within 30 days": tf("cert_expirationStatus").startswith(("expired", "expires < 30")),
        "legacy protocol offered": any(offered(i) for i in ("SSLv3", "TLS1", "TLS1_1")),
        "TLS 1.3 offered": offered("TLS1_3"),
        "weak key": t.get("cert_keySize", {}).get("severity") in ("MEDIUM", "HIGH", "CRITICAL"),
        "SHA-1 signature": "SHA1" in tf("cert_signatureAlgorithm"),
    }
    st = lambda i: f.get(i, {}).get("status")
    text = lambda i: f.get(i, {}).get("message", "") + " " + (f.get(i, {}).get("actual") or "")
    mine = {
        "trusted": st("tls.trust") == "pass",
        "name matches": st("tls.hostname") == "pass",
        "expired": "expired" in text("tls.expiry") and "days ago" in text("tls.expiry") or "expired less" in text("tls.expiry"),
        "expires within 30 days": st("tls.expiry") not in ("pass", None) and "not valid until" not in text("tls.expiry"),
        "legacy protocol offered": st("tls.legacy") != "pass",
        "TLS 1.3 offered": st("tls.tls13") == "pass",
        "weak key": st("tls.key") == "fail",
        "SHA-1 signature": "SHA-1" in text("tls.trust"),
    }
    for k in theirs:
        if k in s["deviation"]:
            deviations.append(f"  {name}: {k}: testssl.sh {theirs[k]}, shipwatch {mine[k]}: {s['deviation'][k]}")
            continue
        total += 1
        if theirs[k] == mine[k]:
            agree += 1
        else:
            diffs.append(f"  {name}: {k}: testssl.sh {theirs[k]}, shipwatch {mine[k]}")
print(f"TLS parity: {judged} servers judged by testssl.sh; shipwatch could not judge {errors}")
print(f"  verdicts that agree  {agree}/{total} ({100 * agree / max(total, 1):.1f}%)")
for title, rows in (("differences", diffs), ("documented deviations", deviations),
                    ("shipwatch errors", errored), ("not judged by testssl.sh", unjudged)):
    if rows:
        print(f"{title}:")
        print("\n".join(rows))
PY
