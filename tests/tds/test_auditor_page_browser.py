"""The auditor page in a real headless Chromium: the gateway (uvicorn, its own thread) over the
audited lifecycle on a real chain; the page's timeline and verdicts must be exactly what the
gateway's ``/assets/{id}/trail`` and ``/audit/verify`` return as JSON; one event it shows must
decode identically with ``cast receipt`` (an independent client reading the node).

Needs Debian's chromium + chromium-driver (``make browser``). Without them the test is skipped —
except under CI (``CI`` set), where a missing browser is a failure.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from audit.events import ChainReader
from audit.trail import build_trail
from tds.gateway import create_app
from tests.support.lifecycle import Lifecycle, did_for, shared_lifecycle
from tests.support.services import ServedApp

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
CAST = ROOT / "node_modules" / ".bin" / "cast"

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI"):
        pytest.fail(f"CI needs {CHROMIUM} and {CHROMEDRIVER}: run 'make browser' (apt-get install chromium "
                    "chromium-driver)", pytrace=False)
    pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} absent: run 'make browser' to install Debian's chromium and "
                "chromium-driver", allow_module_level=True)

pytest.importorskip("selenium", reason="selenium is a dev dependency: pip install -e '.[dev]'")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


@pytest.fixture(scope="module")
def gateway_url(lc: Lifecycle) -> Iterator[str]:
    """The gateway on a free loopback port, served by uvicorn in a thread."""
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    served = ServedApp(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch))
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    # the Debian driver, never one selenium-manager would download
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def parse_args(text: str) -> dict[str, str]:
    """The page's ``key value, key value`` argument line back into a mapping."""
    out = {}
    for part in text.split(", "):
        key, _, value = part.partition(" ")
        out[key] = value
    return out


def cast(*args: str) -> str:
    res = subprocess.run([str(CAST), *args], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"cast {' '.join(args)}: {res.stderr}"
    return res.stdout.strip()


def event_signature(contract: str, event: str) -> tuple[str, list[dict[str, Any]]]:
    """``Name(type,…)`` and the inputs of ``event``, from the compiled artifact's ABI."""
    abi = json.loads((ROOT / "artifacts" / f"{contract}.json").read_text())["abi"]
    entry = next(e for e in abi if e.get("type") == "event" and e["name"] == event)
    return f"{event}({','.join(i['type'] for i in entry['inputs'])})", entry["inputs"]


def test_auditor_page_shows_the_trail_and_verdicts(browser: Any, gateway_url: str, lc: Lifecycle):
    browser.get(gateway_url + "/auditor")
    box = browser.find_element(By.ID, "asset")
    box.clear()
    box.send_keys(str(lc.asset))
    browser.find_element(By.CSS_SELECTOR, "#f button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
                                     == str(lc.asset))
    assert browser.current_url.endswith(f"?asset={lc.asset}")

    # what the page must show: the gateway's own JSON, read by a plain HTTP client
    trail_json = httpx.get(f"{gateway_url}/assets/{lc.asset}/trail", timeout=30).raise_for_status().json()
    report = httpx.get(f"{gateway_url}/audit/verify", params={"asset": lc.asset}, timeout=30).raise_for_status().json()
    trail, verdicts = trail_json["trail"], report["verdicts"]
    assert trail and verdicts
    # and that JSON is the chain's trail (rebuilt here straight from the events)
    assert [e["id"] for e in trail] == [e.id for e in build_trail(ChainReader(lc.w3, lc.deployment), lc.asset)]

    steps = browser.find_elements(By.CSS_SELECTOR, "ol#timeline > li")
    assert [(li.get_attribute("data-id"), li.get_attribute("data-action"), li.get_attribute("data-result"))
            for li in steps] == [(e["id"], e["action"], e["result"]) for e in trail]
    assert {"register", "apply", "complete"} <= {e["action"] for e in trail}
    for li, entry in zip(steps, trail):
        ev = li.find_element(By.CSS_SELECTOR, ".event")
        assert ev.get_attribute("data-event") == entry["event"]
        assert ev.text.startswith(f"{entry['contract']}.{entry['event']} ")
        assert entry["time_iso"] in li.find_element(By.CSS_SELECTOR, ".when").text
        assert li.find_element(By.CSS_SELECTOR, ".uid").text == entry["id"]

    rows = browser.find_elements(By.CSS_SELECTOR, "#verdicts tbody tr")
    assert [(r.get_attribute("data-step"), r.get_attribute("data-subject"), r.get_attribute("data-status"))
            for r in rows] == [(v["step"], v["subject"], v["status"]) for v in verdicts]
    # each verdict about a job is shown on that job's completion step, with its verdict
    completed = next(li for li, e in zip(steps, trail)
                     if e["event"] == "JobCompleted" and e["object"]["job"] == lc.job_ok)
    shown = {(c.get_attribute("data-step"), c.get_attribute("data-status"))
             for c in completed.find_elements(By.CSS_SELECTOR, ".checks .check")}
    assert shown == {(v["step"], v["status"]) for v in verdicts if v["refs"].get("job") == lc.job_ok}
    assert {"signature", "result-hash", "payment"} <= {s for s, _ in shown}
    status = browser.find_element(By.ID, "status")
    assert report["ok"] is True  # the lifecycle is honest: every verification holds
    assert status.text.startswith("PASS")
    assert all(r.get_attribute("data-status") in ("pass", "skip") for r in rows)
    assert f"{len(trail)} events" in status.text


def test_an_event_on_the_page_decodes_identically_with_cast(browser: Any, gateway_url: str, lc: Lifecycle):
    """The application step shown on the page, re-read and decoded by cast from the node."""
    browser.get(f"{gateway_url}/auditor?asset={lc.asset}")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    li = browser.find_element(By.CSS_SELECTOR, "ol#timeline > li[data-action=apply]")
    tx, log_index = li.get_attribute("data-id").split(":")
    shown = parse_args(li.find_element(By.CSS_SELECTOR, ".event .args").text)

    rpc = lc.w3.provider.endpoint_uri
    receipt = json.loads(cast("receipt", tx, "--json", "--rpc-url", rpc))
    log = next(lg for lg in receipt["logs"] if int(lg["logIndex"], 16) == int(log_index))
    assert log["address"].lower() == lc.c["Authorizations"].address.lower()
    sig, inputs = event_signature("IAuthorizations", "ApplicationSubmitted")
    assert log["topics"][0] == cast("keccak", sig)  # cast's topic0 for the ABI's signature

    indexed = [i for i in inputs if i["indexed"]]
    plain = [i for i in inputs if not i["indexed"]]
    decoded: dict[str, str] = {}
    for i, topic in zip(indexed, log["topics"][1:]):
        decoded[i["name"]] = cast("abi-decode", "--input", f"f({i['type']})", topic)
    data_sig = f"{sig.split('(')[0]}({','.join(i['type'] for i in plain)})"
    values = cast("decode-event", "--sig", data_sig, log["data"]).splitlines()
    for i, value in zip(plain, values):
        decoded[i["name"]] = value.split(" [")[0].strip()

    # the page names ids by their object key (application, asset) and shows every other argument as is
    page = {"applicationId": shown["application"], "assetId": shown["asset"], **{
        k: v for k, v in shown.items() if k not in ("application", "asset")}}
    page["consumer"] = li.text.split(" by ")[1].split("\n")[0]
    assert decoded["consumer"].lower() == lc.addr["consumer"].lower()
    assert int(decoded["assetId"]) == lc.asset
    assert page["consumer"] in (lc.addr["consumer"], did_for("consumer"))
    for name in ("applicationId", "assetId", "purposeHash", "operations", "kind", "notBefore", "expiry", "maxUses"):
        assert _norm(decoded[name]) == _norm(page[name]), (name, decoded[name], page[name])


def _norm(value: str) -> str:
    """Numbers as decimal, hex lower-case: cast and the page print the same values alike."""
    v = value.strip()
    if v.startswith("0x"):
        return v.lower()
    return str(int(v))
