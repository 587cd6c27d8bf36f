"""Helpers of the console's browser tests (tests/tds/test_console_browser.py): the Chromium session
with the test wallet injected, and the waits and clicks the steps share. Imported only once the
test module has checked that chromium, chromedriver and selenium are there."""
from __future__ import annotations

import os
import tempfile

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.tds.console_wallet import SCRIPT
from tests.tds.console_world import ConsoleWorld

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# screenshots go to $TDS_CONSOLE_SHOTS (TDS_CONSOLE_SHOTS=docs/console refreshes the README's), else a
# temporary folder: a test run leaves the working tree as it found it
SHOTS = Path(os.environ.get("TDS_CONSOLE_SHOTS") or tempfile.mkdtemp(prefix="tds-console-shots-"))


def chromium_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium at 1280x800 with the test wallet injected before any page script."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    # the test wallet, before any page script (a fixture: the package never serves it)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SCRIPT.read_text()})
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(b: Any, cond: Any, timeout: float = 30) -> Any:
    try:
        return WebDriverWait(b, timeout).until(cond)
    except Exception:
        logs = [e["message"] for e in b.get_log("browser")]
        message = b.find_element(By.ID, "message").text
        raise AssertionError(f"timed out; message {message!r}; browser log {logs[-10:]}") from None


def open_console(b: Any, url: str, cw: ConsoleWorld, who: str, ready: bool = True) -> None:
    cw.use(who)
    b.get(url + "/console")
    wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "button.connect[data-wallet='org.tds.test-wallet']"))
    b.find_element(By.CSS_SELECTOR, "button.connect").click()
    if ready:
        wait(b, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def message(b: Any, code: str, timeout: float = 30) -> str:
    """Wait until the page's message names ``code``; its text."""
    wait(b, lambda d: d.find_element(By.ID, "message").get_attribute("data-code") == code, timeout)
    return b.find_element(By.ID, "message").text


def confirm(b: Any, shot: str | None = None) -> dict[str, str]:
    """What the confirmation dialog shows (term → value), then confirm it."""
    wait(b, lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    dts = b.find_elements(By.CSS_SELECTOR, "#confirm-facts dt")
    dds = b.find_elements(By.CSS_SELECTOR, "#confirm-facts dd")
    shown = {t.text: v.text for t, v in zip(dts, dds)}
    if shot:
        b.save_screenshot(str(SHOTS / shot))
    b.find_element(By.ID, "confirm-ok").click()
    return shown


def css(b: Any, sel: str) -> Any:
    return b.find_element(By.CSS_SELECTOR, sel)


def shot(b: Any, name: str, sel: str | None = None) -> None:
    """Save a screenshot to SHOTS, ``sel`` scrolled into the middle first."""
    if sel:
        b.execute_script("arguments[0].scrollIntoView({block: 'center'})", css(b, sel))
    b.save_screenshot(str(SHOTS / name))


SECOND_WALLET = """(() => {
  const provider = { request: async () => { const e = new Error("User rejected the request."); e.code = 4001; throw e; },
                     on() {} };
  const info = { uuid: "5f2b7c1e-0000-4000-8000-7d5e57000002", name: "Second wallet", rdns: "org.example.second",
                 icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E" };
  window.addEventListener("eip6963:requestProvider", () => window.dispatchEvent(
    new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) })));
})();"""
