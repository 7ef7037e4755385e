"""The admin dashboard in a real browser: headless Chromium renders the page of a real
gateway that has served known traffic; the rendered DOM must carry the right numbers
and the screenshot must show the charts (their colours), not a blank or error page.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
import zlib
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.client import get
from support.configs import route, upstream

TOKEN = "dash-token"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Colours from pygate/server/dashboard/dashboard.css: 2xx columns and 5xx columns.
GREEN_2XX = (0x2E, 0x9D, 0x5B)
RED_5XX = (0xD6, 0x45, 0x45)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def dash(upstreams, dead_addr, tmp_path_factory):
    from support.gateway import Gateway

    config = {
        "workers": 1,
        "admin": {"token": TOKEN},
        "upstreams": [
            upstream("echo", [upstreams.addr("echo")]),
            upstream("dead", [dead_addr], retries=0),
        ],
        "routes": [route("echo", ["/echo/*"], "echo"), route("dead", ["/dead/*"], "dead")],
    }
    gateway = Gateway(tmp_path_factory.mktemp("gw-dashboard"), config)
    gateway.start()
    tag = uuid.uuid4().hex[:6]
    plan = (
        ["/echo/ok"] * 9
        + ["/echo/boom?mode=status&code=500"] * 2
        + ["/dead/x"] * 3
        + ["/nowhere"] * 4
    )
    statuses: Counter[int] = Counter()
    ids = []
    try:
        for n, path in enumerate(plan):
            rid = f"dash-{tag}-{n:02d}"
            statuses[get(gateway.url(path), headers={"X-Request-Id": rid}).status] += 1
            ids.append(rid)
        records = gateway.records(ids)
        yield {"gw": gateway, "statuses": statuses, "records": records, "sent": len(plan)}
    finally:
        try:
            gateway.stop()
        finally:
            gateway.kill()


def chromium(tmp_path: Path, url: str, *mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1280,900",
            # Virtual time runs the page's 1 s refresh loop a few times, then stops.
            "--virtual-time-budget=6000",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def page_url(gw, token: str = TOKEN) -> str:
    # The token goes in the fragment: the browser never sends it to the server.
    return gw.admin_url(f"/dashboard?since=15m&refresh=1#token={token}")


class Rendered(HTMLParser):
    """Collects the elements a test checks: every element with data-* attributes,
    tagged with the report panel it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.panel_stack: list[str | None] = []
        self.elements: list[tuple[str | None, str, dict]] = []
        self.body: dict = {}
        self.problem_hidden = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        panel = attrs.get("data-report") or (self.panel_stack[-1] if self.panel_stack else None)
        if tag == "body":
            self.body = attrs
        if attrs.get("id") == "problem":
            self.problem_hidden = "hidden" in attrs
        self.elements.append((panel, tag, attrs))
        self.panel_stack.append(panel)

    def handle_endtag(self, tag):
        if self.panel_stack:
            self.panel_stack.pop()

    def in_panel(self, panel: str, tag: str) -> list[dict]:
        return [a for p, t, a in self.elements if p == panel and t == tag]


def test_page_holds_no_data_and_its_reports_need_the_token(dash):
    gw = dash["gw"]
    # The page is static (no data in it): served without a token; what it polls is not.
    assert gw.admin_get("/logs/report/traffic?since=15m", token=None)[0] == 401
    assert gw.admin_get("/logs/report/traffic?since=15m")[0] == 200
    # A token in the query string opens nothing (it would land in logs and history).
    assert gw.admin_get(f"/status?token={TOKEN}", token=None)[0] == 401
    assert gw.admin_get(f"/logs/report/traffic?token={TOKEN}", token=None)[0] == 401
    resp = get(gw.admin_url("/dashboard"))
    assert resp.status == 200
    assert resp.header("content-type").startswith("text/html")
    csp = resp.header("content-security-policy")
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert resp.header("referrer-policy") == "no-referrer"
    assert b"<script>" in resp.body and b"src=" not in resp.body.split(b"<script>")[1][:20]


def test_rendered_dashboard_shows_the_reports(dash, tmp_path):
    gw, statuses = dash["gw"], dash["statuses"]
    done = chromium(tmp_path, page_url(gw), "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Rendered()
    dom.feed(done.stdout)

    assert dom.problem_hidden is True, done.stdout[-3000:]
    # The page refreshed itself more than once within the virtual time budget.
    assert int(dom.body.get("data-refreshes", 0)) >= 2

    totals = {
        a["data-total"]: float(a["data-value"]) for _, _, a in dom.elements if "data-total" in a
    }
    assert totals["requests"] == dash["sent"] == 18
    assert totals["5xx"] == statuses[500] + statuses[502] == 5
    assert totals["4xx"] == statuses[404] == 4

    columns: Counter[str] = Counter()
    for rect in dom.in_panel("traffic", "rect"):
        columns[rect["data-series"]] += int(rect["data-value"])
    assert columns == {"2xx": 9, "4xx": 4, "5xx": 5}

    error_bars = {a["data-label"]: int(a["data-value"]) for a in dom.in_panel("errors", "rect")}
    assert error_bars == {"404 no_route": 4, "502 upstream_unavailable": 3, "500": 2}

    by_route = defaultdict(list)
    for rec in dash["records"].values():
        by_route[rec["route"]].append(float(rec["latency_ms"]))
    latency_bars = defaultdict(dict)
    for rect in dom.in_panel("latency", "rect"):
        latency_bars[rect["data-label"]][rect["data-series"]] = float(rect["data-value"])
    assert set(latency_bars) == set(by_route) == {"echo", "dead", ""}
    for name, values in by_route.items():
        assert latency_bars[name]["p50"] <= latency_bars[name]["p99"] <= max(values) + 0.01

    slow_rows = dom.in_panel("slowest", "tr")
    assert len(slow_rows) == 1 + dash["sent"]  # header + every request (fewer than 20)


def test_screenshot_shows_the_charts(dash, tmp_path):
    shot = tmp_path / "dashboard.png"
    done = chromium(tmp_path, page_url(dash["gw"]), f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 900)
    colours = Counter(pixels)
    assert len(colours) > 50, "a near-blank screenshot"
    assert colours.most_common(1)[0][1] < 0.9 * width * height
    assert count_near(colours, GREEN_2XX) > 20, "no 2xx columns drawn"
    assert count_near(colours, RED_5XX) > 20, "no 5xx columns drawn"


def test_dashboard_with_a_wrong_token_shows_nothing(dash, tmp_path):
    done = chromium(tmp_path, page_url(dash["gw"], token="wrong"), "--dump-dom")
    assert done.returncode == 0
    assert "missing or wrong admin token" in done.stdout
    dom = Rendered()
    dom.feed(done.stdout)
    assert not [a for _, _, a in dom.elements if "data-rows" in a or "data-total" in a]
    (login,) = [a for _, tag, a in dom.elements if a.get("id") == "login"]
    assert "hidden" not in login  # the login form asks for the right token


def test_dashboard_without_a_token_asks_for_one(dash, tmp_path):
    done = chromium(tmp_path, dash["gw"].admin_url("/dashboard?since=15m"), "--dump-dom")
    assert done.returncode == 0
    dom = Rendered()
    dom.feed(done.stdout)
    (login,) = [a for _, tag, a in dom.elements if a.get("id") == "login"]
    assert "hidden" not in login
    assert not [a for _, _, a in dom.elements if "data-total" in a]


def count_near(colours: Counter, rgb: tuple[int, int, int], tolerance: int = 6) -> int:
    def near(colour: tuple[int, ...]) -> bool:
        return all(abs(a - b) <= tolerance for a, b in zip(colour, rgb, strict=True))

    return sum(n for colour, n in colours.items() if near(colour))


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """8-bit RGB/RGBA non-interlaced PNG -> (width, height, RGB pixels); no Pillow needed."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + pred) & 0xFF
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, channels))
        previous = line
    return width, height, pixels
