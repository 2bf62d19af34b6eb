"""Serves the CORS parity cases over HTTPS on one port, and as an HTTPS proxy (CONNECT) on another,
so a scanner that only takes URLs reaches https://api.example.com:PORT/ on loopback.

Usage: cors_site.py CASES_MODULE CERT KEY. Prints "TLS_PORT PROXY_PORT" once listening.
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
CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
CTX.load_cert_chain(sys.argv[2], sys.argv[3])


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        case = CASES.get(parts[1]) if len(parts) > 1 and parts[0] == "case" else None
        if case is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        origin = self.headers.get("Origin")
        acao = case["allow"](self.command, origin) if origin else None
        body = b"{}"
        self.send_response(204 if self.command == "OPTIONS" else 200)
        self.send_header("Content-Type", "application/json")
        for v in acao or []:
            self.send_header("Access-Control-Allow-Origin", v)
        if acao:
            self.send_header("Access-Control-Allow-Methods", "GET, POST")
            self.send_header("Vary", "Origin")
            if case["creds"]:
                self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Content-Length", "0" if self.command == "OPTIONS" else str(len(body)))
        self.end_headers()
        if self.command not in ("OPTIONS", "HEAD"):
            self.wfile.write(body)

    do_GET = do_POST = do_OPTIONS = do_HEAD = answer

    def do_CONNECT(self):
        # The tunnel ends here: TLS is terminated locally, whatever host was asked for.
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        tls = CTX.wrap_socket(self.connection, server_side=True)
        Handler(tls, self.client_address, self.server)
        self.close_connection = True


direct = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
# The handshake runs in each connection's thread, not in the accepting one.
direct.socket = CTX.wrap_socket(direct.socket, server_side=True, do_handshake_on_connect=False)
proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
for s in (direct, proxy):
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(direct.server_address[1], proxy.server_address[1], flush=True)
threading.Event().wait()
