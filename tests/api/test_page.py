"""The engineer's page in a real headless Chromium (Debian's ``chromium`` and ``chromedriver``; Selenium is given
the driver's path, so nothing is downloaded at run time), against ``twin serve`` on loopback.

The tests share one server and one browser and run in file order: token, live view, a what-if from the
form and its run view, a bad target, a long run viewed binned, compare, sweeps, then a read token.
Each view is saved as a screenshot: under docs/img/ (the README shows them) when ``TWIN_UPDATE_SCREENSHOTS=1``,
else in a temporary folder (so that running the tests leaves the checkout as it was).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "static"
SHOTS = ROOT / "docs" / "img" if os.environ.get("TWIN_UPDATE_SCREENSHOTS") == "1" else \
    Path(tempfile.mkdtemp(prefix="twin-page-shots-"))
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
if not HAVE_BROWSER and not os.environ.get("CI"):
    pytest.skip("the page's browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                ".ci/run installs them); not found and not in CI", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev extra (pip install -e .[dev])")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

READ_TOKEN, WRITE_TOKEN = "page-read", "page-write"
READ, WRITE = ({"Authorization": f"Bearer {t}"} for t in (READ_TOKEN, WRITE_TOKEN))
#: Most bytes the page's own files may weigh.
MAX_ASSET_BYTES = 500_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``twin serve`` in its own process (live twin stepping every 0.5 s), torn down at the end of the module."""
    home = tmp_path_factory.mktemp("page-home")
    port = _free_port()
    env = dict(os.environ, TWIN_READ_TOKENS=READ_TOKEN, TWIN_WRITE_TOKENS=WRITE_TOKEN, TWIN_LIVE_PERIOD_S="0.5",
               TWIN_REAP_INTERVAL_S="1", TWIN_WORKERS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", "import sys; from twin.cli import main; sys.argv[0] = 'twin'; main()",
           "serve", "--port", str(port), "--home", str(home), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    t_end = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, "twin serve exited"
            try:
                if httpx.get(f"{base}/live/state", headers=READ, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < t_end, "the live twin did not start within 120 s"
            time.sleep(0.3)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


def wait_finished(server: str, path: str, timeout_s: float = 300.0) -> None:
    """Poll the API's ``path`` (a run or a sweep) until it is neither queued nor running."""
    t_end = time.monotonic() + timeout_s
    while httpx.get(server + path, headers=READ).json()["status"] in ("queued", "running"):
        assert time.monotonic() < t_end, f"{path} still queued or running after {timeout_s:g} s"
        time.sleep(0.5)


def wait(drv, cond, timeout=20.0, what="condition"):
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.1).until(lambda d: cond(d))
    except TimeoutException:
        shown = drv.execute_script("return document.getElementById('view')?.innerText.slice(0, 600)")
        raise AssertionError(f"{what} not met within {timeout} s; page errors: {errors(drv)}; the page shows: {shown!r}") from None


def errors(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def shot(drv, name: str) -> None:
    """The whole page (up to 2,400 px high) as page-<name>.png in :data:`SHOTS`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = drv.get_window_size()
    height = min(int(drv.execute_script("return document.documentElement.scrollHeight")) + 100, 2400)
    drv.set_window_size(size["width"], max(height, 500))
    time.sleep(0.4)  # plots redraw at the new size
    drv.save_screenshot(str(SHOTS / f"page-{name}.png"))
    drv.set_window_size(size["width"], size["height"])


def css(drv, sel):
    return drv.find_element(By.CSS_SELECTOR, sel)


def sign_in(drv, base, token):
    drv.get(base + "/#/live")
    drv.execute_script("sessionStorage.clear()")
    drv.refresh()
    wait(drv, lambda d: css(d, "#token-dialog").get_attribute("open") is not None, what="the token dialog")
    css(drv, "#token-input").send_keys(token)
    css(drv, "#token-ok").click()
    wait(drv, lambda d: css(d, "#scope").get_attribute("data-scope") != "", what="the token accepted")


@pytest.fixture(scope="module")
def page(server, browser):
    """The browser, signed in with a write token."""
    if css_or_none(browser, "#scope") is None or browser.execute_script("return sessionStorage.getItem('twin-token')") != WRITE_TOKEN:
        sign_in(browser, server, WRITE_TOKEN)
    return browser


def css_or_none(drv, sel):
    found = drv.find_elements(By.CSS_SELECTOR, sel)
    return found[0] if found else None


def test_assets_small_and_served_without_token(server):
    files = [p for p in STATIC.iterdir() if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert 0 < total <= MAX_ASSET_BYTES, f"the page's files weigh {total} bytes"
    with httpx.Client(base_url=server) as c:
        assert c.get("/").text.startswith("<!doctype html>")
        for p in files:
            r = c.get(f"/ui/{p.name}")
            assert r.status_code == 200 and len(r.content) == p.stat().st_size, p.name
        assert c.get("/ui/nope.js").status_code in (401, 404)
        assert c.get("/scenarios").status_code == 401  # data still needs a token
        presets = c.get("/scenarios", headers=READ).json()
        assert "southaven-largest-trip" in [p["name"] for p in presets["data"]]
        doc = c.get("/scenarios/southaven-largest-trip", headers=READ).json()["doc"]
        assert doc["events"][0]["target"] == "southaven/titan350-01"
        assert c.get("/scenarios/..%2Fetc", headers=READ).status_code == 404
        assert c.get("/auth/scope", headers=READ).json() == {"scope": "read"}
        assert c.get("/auth/scope", headers=WRITE).json() == {"scope": "write"}


def test_page_loads_without_console_errors(server, browser):
    sign_in(browser, server, WRITE_TOKEN)
    assert css(browser, "#scope").get_attribute("data-scope") == "write"
    browser.get(server + "/#/live")  # the token is kept for the session: no dialog the second time
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    nav = browser.execute_script("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime")
    assert 0 < nav <= 1000, f"the page took {nav:.0f} ms to load from loopback"
    assert css(browser, "#token-dialog").get_attribute("open") is None
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-islands tr td"), what="live islands table")
    time.sleep(1.5)
    assert errors(browser) == []
    shot(browser, "live")


def test_live_view_updates_within_3_s_of_telemetry(server, page):
    browser = page
    browser.get(server + "/#/live")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-islands tr td"), what="live islands table")
    t_before = float(css(browser, "#live-status").get_attribute("data-time-s"))
    r = httpx.post(server + "/live/telemetry", json={"t_amb_c": 33.5}, headers=WRITE)
    assert r.status_code == 200, r.text
    tic = time.monotonic()
    wait(browser, lambda d: any("t_amb_c" in li.text for li in d.find_elements(By.CSS_SELECTOR, "#live-events li[data-source=telemetry]")),
         timeout=3.0, what="the telemetry marker in the live view")
    assert time.monotonic() - tic <= 3.0
    assert float(css(browser, "#live-status").get_attribute("data-time-s")) > t_before  # the state moved on too
    assert "33.5" in css(browser, "#live-status").text
    assert errors(browser) == []


def test_whatif_from_the_live_state_shows_kpis_and_a_marker(server, page):
    browser = page
    browser.get(server + "/#/live")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-whatif datalist option"), what="the live what-if form")
    for sel, value in (("#lw-horizon", "00:00:30"), ("#lw-at", "5"), ("#lw-target", "southaven/titan350-01")):
        el = css(browser, sel)
        el.clear()
        el.send_keys(value)
    css(browser, "#lw-submit").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#lw-kpis tr[data-kpi]"), timeout=120, what="the what-if's KPIs")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-events li[data-source=whatif]"), timeout=5, what="the what-if marker")
    assert errors(browser) == []
    shot(browser, "live-whatif")


def _fill_whatif(drv, base, target, horizon="00:02:00", at="00:01:00"):
    drv.get(base + "/#/whatif")
    wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "#wf-site option") and d.find_elements(By.CSS_SELECTOR, "datalist option"),
         what="the what-if form with the site's components")
    Select(css(drv, "#wf-site")).select_by_value("memphis")
    for sel, value in (("#wf-name", "page-whatif"), ("#wf-horizon", horizon)):
        el = css(drv, sel)
        el.clear()
        el.send_keys(value)
    css(drv, "#wf-add").click()
    row = css(drv, "#events-table tbody tr")
    at_el = row.find_element(By.CSS_SELECTOR, ".ev-at")
    at_el.clear()
    at_el.send_keys(at)
    Select(row.find_element(By.CSS_SELECTOR, ".ev-do")).select_by_value("trip")
    row.find_element(By.CSS_SELECTOR, ".ev-target").send_keys(target)


def test_whatif_from_the_form_runs_and_shows_kpis_and_frequency(server, page):
    browser = page
    _fill_whatif(browser, server, "southaven/titan350-01")
    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#targets-trip option")]
    assert "southaven/titan350-01" in options  # targets come from the site's components
    shot(browser, "whatif")
    css(browser, "#wf-submit").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#run-progress"), what="the progress bar")
    wait(browser, lambda d: "#/run/" in d.current_url and d.find_elements(By.CSS_SELECTOR, "#kpi-table tr[data-kpi]"),
         timeout=240, what="the run view with KPIs")
    kpis = {r.get_attribute("data-kpi") for r in browser.find_elements(By.CSS_SELECTOR, "#kpi-table tr[data-kpi]")}
    assert any(k.startswith("f_min_hz") for k in kpis), kpis
    plot = css(browser, "#series-plot")
    wait(browser, lambda d: int(plot.get_attribute("data-points") or 0) > 0, what="the frequency plot's data")
    assert Select(css(browser, "#series-var")).first_selected_option.get_attribute("value") == "f_hz"
    assert int(plot.get_attribute("data-series")) >= 1
    soe = browser.find_elements(By.CSS_SELECTOR, "#soe-table tr.click")
    assert any("titan350-01" in r.text for r in soe)  # the scenario event is in the sequence of events
    wait(browser, lambda d: int(css(d, "#oneline").get_attribute("data-coloured") or 0) > 0, what="the one-line diagram coloured")
    diagram = css(browser, "#oneline")
    assert diagram.get_attribute("data-coloured") == diagram.get_attribute("data-branches")  # every branch has its loading
    time.sleep(0.5)
    assert errors(browser) == []
    shot(browser, "run")


def test_bad_event_target_shows_the_api_message_by_the_field(server, page):
    browser = page
    _fill_whatif(browser, server, "southaven/no-such-unit")
    n_runs = len(httpx.get(server + "/runs", headers=READ).json()["data"])
    css(browser, "#wf-submit").click()
    slot = css(browser, '[data-err="events[0].target"]')
    wait(browser, lambda d: slot.text.strip() != "", what="the message next to the event's target")
    assert "no-such-unit" in slot.text and "matches no component" in slot.text, slot.text
    assert "invalid" in css(browser, "#events-table .ev-target").get_attribute("class")
    assert len(httpx.get(server + "/runs", headers=READ).json()["data"]) == n_runs
    assert all("/runs" in e and "422" in e for e in errors(browser))  # the browser logs the refused POST, nothing else
    shot(browser, "whatif-error")


def _series_requests(drv) -> list[dict]:
    urls = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    out = []
    for u in urls:
        p = urlparse(u)
        if p.path.endswith("/series"):
            out.append({k: v[0] for k, v in parse_qs(p.query).items()})
    return out


def test_long_run_view_asks_for_binned_data(server, page):
    browser = page
    """A run of hours at 1 s: the page asks for at most ~1000 samples per series, binned with min/max, and finer ones when zoomed."""
    doc = {"scenario": {"name": "page-long", "site": "memphis", "horizon": "03:00:00"},
           "events": [{"at": "01:00:00", "do": "trip", "target": "southaven/titan350-02"}]}
    r = httpx.post(server + "/runs", json=doc, headers=WRITE)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    wait_finished(server, f"/runs/{run_id}")
    browser.get(f"{server}/#/run/{run_id}")
    browser.execute_script("performance.clearResourceTimings()")
    browser.refresh()
    plot = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#series-plot[data-points]"), what="the series plot")[0]
    n_steps = 3 * 3600
    every = float(plot.get_attribute("data-every"))
    points = int(plot.get_attribute("data-points"))
    assert every > 1.0 and points <= 1100 and points < n_steps / 5, (every, points)
    reqs = [q for q in _series_requests(browser) if q.get("var") == "f_hz" and q.get("start") != q.get("end")]
    assert reqs and all("every" in q for q in reqs), reqs
    assert {q["agg"] for q in reqs} == {"mean", "min", "max"}  # min/max bands
    loads = int(plot.get_attribute("data-loads"))
    shot(browser, "run-binned")
    # zoom on the trip (the sequence-of-events row): a finer bin, fetched again
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#soe-table tr.click") if "titan350-02" in r.text)
    row.click()
    wait(browser, lambda d: int(plot.get_attribute("data-loads")) > loads, what="a refetch at the zoom level")
    assert float(plot.get_attribute("data-every")) < every
    assert errors(browser) == []
    shot(browser, "run-zoomed")


def test_compare_two_runs(server, page):
    browser = page
    runs = httpx.get(server + "/runs?status=done", headers=READ).json()["data"]
    assert len(runs) >= 2
    browser.get(f"{server}/#/runs")
    listed = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#runs-table tr[data-run]"), what="the runs list")
    assert {r["id"] for r in runs} <= {tr.get_attribute("data-run") for tr in listed}
    browser.get(f"{server}/#/compare/{runs[1]['id']}/{runs[0]['id']}")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#cmp-kpis tr[data-kpi]"), what="the KPI deltas")
    legend = css(browser, "#cmp-plot .legend").text
    assert "A:" in legend and "B:" in legend
    assert errors(browser) == []
    shot(browser, "compare")


def test_sweep_ranking_opens_a_case(server, page):
    browser = page
    body = {"base": {"scenario": {"name": "page-sweep", "site": "memphis", "horizon": 60}},
            "cases": [{"name": "trip-01", "events": [{"at": 10, "do": "trip", "target": "southaven/titan350-01"}]}]}
    r = httpx.post(server + "/sweeps", json=body, headers=WRITE)
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    wait_finished(server, f"/sweeps/{sid}")
    browser.get(f"{server}/#/sweeps")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#sweeps-table tr.click"), what="the sweeps table").__getitem__(0).click()
    rows = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#ranking-table tr.click"), what="the ranking table")
    assert len(rows) == 2
    shot(browser, "sweeps")
    run_id = rows[0].get_attribute("data-run")
    rows[0].click()
    wait(browser, lambda d: d.current_url.endswith(f"#/run/{run_id}") and d.find_elements(By.CSS_SELECTOR, "#kpi-table tr[data-kpi]"),
         what="the case's run view")
    assert errors(browser) == []


def test_read_token_can_look_but_not_submit(server, browser):
    sign_in(browser, server, READ_TOKEN)
    assert css(browser, "#scope").get_attribute("data-scope") == "read"
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-islands tr td"), what="the live view for a read token")
    n_runs = len(httpx.get(server + "/runs", headers=READ).json()["data"])
    _fill_whatif(browser, server, "southaven/titan350-01")
    button = css(browser, "#wf-submit")
    assert not button.is_enabled()
    assert "write token" in css(browser, "#wf-readonly").text
    browser.execute_script("document.getElementById('whatif-form').requestSubmit()")  # even if forced
    wait(browser, lambda d: "read scope" in css(d, "#wf-error").text, what="the refusal")
    time.sleep(0.5)
    assert len(httpx.get(server + "/runs", headers=READ).json()["data"]) == n_runs
