"""Loads a page in headless Chromium (Debian's `chromium`) at each width given, through the
DevTools protocol, and prints what the rendered page holds as JSON; saves a screenshot per width.
Arguments: URL OUT_DIR WIDTH [WIDTH ...]."""
import asyncio, base64, json, os, socket, subprocess, sys, tempfile, time, urllib.request

import websockets

url, out_dir, widths = sys.argv[1], sys.argv[2], [int(w) for w in sys.argv[3:]]
os.makedirs(out_dir, exist_ok=True)

# What the test asserts on, measured in the page after layout.
PROBE = """JSON.stringify((() => {
  const cards = [...document.querySelectorAll('article.check')];
  const box = e => e.getBoundingClientRect();
  return {
    width: window.innerWidth,
    scroll_width: document.documentElement.scrollWidth,
    cards: cards.map(c => ({check: c.dataset.check, status: c.classList[1], top: box(c).top, left: box(c).left,
                            width: box(c).width, text: c.innerText})),
    strip_slots: [...document.querySelectorAll('svg.strip rect:not(.empty)')].length,
    strip_titles: [...document.querySelectorAll('svg.strip title')].slice(0, 3).map(t => t.textContent),
    strip_fills: Object.fromEntries([...document.querySelectorAll('svg.strip rect')]
      .map(r => [r.getAttribute('class'), getComputedStyle(r).fill])),
    scripts: document.scripts.length,
    external: [...document.querySelectorAll('link[href],script[src],img[src],iframe')].length,
    incidents: [...document.querySelectorAll('section h2')].some(h => h.textContent === 'Incidents')
      ? document.body.innerText.split('Incidents')[1] : '',
    filter: !!document.querySelector('form select[name=env]') && !!document.querySelector('form select[name=status]'),
  };
})())"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    port = free_port()
    profile = tempfile.mkdtemp()
    chrome = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = None
        for _ in range(200):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1))
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                time.sleep(0.1)
        if page is None:
            raise SystemExit("Chromium did not start")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = iter(range(1, 1_000_000))

            async def call(method, **params):
                n = next(ids)
                await ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if msg.get("id") == n:
                        if "error" in msg:
                            raise SystemExit(f"{method}: {msg['error']}")
                        return msg["result"]

            await call("Page.enable")
            results = {}
            for w in widths:
                await call("Emulation.setDeviceMetricsOverride", width=w, height=900, deviceScaleFactor=1,
                           mobile=w < 600)
                await call("Page.navigate", url=url)
                for _ in range(100):
                    state = await call("Runtime.evaluate", expression="document.readyState + ' ' + location.href")
                    ready, _, href = state["result"]["value"].partition(" ")
                    if ready == "complete" and href.startswith(url):
                        break
                    await asyncio.sleep(0.1)
                probe = await call("Runtime.evaluate", expression=PROBE)
                results[str(w)] = json.loads(probe["result"]["value"])
                shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                path = os.path.join(out_dir, f"status-{w}.png")
                with open(path, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                results[str(w)]["screenshot"] = path
            print(json.dumps(results))
    finally:
        chrome.terminate()
        chrome.wait(10)


asyncio.run(main())
