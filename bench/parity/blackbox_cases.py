"""The cases of bench/parity/blackbox.sh: each is a server set-up, a blackbox_exporter module and
a shipwatch check that ask the same question, and what a correct prober answers."""
import json, os, socket, subprocess, sys, threading, time, urllib.request

work = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
support = os.path.join(here, "..", "..", "tests", "support")
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start(args, port=None, ready=False):
    p = subprocess.Popen(args, stdout=subprocess.PIPE if ready else subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, text=True)
    procs.append(p)
    if ready:
        p.stdout.readline()
    if port:
        wait_port(port)
    return p


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


# A private CA, a leaf with 90 days left, one 20 days from expiry and one expired.
run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{work}/ca.key",
    "-out", f"{work}/ca.pem", "-days", "365", "-subj", "/CN=Parity CA")
open(f"{work}/ext", "w").write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")


def leaf(name, days):
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{work}/{name}.key",
        "-out", f"{work}/{name}.csr", "-subj", "/CN=localhost")
    args = ["openssl", "x509", "-req", "-in", f"{work}/{name}.csr", "-CA", f"{work}/ca.pem",
            "-CAkey", f"{work}/ca.key", "-CAcreateserial", "-out", f"{work}/{name}.pem",
            "-extfile", f"{work}/ext"]
    if days > 0:
        args += ["-days", str(days)]
        run(*args)
    else:
        # Expired: `openssl ca` takes exact start and end dates.
        d = f"{work}/{name}.ca"
        os.makedirs(d, exist_ok=True)
        open(f"{d}/index.txt", "w").close()
        open(f"{d}/serial", "w").write("1000\n")
        open(f"{d}/cnf", "w").write(
            f"[ca]\ndefault_ca=c\n[c]\ndatabase={d}/index.txt\nnew_certs_dir={d}\nserial={d}/serial\n"
            "policy=p\nunique_subject=no\ncopy_extensions=none\n[p]\ncommonName=supplied\n")
        run("openssl", "ca", "-batch", "-notext", "-config", f"{d}/cnf", "-in", f"{work}/{name}.csr",
            "-out", f"{work}/{name}.pem", "-startdate", "20250101000000Z", "-enddate", "20250601000000Z",
            "-md", "sha256", "-extfile", f"{work}/ext", "-cert", f"{work}/ca.pem", "-keyfile", f"{work}/ca.key")


for name, days in [("good", 90), ("soon", 20), ("expired", 0)]:
    leaf(name, days)

# The servers.
dns = free_port()
start(["dnsmasq", "-k", "-C", "/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
       "--no-resolv", "--no-hosts", "--user=root", "--pid-file=", "--local-ttl=300", f"--port={dns}",
       "--local=/shop.test/", "--host-record=api.shop.test,10.0.3.7",
       "--mx-host=shop.test,mail.shop.test,10"], dns)
silent_dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent_dns.bind(("127.0.0.1", 0))
smtp = {}
for name in ["good", "soon", "expired"]:
    port = free_port()
    start(["python3", f"{support}/smtp_sink.py", str(port), f"{work}/mail", "u", "p", "starttls",
           f"{work}/{name}.pem", f"{work}/{name}.key"], port, ready=True)
    smtp[name] = port
smtp["plain"] = free_port()
start(["python3", f"{support}/smtp_sink.py", str(smtp["plain"]), f"{work}/mail"], smtp["plain"], ready=True)
grpc = free_port()
start(["python3", f"{support}/grpc_server.py", str(grpc)], grpc, ready=True)


def raw_server(script):
    """A server that follows `script`: lines to send, or None to read one line."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve(conn):
        with conn:
            f = conn.makefile("rb")
            for step in script:
                if step is None:
                    f.readline()
                else:
                    conn.sendall(step)
            time.sleep(3)

    def loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


# Agrees to STARTTLS, then keeps talking plain text.
liar = raw_server([b"220 liar ESMTP\r\n", None, b"250-liar\r\n250 STARTTLS\r\n", None,
                   b"220 go ahead\r\n", b"250 plain text after all\r\n"])
# Offers STARTTLS and refuses it.
refuser = raw_server([b"220 busy ESMTP\r\n", None, b"250-busy\r\n250 STARTTLS\r\n", None,
                      b"454 4.7.0 TLS not available\r\n"])
closed = free_port()

# (name, blackbox module, target, shipwatch check body, expected success)
cases = [
    ("dns-answer", {"prober": "dns", "dns": {"query_name": "api.shop.test", "query_type": "A",
                                            "validate_answer_rrs": {"fail_if_none_matches_regexp": [r".*\t10\.0\.3\.7$"]}}},
     f"127.0.0.1:{dns}", 'kind = "dns"\nquery = "api.shop.test"\nserver = "127.0.0.1:%d"\nexpect = [\'answers contains "10.0.3.7"\']' % dns, True),
    ("dns-moved", {"prober": "dns", "dns": {"query_name": "api.shop.test", "query_type": "A",
                                           "validate_answer_rrs": {"fail_if_none_matches_regexp": [r".*\t10\.9\.9\.9$"]}}},
     f"127.0.0.1:{dns}", 'kind = "dns"\nquery = "api.shop.test"\nserver = "127.0.0.1:%d"\nexpect = [\'answers contains "10.9.9.9"\']' % dns, False),
    ("dns-mx", {"prober": "dns", "dns": {"query_name": "shop.test", "query_type": "MX"}},
     f"127.0.0.1:{dns}", 'kind = "dns"\nquery = "shop.test"\ntype = "MX"\nserver = "127.0.0.1:%d"' % dns, True),
    ("dns-nxdomain", {"prober": "dns", "dns": {"query_name": "old.shop.test", "query_type": "A"}},
     f"127.0.0.1:{dns}", 'kind = "dns"\nquery = "old.shop.test"\nserver = "127.0.0.1:%d"' % dns, False),
    ("dns-refused", {"prober": "dns", "dns": {"query_name": "example.com", "query_type": "A"}},
     f"127.0.0.1:{dns}", 'kind = "dns"\nquery = "example.com"\nserver = "127.0.0.1:%d"' % dns, False),
    ("dns-tcp", {"prober": "dns", "dns": {"query_name": "api.shop.test", "query_type": "A", "transport_protocol": "tcp"}},
     f"127.0.0.1:{dns}", 'kind = "dns"\nquery = "api.shop.test"\ntransport = "tcp"\nserver = "127.0.0.1:%d"' % dns, True),
    ("dns-silent", {"prober": "dns", "dns": {"query_name": "api.shop.test", "query_type": "A"}},
     f"127.0.0.1:{silent_dns.getsockname()[1]}", 'kind = "dns"\nquery = "api.shop.test"\nserver = "127.0.0.1:%d"' % silent_dns.getsockname()[1], False),
    ("tcp-open", {"prober": "tcp"}, f"127.0.0.1:{smtp['plain']}", 'kind = "tcp"\nhost = "127.0.0.1:%d"' % smtp["plain"], True),
    ("tcp-closed", {"prober": "tcp"}, f"127.0.0.1:{closed}", 'kind = "tcp"\nhost = "127.0.0.1:%d"' % closed, False),
    ("tcp-banner", {"prober": "tcp", "tcp": {"query_response": [{"expect": "^220 "}]}},
     f"127.0.0.1:{smtp['plain']}", 'kind = "tcp"\nhost = "127.0.0.1:%d"\nexpect = [\'banner matches "^220 "\']' % smtp["plain"], True),
    ("tcp-banner-wrong", {"prober": "tcp", "tcp": {"query_response": [{"expect": "^220 .*Postfix"}]}},
     f"127.0.0.1:{smtp['plain']}", 'kind = "tcp"\nhost = "127.0.0.1:%d"\nexpect = [\'banner matches "^220 .*Postfix"\']' % smtp["plain"], False),
]


def starttls_module():
    return {"prober": "tcp", "tcp": {"query_response": [
        {"expect": "^220 "}, {"send": "EHLO prober\r\n"}, {"expect": "^250[ -]STARTTLS"},
        {"send": "STARTTLS\r\n"}, {"expect": "^220"}, {"starttls": True}, {"send": "QUIT\r\n"}],
        "tls_config": {"ca_file": f"{work}/ca.pem", "server_name": "localhost"}}}


for name, port, ok in [("good", smtp["good"], True), ("soon", smtp["soon"], True),
                       ("expired", smtp["expired"], False), ("no-starttls", smtp["plain"], False),
                       ("liar", liar, False), ("refuser", refuser, False)]:
    cases.append((f"smtp-{name}", starttls_module(), f"localhost:{port}",
                  'kind = "tcp"\nhost = "localhost:%d"\nstarttls = "smtp"' % port, ok))

for name, service, ok in [("whole", "", True), ("serving", "payments.v1.Payments", True),
                          ("not-serving", "ledger.v1.Ledger", False), ("unknown", "nobody.v1.Nobody", False)]:
    cases.append((f"grpc-{name}", {"prober": "grpc", "grpc": {"service": service, "tls": False}},
                  f"127.0.0.1:{grpc}", 'kind = "grpc"\nurl = "http://127.0.0.1:%d"\nservice = "%s"' % (grpc, service), ok))
cases.append(("grpc-down", {"prober": "grpc", "grpc": {"tls": False}}, f"127.0.0.1:{closed}",
              'kind = "grpc"\nurl = "http://127.0.0.1:%d"' % closed, False))

# blackbox_exporter, with one module per case.
modules = {}
for name, module, _, _, _ in cases:
    module = dict(module, timeout="2s")
    for key in ("dns", "tcp", "grpc"):
        if key in module:
            module[key] = dict(module[key], preferred_ip_protocol="ip4", ip_protocol_fallback=False)
    if module["prober"] not in module:
        module[module["prober"]] = {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}
    modules[name] = module
open(f"{work}/blackbox.yml", "w").write(json.dumps({"modules": modules}))
bb = free_port()
start(["prometheus-blackbox-exporter", f"--config.file={work}/blackbox.yml",
       f"--web.listen-address=127.0.0.1:{bb}"], bb)


def blackbox(name, target):
    url = f"http://127.0.0.1:{bb}/probe?module={name}&target={target}"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("probe_success "):
            return line.split()[1] == "1"
    raise SystemExit(f"blackbox gave no probe_success for {name}:\n{text}")


# shipwatch, one run with every case.
config = f'[defaults]\ntimeout = "2s"\nca_file = "{work}/ca.pem"\n'
for name, _, _, body, _ in cases:
    config += f'\n[[check]]\nname = "{name}"\n{body}\n'
open(f"{work}/shipwatch.toml", "w").write(config)
started = time.monotonic()
out = subprocess.run(["target/release/shipwatch", "check", "-c", f"{work}/shipwatch.toml", "--format", "json"],
                     capture_output=True, text=True)
took_sw = time.monotonic() - started
report = json.loads(out.stdout)
status = {c["name"]: c for c in report["checks"]}

started = time.monotonic()
bb_success = {name: blackbox(name, target) for name, _, target, _, _ in cases}
took_bb = time.monotonic() - started

agree, right_sw, right_bb, rows = 0, 0, 0, []
for name, _, _, _, expected in cases:
    c = status[name]
    sw = c["status"] in ("pass", "warn")
    bbv = bb_success[name]
    agree += sw == bbv
    right_sw += sw == expected
    right_bb += bbv == expected
    if sw != bbv or sw != expected:
        why = c["error"]["message"] if c["error"] else "; ".join(
            f'{f["id"]}: {f["message"]}' for f in c["findings"] if f["status"] != "pass")
        rows.append(f"  {name}: expected {'success' if expected else 'failure'}, "
                    f"blackbox {'success' if bbv else 'failure'}, shipwatch {c['status']} ({why})")

n = len(cases)
print(f"blackbox_exporter parity: {n} cases (dns, tcp, SMTP STARTTLS, grpc)")
print(f"  verdicts agree: {agree}/{n}")
print(f"  right verdicts: shipwatch {right_sw}/{n}, blackbox_exporter {right_bb}/{n}")
print(f"  wall time: shipwatch {took_sw:.2f}s for all cases in one run, blackbox_exporter {took_bb:.2f}s probing them in turn")
if rows:
    print("differences:")
    print("\n".join(rows))
for p in procs:
    p.terminate()
