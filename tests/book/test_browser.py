"""The rendered book in a real browser: headless Chromium, driven over the DevTools protocol.

The HTML book is served on 127.0.0.1 and every page is opened with the network cut off (any host but
the local server is unresolvable, and every request elsewhere is reported), as a reader without a
connection would open it. For every page:

- it loads, and the browser reports no console error, uncaught exception or failed request;
- every image has loaded and every internal link (with its #anchor) points at something that exists;
- every equation has been typeset (by the MathJax the book serves itself);
- a chapter shows as many figures as its notebook has image outputs.

On the class browser of chapter 2 (an ipywidgets Dropdown jslinked to a Stack, rendered by the widget
manager the book serves itself) picking another class must change what is shown.

Screenshots of three pages and a JSON report (load time and what the browser said, per page) are
written to ``_build/screenshots/``. Chromium comes from Debian (``make test`` installs it when missing);
the test is skipped only where no Chromium can be found at all.
"""

import base64
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
from book_build import rendered_book

websocket = pytest.importorskip("websocket", reason="websocket-client is in the `test` extra")

# builds the book (unless `make html` just did) and opens every page in Chromium: `make slow`
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                  # no network: every host but the local server is unresolvable
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
WIDGET_PAGE = "book/02_data.html"
SCREENSHOT_PAGES = {"index.html": "preface.png", "book/01_few_shot.html": "chapter1.png",
                    WIDGET_PAGE: "chapter2-class-browser.png"}


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def site():
    """The rendered book (built first when missing or older than its sources)."""
    return rendered_book()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class DevTools:
    """The few DevTools-protocol calls this test needs, over one page target's websocket."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, timeout=60, **params):
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(method)

    def wait_for(self, event, timeout=60):
        for i, msg in enumerate(self.events):
            if msg["method"] == event:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("method") == event:
                return msg
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(event)

    def evaluate(self, expression, timeout=60):
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def drain(self, seconds):
        """Collect the events that arrive in the next `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium found (make test installs Debian's `chromium`)")
    profile = tmp_path_factory.mktemp("chromium-profile")     # a new, empty user-data-dir
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--window-size=1280,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start ({exe}, exit code {proc.poll()})")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        target = json.loads(urllib.request.urlopen(req, timeout=30).read())
        tools = DevTools(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        yield tools
        tools.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def pages(site):
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if "_static" not in p.parts
                  and "_sources" not in p.parts)


def problems_from(events, base):
    """Console errors, exceptions, failed or non-local requests among DevTools events."""
    found, requests = [], {}
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            found.append(f"console.{p['type']}: {text}")
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            found.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))}")
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            found.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            requests[p["requestId"]] = url
            if not url.startswith((base, "data:", "blob:", "about:")):
                found.append(f"request outside the book: {url}")
        elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
            found.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            found.append(f"failed request ({p.get('errorText')}): {requests.get(p['requestId'], '?')}")
    return found


LOAD_ALL_IMAGES = """(async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r;
                                                                         setTimeout(r, 10000); })));
  return imgs.map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
                         widget: !!i.closest('.jupyter-widgets, .widget-image, .lm-Widget'),
                         output: !!i.closest('.cell_output')}));
})()"""

LINKS = "[...document.querySelectorAll('a[href]')].map(a => a.href)"

# equations typeset by the MathJax the book serves: (math elements, typeset ones)
MATH = """(async () => {
  const math = document.querySelectorAll('.math').length;
  if (!math) return [0, 0];
  for (let i = 0; i < 100 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return [math, document.querySelectorAll('.math mjx-container, mjx-container.MathJax').length];
})()"""


def open_page(tools, url):
    tools.events.clear()
    t0 = time.monotonic()
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired", timeout=120)
    seconds = time.monotonic() - t0
    tools.drain(0.5)          # late console messages and requests (widgets render after load)
    return seconds


def anchors_of(path: Path, cache={}):
    if path not in cache:
        text = path.read_text(errors="replace")
        cache[path] = set(re.findall(r'\bid="([^"]+)"', text)) | set(re.findall(r'\bname="([^"]+)"', text))
    return cache[path]


def image_outputs(notebook: Path) -> int:
    nb = nbformat.read(notebook, as_version=4)
    return sum(any(k.startswith("image/") for k in o.get("data", {}))
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def drive_class_browser(tools):
    """Pick another class in chapter 2's browser; return (before, after, chosen label)."""
    wait = """(async () => {
      for (let i = 0; i < 100; i++) {
        const s = document.querySelector('.widget-dropdown select');
        if (s && s.options.length > 1) return true;
        await new Promise(r => setTimeout(r, 100));
      }
      return false;
    })()"""
    assert tools.evaluate(wait), "the class browser's Dropdown was not rendered (widget manager not loaded?)"
    shown = """(() => {
      const s = document.querySelector('.widget-dropdown select');
      const box = s.closest('.widget-vbox, .jupyter-widgets.widget-container') || document.body;
      const stack = [...box.querySelectorAll('.widget-stack, .widget-container')].find(e => e !== box)
                    || box;
      return stack.innerText.replace(/\\s+/g, ' ');
    })()"""
    before = tools.evaluate(shown)
    choose = """(() => {
      const s = document.querySelector('.widget-dropdown select');
      s.scrollIntoView({block: 'start'});
      s.selectedIndex = 3;
      s.dispatchEvent(new Event('change', {bubbles: true}));
      return s.options[3].text;
    })()"""
    label = " ".join(tools.evaluate(choose).split())          # option texts use no-break spaces
    after = before
    for _ in range(50):
        time.sleep(0.1)
        after = tools.evaluate(shown)
        if after != before:
            break
    return before, after, label


def test_every_page_in_headless_chromium(site, server, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    report, failures, links = {}, [], {}
    for page in pages(site):
        url = urllib.parse.urljoin(server, page)
        seconds = open_page(browser, url)
        images = browser.evaluate(LOAD_ALL_IMAGES)
        math, typeset = browser.evaluate(MATH)
        entry = {"load_seconds": round(seconds, 2), "images": len(images),
                 "output_figures": sum(i["output"] and not i["widget"] and i["ok"] for i in images),
                 "equations": math}
        if typeset < math:
            failures.append(f"{page}: {math - typeset} of {math} equations were not typeset by MathJax")
        if page == WIDGET_PAGE:
            before, after, label = drive_class_browser(browser)
            entry["widget"] = {"picked": label, "changed": after != before, "label_shown": label in after}
            if after == before or label not in after:
                failures.append(f"{page}: picking {label!r} in the class browser did not change what is "
                                f"shown (before {before[:80]!r}, after {after[:80]!r})")
            browser.drain(0.5)
        broken = [i["src"] for i in images if not i["ok"]]
        entry["problems"] = problems_from(browser.events, server) + [f"image did not load: {s}" for s in broken]
        failures += [f"{page}: {p}" for p in entry["problems"]]
        links[page] = browser.evaluate(LINKS)
        if page in SCREENSHOT_PAGES:
            shot = browser.call("Page.captureScreenshot", format="png")
            (SCREENSHOTS / SCREENSHOT_PAGES[page]).write_bytes(base64.b64decode(shot["data"]))
        report[page] = entry

    # every internal link points at a page (and an anchor) that exists
    for page, hrefs in links.items():
        for href in hrefs:
            if not href.startswith(server):
                continue
            target = urllib.parse.urlsplit(href)
            path = site / urllib.parse.unquote(target.path).lstrip("/")
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                failures.append(f"{page}: link to a missing file {href}")
            elif target.fragment and path.suffix == ".html" and \
                    urllib.parse.unquote(target.fragment) not in anchors_of(path):
                failures.append(f"{page}: link to a missing anchor {href}")

    # every figure of every chapter is on its page
    for notebook in sorted((ROOT / "book").glob("*.ipynb")):
        page = f"book/{notebook.stem}.html"
        wanted = image_outputs(notebook)
        if page in report and report[page]["output_figures"] < wanted:
            failures.append(f"{page}: {report[page]['output_figures']} figures shown, the notebook has {wanted}")

    (SCREENSHOTS / "browser_report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    assert set(SCREENSHOT_PAGES) <= set(report), f"pages missing from the build: {set(SCREENSHOT_PAGES) - set(report)}"
    assert WIDGET_PAGE in report and report[WIDGET_PAGE].get("widget", {}).get("changed")
    assert not failures, "\n".join(failures)



# a slide deck has initialised: reveal.js ready, its slide count, the slide shown, and after Reveal.next()
SLIDES_STATE = """(async () => {
  for (let i = 0; i < 200 && !(window.lgaSlidesReady && window.Reveal && Reveal.isReady()); i++)
    await new Promise(r => setTimeout(r, 100));
  if (!(window.Reveal && Reveal.isReady())) return null;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const shown = () => { const s = Reveal.getCurrentSlide(); return s ? s.innerText.trim().slice(0, 80) : ''; };
  const first = {index: Reveal.getIndices(), text: shown()};
  Reveal.next();
  await new Promise(r => setTimeout(r, 300));
  return {total: Reveal.getTotalSlides(), first: first, next: {index: Reveal.getIndices(), text: shown()},
          math: document.querySelectorAll('mjx-container').length,
          visible: getComputedStyle(Reveal.getCurrentSlide()).display !== 'none'};
})()"""


def test_every_chapters_slides_in_headless_chromium(site, server, browser):
    """Each chapter's reveal.js deck (book/slides.md lists them), from the built book with the network
    cut off: reveal.js initialises from the copy the book serves, shows the chapter's title, moves to
    the next slide, typesets the chapter's equations, and nothing is requested outside the book."""
    failures = []
    for notebook in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        page = f"_static/slides/{notebook.stem}.slides.html"
        if not (site / page).is_file():
            failures.append(f"{page} is missing (make course, or make html)")
            continue
        open_page(browser, urllib.parse.urljoin(server, page))
        state = browser.evaluate(SLIDES_STATE)
        browser.drain(0.5)
        title = nbformat.read(notebook, as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
        if state is None:
            failures.append(f"{page}: reveal.js did not initialise")
            continue
        if state["total"] < 5 or not state["visible"]:
            failures.append(f"{page}: {state['total']} slides, current visible: {state['visible']}")
        if title.lower() not in state["first"]["text"].lower():     # the theme upper-cases titles
            failures.append(f"{page}: the first slide shows {state['first']['text']!r}, not {title!r}")
        if state["next"]["index"] == state["first"]["index"]:
            failures.append(f"{page}: Reveal.next() did not move ({state['first']['index']})")
        markdown = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
        if "$" in markdown and not state["math"]:
            failures.append(f"{page}: the chapter's equations were not typeset")
        failures += [f"{page}: {p}" for p in problems_from(browser.events, server)]
    assert not failures, "\n".join(failures)
