"""A loopback site that serves each parity case over HTTPS and plain HTTP.

Usage: site.py CASES_MODULE CERT KEY. Prints "HTTPS_PORT HTTP_PORT" once both listen, then serves
until killed. Repeated headers are sent as repeated lines, exactly as listed in the case.
"""
import importlib.util
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Both scanners open many connections at once; the default backlog of 5 would stall them.
ThreadingHTTPServer.request_queue_size = 1024

spec = importlib.util.spec_from_file_location("cases", sys.argv[1])
cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)
CASES = {c["name"]: c for c in cases.CASES}
PORTS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 2 or parts[0] != "case" or parts[1] not in CASES:
            return None, None
        return CASES[parts[1]], parts[2] if len(parts) > 2 else ""

    def cors(self, case):
        mode, origin = case.get("cors", "none"), self.headers.get("Origin", "")
        if mode == "star":
            return [("Access-Control-Allow-Origin", "*")]
        if mode == "reflect" and origin:
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if mode == "reflect-credentials" and origin:
            return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
        return []

    def page(self, case):
        body = case["body"].encode()
        headers = [("Content-Type", case.get("ctype", "text/html; charset=utf-8"))] + [tuple(h) for h in case["headers"]]
        self.reply(200, headers + self.cors(case), body)

    def do_OPTIONS(self):
        case, _ = self.route()
        self.reply(204, self.cors(case) if case else [])

    def do_HEAD(self):
        self.do_GET()


class Https(Handler):
    def do_GET(self):
        case, rest = self.route()
        if case is None:
            return self.reply(404, [("Content-Type", "text/plain")], b"not found")
        chain = case.get("chain", [])
        hop = int(rest[1:]) if rest.startswith("r") and rest[1:].isdigit() else 0
        if hop < len(chain):
            step = chain[hop]
            loc = f"/case/{case['name']}/r{hop + 1}"
            return self.reply(step["status"], [("Location", loc)] + [tuple(h) for h in step["headers"]])
        self.page(case)


class Http(Handler):
    def do_GET(self):
        case, rest = self.route()
        if case is None:
            return self.reply(404, [("Content-Type", "text/plain")], b"not found")
        name, https, http = case["name"], PORTS["https"], PORTS["http"]
        mode = case.get("http", "redirect")
        to = {
            "redirect": f"https://localhost:{https}/case/{name}",
            "offhost": f"https://127.0.0.1:{https}/case/{name}",
        }
        if mode in to:
            return self.reply(301, [("Location", to[mode])])
        if mode == "http-first":
            loc = f"https://localhost:{https}/case/{name}" if rest == "h" else f"http://localhost:{http}/case/{name}/h"
            return self.reply(301, [("Location", loc)])
        if mode == "stay-http" and rest != "h":
            return self.reply(301, [("Location", f"http://localhost:{http}/case/{name}/h")])
        self.page(case)


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()


https = ThreadingHTTPServer(("127.0.0.1", 0), Https)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
https.socket = ctx.wrap_socket(https.socket, server_side=True)
http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
PORTS.update(https=https.server_address[1], http=http.server_address[1])
serve(https)
serve(http)
print(PORTS["https"], PORTS["http"], flush=True)
threading.Event().wait()
