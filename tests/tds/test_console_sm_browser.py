"""The console in a real headless Chromium told by the gateway that the deployment is ``sm``
(``/console/config`` computed with ``TDS_CRYPTO_PROFILE=sm``): WebCrypto has no SM2, so requesting a
job from the page is refused by name (``UnsupportedInBrowser``) before anything is sealed, stored or
sent — the page never makes an X25519 parameter block for an SM2 key service. (The rest of the world
is a default-profile one: only the config is answered under ``sm``; the gateway's own refusal of a
block of another profile is tests/tds/test_console_sm.py.)

Needs Debian's chromium + chromium-driver, like tests/tds/test_console_browser.py (skipped without)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from chain.eip712 import GrantTerms
from tests.support.services import ServedApp
from tests.tds.console_world import ConsoleWorld, console_world

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ZERO = "0x" + "00" * 20
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} absent: run 'make browser'", allow_module_level=True)
pytest.importorskip("selenium", reason="selenium is a dev dependency: pip install -e '.[dev]'")

from tests.tds.console_browser import chromium_session, css, message, open_console  # noqa: E402


@pytest.fixture(scope="module")
def cw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(tmp_path_factory.mktemp("console-sm-browser")) as w:
        yield w


def sm_config(app: Any) -> Any:
    """``app``, answering ``GET /console/config`` with ``TDS_CRYPTO_PROFILE=sm`` in force."""
    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/console/config":
            return await app(scope, receive, send)
        before = os.environ.get("TDS_CRYPTO_PROFILE")
        os.environ["TDS_CRYPTO_PROFILE"] = "sm"
        try:
            await app(scope, receive, send)
        finally:
            if before is None:
                os.environ.pop("TDS_CRYPTO_PROFILE", None)
            else:
                os.environ["TDS_CRYPTO_PROFILE"] = before
    return wrapped


@pytest.fixture(scope="module")
def url(cw: ConsoleWorld) -> Iterator[str]:
    served = ServedApp(sm_config(cw.app))
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, url: str) -> Iterator[Any]:
    yield from chromium_session(tmp_path_factory)


def test_the_page_refuses_to_seal_parameters_under_sm(browser: Any, url: str, cw: ConsoleWorld):
    auth = cw.space.c["Authorizations"]
    terms = GrantTerms(cw.asset, cw.ids["consumer"].address, keccak(text="sm"), 4, 0, 0, cw.now() + 86400, 2,
                       ZERO, 10**12, ZERO)
    receipt = cw.space.send(cw.ids["provider"].account, auth.functions.grant(terms.as_tuple()))
    grant = auth.events.GrantIssued().process_receipt(receipt)[0]["args"]["grantId"]
    b = browser
    open_console(b, url, cw, "consumer")
    sent = cw.wallet.log.count("eth_sendTransaction")
    css(b, f"button.use-grant[data-grant='{grant}']").click()
    css(b, "#q-dataset").send_keys("salaries")
    css(b, "#aggs .agg-col").send_keys("salary")
    css(b, "#request-job").click()
    text = message(b, "UnsupportedInBrowser")
    assert "sm cryptography profile" in text and "tds job request" in text
    assert b.execute_script("return document.body.dataset.ready") == "true"
    assert cw.wallet.log.count("eth_sendTransaction") == sent      # nothing sent
    assert "personal_sign" not in cw.wallet.log                     # no wallet proof to store parameters
