"""A real WebSocket server for the tests (the websockets library). Arguments: PORT [CERT KEY].
Paths: /socket answers {"type":"ping"} with {"type":"pong"} and echoes anything else, and wants
"Authorization: Bearer ws-test-token-1234" when /auth is asked; /close closes with 1011
"maintenance"; /silent says nothing; /flood sends 20,000 frames; /big sends one 2 MiB message."""
import asyncio, http, ssl, sys

import websockets
from websockets.asyncio.server import serve

TOKEN = "Bearer ws-test-token-1234"

def process_request(connection, request):
    if request.path == "/auth" and request.headers.get("Authorization") != TOKEN:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "forbidden\n")
    return None

async def handler(ws):
    path = ws.request.path
    if path == "/close":
        await ws.close(1011, "maintenance")
    elif path == "/silent":
        await asyncio.sleep(3600)
    elif path == "/flood":
        for i in range(20000):
            await ws.send(f"tick {i}")
    elif path == "/big":
        await ws.send("x" * (2 << 20))
        await asyncio.sleep(3600)
    else:
        async for message in ws:
            await ws.send('{"type":"pong"}' if message == '{"type":"ping"}' else message)

async def main():
    port = int(sys.argv[1])
    ctx = None
    if len(sys.argv) >= 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    async with serve(handler, "127.0.0.1", port, ssl=ctx, process_request=process_request,
                     max_size=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main())
