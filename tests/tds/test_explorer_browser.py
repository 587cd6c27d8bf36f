"""The explorer in a real headless Chromium at 1280x800 over the audited lifecycle (with one failed
transaction): search each kind of id from the search box and land on its page; follow links from an
asset to a grant, a job, its transaction and its log batch and back; a failed transaction shows its
custom error by name; the exported CSV parses and equals the JSON; the printable report renders and
prints to PDF; no page scrolls horizontally; "/" focuses the search. A screenshot of each page kind
is saved (to ``$TDS_EXPLORER_SHOTS``, e.g. docs/explorer, else a temporary folder).

Needs Debian's chromium + chromium-driver (``make browser``). Without them the test is skipped —
except under CI (``CI`` set), where a missing browser is a failure.
"""
from __future__ import annotations

import base64
import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.index import EventIndex
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from tests.support.lifecycle import did_for, shared_lifecycle
from tests.support.services import ServedApp
from tests.tds.explorer_world import ExplorerWorld, with_failed_tx

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI"):
        pytest.fail(f"CI needs {CHROMIUM} and {CHROMEDRIVER}: run 'make browser' (apt-get install chromium "
                    "chromium-driver)", pytrace=False)
    pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} absent: run 'make browser' to install Debian's chromium and "
                "chromium-driver", allow_module_level=True)

pytest.importorskip("selenium", reason="selenium is a dev dependency: pip install -e '.[dev]'")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def world(request, tmp_path_factory) -> Iterator[ExplorerWorld]:
    yield from with_failed_tx(shared_lifecycle(request, tmp_path_factory))


@pytest.fixture(scope="module")
def url(world: ExplorerWorld, tmp_path_factory) -> Iterator[str]:
    lc = world.lc
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path_factory.mktemp('explorer-ui') / 'i.sqlite'}")
    idx.catch_up()
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    served = ServedApp(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx,
                                  rate_limit=RateLimit(per_second=1000, burst=1000)))
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("TDS_EXPLORER_SHOTS") or tmp_path_factory.mktemp("explorer-shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-explorer')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.set_window_size(1280, 800)
    yield driver
    driver.quit()


def settle(d: Any, kind: str | None = None) -> None:
    """Wait until the page's script ran (and it is a page of ``kind``); it must not scroll sideways."""
    def ready(b: Any) -> bool:  # a click does not wait for the next page: wait for its kind, not the old page's
        body = b.find_element(By.TAG_NAME, "body")
        return body.get_attribute("data-ready") == "1" and (kind is None or body.get_attribute("data-page") == kind)

    try:
        WebDriverWait(d, 20, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(ready)
    except TimeoutException:
        raise AssertionError(f"{d.current_url} is not a loaded {kind or ''} page") from None
    width = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"{d.current_url} scrolls horizontally: {width}"


FULL_PAGE_MAX_PX = 12_000


def shot(d: Any, folder: Path, name: str) -> None:
    """A full-page screenshot (the whole document at 1280 wide, not only the top 800 px)."""
    size = d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], FULL_PAGE_MAX_PX), "scale": 1}
    png = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    (folder / f"{name}.png").write_bytes(base64.b64decode(png["data"]))


def search(d: Any, base: str, query: str) -> None:
    d.get(base + "/explorer")
    settle(d, "landing")
    box = d.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query, Keys.ENTER)
    WebDriverWait(d, 20).until(lambda b: b.current_url != base + "/explorer")


def test_search_each_kind_of_id_lands_on_its_page(browser: Any, url: str, world: ExplorerWorld, shots: Path):
    lc = world.lc
    browser.get(url + "/explorer")
    settle(browser, "landing")
    assert browser.find_element(By.CSS_SELECTOR, "[data-total=assets] .n").text == "2"
    local = browser.find_element(By.CSS_SELECTOR, "time[data-ts]").text
    assert not local.endswith("Z") and browser.find_element(By.ID, "tz").text  # shown in the viewer's zone
    shot(browser, shots, "landing")
    reg = lc.c["AssetRegistry"].events.AssetRegistered().get_logs(from_block=0)[0]
    batch = lc.c["Evidence"].events.BatchAnchored().get_logs(from_block=0)[0]["args"]["batchId"]
    cases = [(f"asset {lc.asset}", "asset", f"/explorer/asset/{lc.asset}"),
             (f"grant {lc.grant}", "grant", f"/explorer/grant/{lc.grant}"),
             (str(lc.job_ok), "job", f"/explorer/job/{lc.job_ok}"),
             (reg["transactionHash"].to_0x_hex(), "tx", f"/explorer/tx/{reg['transactionHash'].to_0x_hex()}"),
             (f"block {reg['blockNumber']}", "block", f"/explorer/block/{reg['blockNumber']}"),
             (lc.addr["consumer"], "address", f"/explorer/address/{lc.addr['consumer']}"),
             (did_for("provider"), "address", f"/explorer/address/{lc.addr['provider']}"),
             (f"batch {batch}", "batch", f"/explorer/batch/{batch}"),
             (f"workflow {world.workflow}", "workflow", f"/explorer/workflow/jobs/{world.workflow}")]
    for query, kind, path in cases:
        search(browser, url, query)
        settle(browser, kind)
        assert browser.current_url == url + path, (query, browser.current_url)
        shot(browser, shots, "participant" if kind == "address" else kind)
    browser.get(url + "/explorer/contract/Jobs")
    settle(browser, "contract")
    shot(browser, shots, "contract")
    # the other page kinds fit 1280 wide too (settle checks it)
    for path, kind in (("/explorer/activity", "activity"), ("/explorer/export", "export"),
                       ("/explorer/search?q=1", "search"), (f"/explorer/verification?asset={lc.asset}&format=html",
                                                             "verification"),
                       ("/explorer/contract/Jobs/source?path=contracts/jobs/Jobs.sol", "source")):
        browser.get(url + path)
        settle(browser, kind)
        if kind == "search":
            shot(browser, shots, kind)
    browser.get(url + "/explorer/asset/999")
    settle(browser, "notfound")
    assert "asset 999" in browser.find_element(By.ID, "notfound").text


def click(d: Any, css: str) -> None:
    el = d.find_element(By.CSS_SELECTOR, css)
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()


def test_follow_links_asset_grant_job_transaction_batch_and_back(browser: Any, url: str, world: ExplorerWorld,
                                                                   shots: Path):
    lc = world.lc
    browser.get(f"{url}/explorer/asset/{lc.asset}")
    settle(browser, "asset")  # the page came from the index; its script filled the verdicts in
    assert browser.find_element(By.ID, "status").text.startswith("PASS")
    assert browser.find_elements(By.CSS_SELECTOR, "#trail tr[data-event=JobCompleted] .marks .badge.pass")
    click(browser, f"#grants a[href='/explorer/grant/{lc.grant}']")
    settle(browser, "grant")
    click(browser, f"main a[href='/explorer/asset/{lc.asset}']")
    settle(browser, "asset")
    click(browser, f"#jobs a[href='/explorer/job/{lc.job_ok}']")
    settle(browser, "job")
    click(browser, "#history tr[data-event=JobCompleted] a[href^='/explorer/tx/']")
    settle(browser, "tx")
    assert "Jobs.completeJob" in browser.find_element(By.ID, "call").text
    assert "JobCompleted" in browser.find_element(By.ID, "events").text
    browser.back()
    settle(browser, "job")
    assert browser.current_url.endswith(f"/explorer/job/{lc.job_ok}")
    browser.back()
    settle(browser, "asset")
    click(browser, "#trail tr[data-event=BatchAnchored] a[href^='/explorer/batch/']")
    settle(browser, "batch")
    assert "batch-root" in browser.find_element(By.ID, "verification").text
    click(browser, "main a[href^='/explorer/tx/']")
    settle(browser, "tx")
    assert "BatchAnchored" in browser.find_element(By.ID, "events").text
    browser.back()
    settle(browser, "batch")
    browser.back()
    settle(browser, "asset")
    assert browser.current_url.endswith(f"/explorer/asset/{lc.asset}")


def test_a_failed_transaction_shows_its_custom_error_by_name(browser: Any, url: str, world: ExplorerWorld,
                                                              shots: Path):
    browser.get(f"{url}/explorer/tx/{world.failed_tx}")
    settle(browser, "tx")
    name = browser.find_element(By.ID, "error-name").text
    assert re.match(r"^GrantNotActive\(grantId=\d+", name), name
    shot(browser, shots, "tx-failed")


def test_keyboard_reaches_the_search_and_the_skip_link(browser: Any, url: str, world: ExplorerWorld):
    browser.get(url + "/explorer")
    settle(browser, "landing")
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    browser.switch_to.active_element.send_keys(f"asset {world.lc.asset}", Keys.ENTER)
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith(f"/explorer/asset/{world.lc.asset}"))
    settle(browser, "asset")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"


def test_export_csv_equals_json_and_the_report_renders_and_prints(browser: Any, url: str, world: ExplorerWorld,
                                                                   shots: Path):
    lc = world.lc
    doc = httpx.get(f"{url}/explorer/export", params={"asset": lc.asset, "format": "json"}, timeout=30).json()
    text = httpx.get(f"{url}/explorer/export", params={"asset": lc.asset, "format": "csv"}, timeout=30).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and rows == [{k: "" if v is None else str(v) for k, v in r.items()} for r in doc["rows"]]
    browser.get(f"{url}/explorer/export?asset={lc.asset}&format=html")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "table.report"))
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Audit trail of asset {lc.asset}"
    trail_rows = browser.find_elements(By.CSS_SELECTOR, "section:nth-of-type(1) table.report tbody tr")
    assert len(trail_rows) == len(doc["rows"])
    assert doc["hash"] in browser.page_source
    assert browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot(browser, shots, "report")
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    (shots / "report.pdf").write_bytes(pdf)
