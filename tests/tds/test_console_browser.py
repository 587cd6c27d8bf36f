"""The participant console in a real headless Chromium against the embedded chain, with an injected
EIP-1193 test wallet (tests/tds/console_wallet.*: a test fixture signing with dev keys).

A consumer applies and a provider approves; a provider signs an offer in the page and the consumer
submits it; a job is requested and paid from the page, the oracle's part done for real, and its
sealed answer opened in the page with the consumer's key file (WebCrypto) equals the plaintext;
refusals show the named error (exhausted grant, insufficient funds, wrong chain, a simulation's
revert, a cancelled offer, a wrong key-file password, a declined wallet request); rating, closing,
freezing, withdrawing, a job paid in Credits. Screenshots of the main screens go to $TDS_CONSOLE_SHOTS (docs/console/ keeps current ones).

Needs Debian's chromium + chromium-driver (``make browser``). Without them the test is skipped —
except under CI (``CI`` set), where a missing browser is a failure.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3 import Web3

from chain.accounts import dev_account
from chain.eip712 import GrantTerms
from did.sealing import open_result
from tests.support.services import ServedApp
from tests.tds.console_world import PASSWORD, ConsoleWorld, console_world

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ZERO = "0x" + "00" * 20

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI"):
        pytest.fail(f"CI needs {CHROMIUM} and {CHROMEDRIVER}: run 'make browser' (apt-get install chromium "
                    "chromium-driver)", pytrace=False)
    pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} absent: run 'make browser' to install Debian's chromium and "
                "chromium-driver", allow_module_level=True)

pytest.importorskip("selenium", reason="selenium is a dev dependency: pip install -e '.[dev]'")
from selenium.webdriver.common.by import By
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.tds.console_browser import (
    SECOND_WALLET,
    SHOTS,
    chromium_session,
    confirm,
    css,
    message,
    open_console,
    shot,
    wait,
)

STATE: dict[str, Any] = {}
CONTROL_ROLES = {"button", "textbox", "combobox", "checkbox", "spinbutton", "link", "searchbox", "radio", "listbox",
                 "slider", "tab", "menuitem", "switch"}  # ids the ordered steps hand on (the module's tests run in file order)


@pytest.fixture(scope="module")
def cw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(tmp_path_factory.mktemp("console-browser"), indexed=True) as w:
        yield w


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, url: str, plain_url: str) -> Iterator[Any]:
    # after the servers (so it quits before them: they stop without waiting on its open connections)
    yield from chromium_session(tmp_path_factory)


@pytest.fixture(scope="module")
def url(cw: ConsoleWorld) -> Iterator[str]:
    served = ServedApp(cw.app)
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def plain_url(cw: ConsoleWorld) -> Iterator[str]:
    """The same gateway without an event index: the page reads logs through the wallet."""
    served = ServedApp(cw.plain_app)
    yield served.url
    served.stop()


def test_consumer_applies_and_provider_approves(browser: Any, url: str, cw: ConsoleWorld):
    b = browser
    report = {"format": "tds-quality/1", "dataset": "salaries", "overall": "0.97", "rows": 120,
              "dimensions": {"completeness": "0.99", "validity": "0.95"}}
    good = cw.reported_asset(report)  # a forged report (502 quality-report-mismatch): test_console.py
    open_console(b, url, cw, "consumer")
    assert css(b, "body").get_attribute("data-reads") == "index"  # lists come from the gateway's event index
    # the quality report: fetched from the content store, checked against the chain, shown
    css(b, f"button.open-asset[data-asset='{good}']").click()
    wait(b, lambda d: css(d, "#quality").get_attribute("data-state") == "verified")
    shown = {dt.text: dd.text for dt, dd in zip(b.find_elements(By.CSS_SELECTOR, "#quality-facts dt"),
                                                b.find_elements(By.CSS_SELECTOR, "#quality-facts dd"))}
    assert shown["overall"] == "0.97" and shown["rows"] == "120"
    shot(b, "quality-report.png", "#quality")
    facts = css(b, "#identity-facts")
    assert facts.get_attribute("data-did") == cw.ids["consumer"].did
    assert facts.get_attribute("data-roles") == "CONSUMER"
    wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, f"#assets tr[data-asset='{cw.asset}']"))
    b.save_screenshot(str(SHOTS / "catalog.png"))
    # search: no confidential asset, then the sensitive one
    css(b, "#q-class option[value=confidential]").click()
    css(b, "#search button[type=submit]").click()
    assert css(b, "#assets").get_attribute("data-shown") == "0"
    css(b, "#q-class option[value=sensitive]").click()
    css(b, "#search button[type=submit]").click()
    assert css(b, "#assets").get_attribute("data-shown") == "1"  # the reported asset is internal
    css(b, f"button.open-asset[data-asset='{cw.asset}']").click()
    wait(b, lambda d: d.find_elements(By.ID, "apply-form"))
    assert "0x" + keccak(text="q").hex() in css(b, "#asset-facts").text  # the quality report's hash
    # its manifest is not in the store: the page says the report cannot be read, by name
    assert css(b, "#quality").get_attribute("data-state") == "unavailable"
    assert css(b, "#quality .warning").text.startswith("QualityReportUnavailable:")
    css(b, "#apply-purpose").send_keys("cardiology study 2026")
    css(b, "#apply-form button[type=submit]").click()
    shown = confirm(b, "apply-confirm.png")
    assert shown["Purpose"] == "cardiology study 2026" and shown["Operations"] == "HOM_AGG"
    text = message(b, "ApplicationSubmitted")
    app_id = int(text.split()[1])
    application = cw.space.c["Authorizations"].functions.applicationOf(app_id).call()
    assert application[0] == cw.ids["consumer"].address and application[8] == keccak(text="cardiology study 2026")

    open_console(b, url, cw, "provider")
    css(b, "#tab-provider").click()
    row = css(b, f"tr[data-application='{app_id}']")
    assert row.get_attribute("data-status") == "pending"
    shot(b, "provider-applications.png", "#apps")
    row.find_element(By.CSS_SELECTOR, "button.approve").click()
    confirm(b)
    text = message(b, "ApplicationApproved")
    grant = int(text.rsplit(" ", 1)[1])
    g = cw.space.c["Authorizations"].functions.grantOf(grant).call()
    assert g[0] == cw.ids["consumer"].address and g[4] == 1  # the consumer's, active
    assert css(b, f"tr[data-application='{app_id}']").get_attribute("data-status") == "approved"


def test_provider_signs_an_offer_and_consumer_submits_it(browser: Any, url: str, cw: ConsoleWorld):
    b = browser
    open_console(b, url, cw, "provider")
    css(b, "#tab-provider").click()
    css(b, "#offer-consumer").send_keys(cw.ids["consumer"].address)
    css(b, "#offer-purpose").send_keys("salary statistics")
    css(b, "#offer-ops input[value='2']").click()  # OPE_RANGE beside the default HOM_AGG
    uses = css(b, "#offer-uses")
    uses.clear()
    uses.send_keys("1")
    before = cw.wallet.log.count("eth_signTypedData_v4")
    css(b, "#offer-form button[type=submit]").click()
    shown = confirm(b, "offer-confirm.png")  # what the offer exposes, before the wallet is asked
    assert shown["Operations exposed"] == "OPE_RANGE | HOM_AGG" and shown["Uses"] == "1"
    assert shown["Consumer"] == cw.ids["consumer"].address
    message(b, "OfferSigned")
    assert cw.wallet.log.count("eth_signTypedData_v4") == before + 1
    offer = css(b, "#offer-out").get_attribute("value")
    shot(b, "offer-signed.png", "#offer-out")

    open_console(b, url, cw, "consumer")
    b.execute_script("document.getElementById('offer-json').value = arguments[0]", offer)
    css(b, "#submit-offer-form button[type=submit]").click()
    confirm(b)
    grant = int(message(b, "GrantIssued").split()[1])
    g = cw.space.c["Authorizations"].functions.grantOf(grant).call()
    assert g[0] == cw.ids["consumer"].address and g[2] == 1 and g[3] == 6  # one use, OPE_RANGE | HOM_AGG
    STATE["offer_grant"] = grant


def test_job_paid_from_the_page_and_answer_opened_in_it(browser: Any, url: str, cw: ConsoleWorld,
                                                        tmp_path_factory: pytest.TempPathFactory):
    b = browser
    grant = STATE["offer_grant"]
    open_console(b, url, cw, "consumer")
    css(b, f"button.use-grant[data-grant='{grant}']").click()
    css(b, "#q-dataset").send_keys("salaries")
    css(b, "#aggs .agg-col").send_keys("salary")
    css(b, "#filters .flt-kind option[value=range]").click()
    css(b, "#filters .flt-col").send_keys("age")
    css(b, "#filters .flt-lo").send_keys("30")
    css(b, "#filters .flt-hi").send_keys("60")
    earned = cw.space.c["Jobs"].functions.balanceOf(cw.ids["provider"].address, ZERO).call()
    css(b, "#request-job").click()
    shown = confirm(b, "job-confirm.png")
    assert shown["Operations"] == "OPE_RANGE | HOM_AGG" and shown["Price"].startswith("0.001")
    assert shown["Uses left after this"] == "0"
    message(b, "JobRequested")
    job = int(css(b, "section.job").get_attribute("data-job"))
    STATE["job"] = job
    query = {"dataset": "salaries", "aggregates": [["sum", "salary"]], "where": [["range", "age", 30, 60]],
             "group_by": None, "join": None}
    assert cw.query_of(job) == query  # sealed in the page to the provider's key, opened by the provider's key
    payload = {"job": job, "answer": {"columns": ["sum(salary)"], "rows": [[912345]]}}
    sealed = cw.complete(job, payload)
    wait(b, lambda d: css(d, "section.job").get_attribute("data-status") == "completed")
    css(b, "section.job input.key-file").send_keys(str(cw.key_file))
    css(b, "section.job input.key-password").send_keys("not the password")
    css(b, "section.job form.open-result button[type=submit]").click()
    assert message(b, "WrongPassword").startswith("WrongPassword: the password does not open this key file")
    assert not b.find_elements(By.CSS_SELECTOR, "pre.answer")
    css(b, "section.job input.key-password").clear()
    css(b, "section.job input.key-password").send_keys(PASSWORD)
    css(b, "section.job form.open-result button[type=submit]").click()
    message(b, "AnswerOpened", timeout=60)
    assert json.loads(css(b, "pre.answer").text) == payload
    shot(b, "job-answer.png", "section.job")
    # or downloaded for `tds job result --sealed`: the very bytes the chain committed to, which the
    # consumer's identity opens outside the browser too
    downloads = tmp_path_factory.mktemp("downloads")
    b.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    css(b, "section.job button.download").click()
    target = downloads / f"job-{job}.sealed.json"
    wait(b, lambda d: target.exists() and target.read_bytes() == sealed)
    assert open_result(cw.ids["consumer"], target.read_bytes(), cw.ids["provider"].did, job_id=job) == payload
    # the provider's earnings grew by its share of the price
    assert cw.space.c["Jobs"].functions.balanceOf(cw.ids["provider"].address, ZERO).call() > earned
    # every transaction's state was visible: the request was simulated, sent and mined
    states = {li.find_element(By.CSS_SELECTOR, ".what").get_attribute("textContent"): li.get_attribute("data-state")
              for li in b.find_elements(By.CSS_SELECTOR, "#activity li")}
    assert states[f"Request a job on grant {grant}"] == "mined"
    assert states["Store sealed job parameters"] == "stored"
    # rate the asset (the grant has a completed job now)
    css(b, "#rate-score").clear()
    css(b, "#rate-score").send_keys("4")
    css(b, "#rate-form button[type=submit]").click()
    confirm(b)
    message(b, "AssetRated")
    assert cw.space.c["QualityRatings"].functions.ratingOf(cw.asset).call()[:2] == [1, 4]
    css(b, "#tab-activity").click()
    shot(b, "activity.png")


def test_collaboration_steps_shown_and_output_opened_in_the_page(browser: Any, url: str, cw: ConsoleWorld):
    """The consumer sees the collaborations it started with every step's state, and opens an output
    step's sealed result in the page with its key file, as a job's answer."""
    b = browser
    collab, sealed = cw.collaboration({"mode": "cardinality", "size": 5})
    open_console(b, url, cw, "consumer")
    row = css(b, f"#collabs-table tr[data-collab='{collab}']")
    assert row.get_attribute("data-status") == "completed"
    assert row.find_element(By.CSS_SELECTOR, "li[data-step='0']").get_attribute("data-status") == "completed"
    row.find_element(By.CSS_SELECTOR, "button.open-output").click()
    css(b, "#collab-output input.key-file").send_keys(str(cw.key_file))
    css(b, "#collab-output input.key-password").send_keys(PASSWORD)
    css(b, "#collab-output form button[type=submit]").click()
    message(b, "AnswerOpened", timeout=60)
    opened = json.loads(css(b, "#collab-output pre.answer").text)
    assert opened["size"] == 5 and opened["mode"] == "cardinality" and opened["format"] == "tds-collab-result/1"
    shot(b, "collaboration-output.png", "#collab-output")


def test_refusals_show_the_named_error(browser: Any, url: str, cw: ConsoleWorld):
    b = browser
    # exhausted grant: its one use is spent; refused before the wallet is asked
    open_console(b, url, cw, "consumer")
    # (after a reload the job is listed, and followed again on demand)
    row = css(b, f"#jobs-table tr[data-job='{STATE['job']}']")
    assert row.get_attribute("data-status") == "completed" and not row.find_elements(By.CSS_SELECTOR, "button.reclaim")
    row.find_element(By.CSS_SELECTOR, "button.follow").click()
    wait(b, lambda d: css(d, f"section.job[data-job='{STATE['job']}']").get_attribute("data-status") == "completed")
    css(b, f"button.use-grant[data-grant='{STATE['offer_grant']}']").click()
    css(b, "#q-dataset").send_keys("salaries")
    css(b, "#aggs .agg-col").send_keys("salary")
    css(b, "#request-job").click()
    assert message(b, "UsesExhausted").startswith("UsesExhausted: this grant has no uses left: 1 of 1 used")
    shot(b, "refusal-exhausted.png", "#job-form")
    # done with it: close the grant with a destruction proof
    css(b, "#close-proof").send_keys("answers deleted from every device on 2026-12-02")
    css(b, "#close-form button[type=submit]").click()
    shown = confirm(b)
    assert shown["Destruction proof hash"] == "0x" + keccak(text="answers deleted from every device on 2026-12-02").hex()
    message(b, "GrantClosed")
    assert cw.space.c["Authorizations"].functions.grantOf(STATE['offer_grant']).call()[4] == 3  # closed
    # insufficient funds: a grant priced above the consumer's balance
    sent = cw.wallet.log.count("eth_sendTransaction")
    auth = cw.space.c["Authorizations"]
    terms = GrantTerms(cw.asset, cw.ids["consumer"].address, keccak(text="dear"), 4, 0, 0, cw.now() + 86400, 2,
                       ZERO, 10**25, ZERO)
    receipt = cw.space.send(cw.ids["provider"].account, auth.functions.grant(terms.as_tuple()))
    dear = auth.events.GrantIssued().process_receipt(receipt)[0]["args"]["grantId"]
    open_console(b, url, cw, "consumer")
    css(b, f"button.use-grant[data-grant='{dear}']").click()
    css(b, "#q-dataset").send_keys("salaries")
    css(b, "#aggs .agg-col").send_keys("salary")
    css(b, "#request-job").click()
    assert message(b, "InsufficientFunds").startswith("InsufficientFunds: the job costs 10000000.0,")
    # a simulation that reverts (eth_call) shows the contract's error by name: no job completed yet
    css(b, "#rate-form button[type=submit]").click()
    assert message(b, "NoCompletedJob").startswith("NoCompletedJob: rate a grant only after one of its jobs")
    assert cw.wallet.log.count("eth_sendTransaction") == sent  # the wallet was never asked to send
    # wrong chain: named, a switch offered; after switching the console is ready
    cw.wallet.reported_chain = 1
    open_console(b, url, cw, "consumer", ready=False)
    wait(b, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-chain") == "wrong")
    assert message(b, "WrongChain").startswith(f"WrongChain: the wallet is on chain 1, the data space on chain "
                                               f"{cw.w3.eth.chain_id}")
    shot(b, "wrong-chain.png")
    css(b, "#switch-chain").click()
    wait(b, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert cw.wallet.reported_chain is None


def test_keyboard_reaches_the_tabs_and_the_layout_fits(browser: Any, url: str, cw: ConsoleWorld):
    b = browser
    open_console(b, url, cw, "provider")
    css(b, "#tab-consumer").send_keys(Keys.ARROW_RIGHT)
    assert b.switch_to.active_element.get_attribute("id") == "tab-provider"
    assert css(b, "#panel-provider").is_displayed() and not css(b, "#panel-consumer").is_displayed()
    unlabeled = b.execute_script("""return [...document.querySelectorAll('input, select, textarea')].filter(
        (i) => !(i.labels && i.labels.length) && !i.getAttribute('aria-label')).map((i) => i.outerHTML)""")
    assert unlabeled == []
    # every control of both role panels has an accessible name in the tree Chromium hands screen
    # readers, and Tab reaches every one of them
    for panel in ("tab-consumer", "tab-provider"):
        css(b, f"#{panel}").click()
        if panel == "tab-consumer":  # open an asset's details and a grant's job form: their controls too
            css(b, "button.open-asset").click()
            wait(b, lambda d: d.find_elements(By.ID, "apply-form"))
        tree = b.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
        controls = [n for n in tree if not n.get("ignored") and n.get("role", {}).get("value") in CONTROL_ROLES]
        assert len(controls) > 10
        nameless = [n["role"]["value"] for n in controls if not str(n.get("name", {}).get("value") or "").strip()]
        assert nameless == [], nameless
        # real Tab presses in one batch; a focusin listener records where each one lands
        count = b.execute_script("""document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);
            window.__controls = [...document.querySelectorAll('button, input, select, textarea, a[href]')].filter(
              (e) => e.checkVisibility() && !e.disabled && e.tabIndex !== -1);
            window.__reached = new Set(); document.addEventListener('focusin', (e) => window.__reached.add(e.target));
            return window.__controls.length""")
        ActionChains(b).send_keys(Keys.TAB * (count + 8)).perform()
        missed = b.execute_script("return window.__controls.filter((e) => !window.__reached.has(e)).map((e) => e.outerHTML.slice(0, 120))")
        assert missed == [], f"Tab does not reach: {missed}"
    # the confirmation dialog: focus on its first button, Escape cancels, focus back on the opener
    css(b, "#offer-consumer").send_keys(cw.ids["consumer"].address)
    css(b, "#offer-purpose").send_keys("a11y check")
    opener = css(b, "#offer-form button[type=submit]")
    opener.click()
    wait(b, lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    assert b.switch_to.active_element.get_attribute("id") == "confirm-ok"
    b.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(b, lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is None)
    assert b.switch_to.active_element == opener
    assert css(b, "#tx-status").get_attribute("textContent") == "Sign this offer? cancelled"  # announced politely
    assert css(b, "#tx-status").get_attribute("aria-live") == "polite"
    refused = [e["message"] for e in b.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []  # the page needs nothing its 'self'-only policy forbids
    width = b.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal overflow at 1280x800: {width}"
    shot(b, "provider.png")


def test_provider_freezes_a_grant_and_withdraws_earnings(browser: Any, url: str, cw: ConsoleWorld):
    b = browser
    open_console(b, url, cw, "provider")
    css(b, "#tab-provider").click()
    earned = cw.space.c["Jobs"].functions.balanceOf(cw.ids["provider"].address, ZERO).call()
    assert earned > 0 and css(b, "#earned").text == str(Web3.from_wei(earned, "ether"))
    shot(b, "provider-earnings.png", "#earnings")
    css(b, "#withdraw").click()
    confirm(b)
    message(b, "Withdrawn")
    assert cw.space.c["Jobs"].functions.balanceOf(cw.ids["provider"].address, ZERO).call() == 0
    active = [r for r in b.find_elements(By.CSS_SELECTOR, "#provider-grants tbody tr")
              if r.find_elements(By.XPATH, ".//button[starts-with(., 'Freeze')]")]
    grant = int(active[0].get_attribute("data-grant"))
    active[0].find_element(By.XPATH, ".//button[starts-with(., 'Freeze')]").click()
    confirm(b)
    message(b, "GrantFrozen")
    assert cw.space.c["Authorizations"].functions.grantOf(grant).call()[5] == 1  # frozen by the holder
    css(b, f"#provider-grants tr[data-grant='{grant}']").find_element(By.XPATH, ".//button[starts-with(., 'Unfreeze')]").click()
    confirm(b)
    message(b, "GrantUnfrozen")
    assert cw.space.c["Authorizations"].functions.grantOf(grant).call()[5] == 0
    # an offer signed, then cancelled on chain: the consumer's submission is refused by name
    css(b, "#offer-consumer").send_keys(cw.ids["consumer"].address)
    css(b, "#offer-purpose").send_keys("withdrawn offer")
    css(b, "#offer-form button[type=submit]").click()
    confirm(b)
    message(b, "OfferSigned")
    offer = css(b, "#offer-out").get_attribute("value")
    css(b, "#cancel-offer").click()
    shown = confirm(b)
    message(b, "OfferCancelled")
    assert shown["Nonce"] == str(json.loads(offer)["nonce"])
    open_console(b, url, cw, "consumer")
    b.execute_script("document.getElementById('offer-json').value = arguments[0]", offer)
    sent = cw.wallet.log.count("eth_sendTransaction")
    css(b, "#submit-offer-form button[type=submit]").click()
    text = message(b, "InvalidAccountNonce")
    assert text.startswith("InvalidAccountNonce: the offer was cancelled or already used") and cw.wallet.log.count("eth_sendTransaction") == sent


def test_job_paid_in_credits_and_earnings_withdrawn(browser: Any, plain_url: str, cw: ConsoleWorld):
    """A grant priced in Credits (ERC-20): the page gives the allowance first (shown in the same
    confirmation), then requests; the provider withdraws its credits from the page. This gateway
    runs without an event index: the page reads the logs through the wallet instead."""
    b, url = browser, plain_url
    credits, jobs, auth = cw.space.c["Credits"], cw.space.c["Jobs"], cw.space.c["Authorizations"]
    regulator = dev_account(1)
    cw.space.send(regulator, credits.functions.mint(cw.ids["consumer"].address, 50 * 10**18, keccak(text="test")))
    terms = GrantTerms(cw.asset, cw.ids["consumer"].address, keccak(text="credits"), 4, 0, 0, cw.now() + 86400, 1,
                       credits.address, 5 * 10**18, ZERO)
    receipt = cw.space.send(cw.ids["provider"].account, auth.functions.grant(terms.as_tuple()))
    grant = auth.events.GrantIssued().process_receipt(receipt)[0]["args"]["grantId"]
    open_console(b, url, cw, "consumer")
    assert css(b, "body").get_attribute("data-reads") == "wallet"
    css(b, f"button.use-grant[data-grant='{grant}']").click()
    css(b, "#q-dataset").send_keys("salaries")
    css(b, "#aggs .agg-col").send_keys("salary")
    css(b, "#request-job").click()
    shown = confirm(b)
    assert shown["Price"] == "5.0 credits"
    assert shown["Credits allowance first"] == f"Jobs {jobs.address} may take 5.0 credits"
    message(b, "JobRequested")
    job = int(css(b, "section.job").get_attribute("data-job"))
    assert credits.functions.balanceOf(cw.ids["consumer"].address).call() == 45 * 10**18
    assert jobs.functions.jobOf(job).call()[0][1] == 5 * 10**18  # escrowed
    cw.complete(job, {"job": job, "answer": 1})
    open_console(b, url, cw, "provider")
    css(b, "#tab-provider").click()
    owed = jobs.functions.balanceOf(cw.ids["provider"].address, credits.address).call()
    assert owed == 4 * 10**18 and css(b, "#earned-credits").text == "4.0"  # 80 % of 5: provider + algorithm shares
    before = credits.functions.balanceOf(cw.ids["provider"].address).call()
    css(b, "#withdraw-credits").click()
    confirm(b)
    message(b, "Withdrawn")
    assert credits.functions.balanceOf(cw.ids["provider"].address).call() == before + owed


def test_several_wallets_are_offered_and_a_refusal_is_named(browser: Any, url: str, cw: ConsoleWorld):
    """EIP-6963: every announced wallet gets its own button; declining in a wallet is named, not a crash."""
    b = browser
    added = b.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SECOND_WALLET})
    try:
        b.get(url + "/console")
        wait(b, lambda d: len(d.find_elements(By.CSS_SELECTOR, "button.connect")) == 2)
        names = [e.text for e in b.find_elements(By.CSS_SELECTOR, "button.connect")]
        assert names == ["Connect TDS test wallet", "Connect Second wallet"]
        css(b, "button.connect[data-wallet='org.example.second']").click()
        assert message(b, "UserRejected") == "you declined the request in your wallet"
        assert css(b, "body").get_attribute("data-connected") is None
    finally:
        b.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})
