"""A real SMTP server for the tests (aiosmtpd): appends every message it accepts to a JSON-lines
file. Arguments: PORT OUT [USER PASSWORD] [MODE CERT KEY], where MODE is starttls or smtps.
With a username and password it requires AUTH."""
import json, ssl, sys, time
from email import message_from_bytes
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

args = sys.argv[1:]
port, out = int(args[0]), args[1]
user, password = (args[2], args[3]) if len(args) >= 4 else (None, None)
mode, cert, key = (args[4], args[5], args[6]) if len(args) >= 7 else ("plain", None, None)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content)
        parts = {}
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_payload(decode=True).decode("utf-8", "replace")
        record = {"from": envelope.mail_from, "to": envelope.rcpt_tos, "subject": str(msg["subject"]),
                  "parts": parts, "authenticated": bool(session.authenticated),
                  # An smtps listener speaks nothing but TLS, so delivery there proves it.
                  "tls": session.ssl is not None or mode == "smtps"}
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    return AuthResult(success=ok)

kwargs = {}
if user:
    # Implicit TLS (smtps) is TLS from the first byte; aiosmtpd only tracks STARTTLS for this flag.
    kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=(mode == "starttls"))
if mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    else:
        kwargs.update(ssl_context=ctx)
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
