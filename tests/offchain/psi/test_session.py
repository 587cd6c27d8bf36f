"""run_psi end to end over loopback TCP (and memory): normalised formats meet, results equal
Python set operations, the intersection reaches only the consumer, a lost peer is named."""
from __future__ import annotations

import threading
import time

import pytest

from did.errors import EnvelopeAuthError, EnvelopeNotForYou
from did.identity import Identity
from offchain.psi.channel import TcpEndpoint
from offchain.psi.errors import (
    EmptyPsiSet,
    PsiConfigError,
    PsiPeerLost,
    UnknownNormalisationRule,
)
from offchain.psi.normalize import normalize
from offchain.psi.protocol import MODES, PartyMachine, transcript_hash
from offchain.psi.session import PsiParty, open_intersection, run_psi, serve_party


@pytest.fixture(scope="module")
def ids() -> dict[str, Identity]:
    return {n: Identity.create(n) for n in ("bank", "telco", "shop", "consumer", "other")}


# the same phone numbers, three ways
BANK = ([f"138{i:08d}" for i in range(300)], ["strip"])
TELCO = ([f"+86 138-{i // 10000:04d}-{i % 10000:04d}" for i in range(100, 450)],
         ["digits_only", {"strip_prefix": "86"}, {"pad_left": {"width": 11, "char": "0"}}])
SHOP = ([f" 138{i:08d} " for i in range(50, 400, 2)] + ["", "   "], ["strip"])


def plain(*cols: tuple[list[str], list]) -> list[set[str]]:
    return [set(normalize(v, r)) - {""} for v, r in cols]


def parties(ids, *names_cols) -> list[PsiParty]:
    return [PsiParty(ids[n], list(v), list(r)) for n, (v, r) in names_cols]


def test_two_parties_over_tcp_deliver_the_intersection_to_the_consumer_only(ids):
    c = ids["consumer"]
    out = run_psi("job-7", parties(ids, ("bank", BANK), ("telco", TELCO)), "intersection", c.did, c.x25519_public)
    a, b = plain(BANK, TELCO)
    assert out.size == len(a & b) == 200
    assert out.parties == [ids["bank"].did, ids["telco"].did]
    assert out.transcript_hash == transcript_hash("job-7", out.parties, "intersection", 200)
    assert open_intersection(c, out.sealed_result, ids["bank"].did) == sorted(a & b)
    with pytest.raises(EnvelopeNotForYou):
        open_intersection(ids["other"], out.sealed_result, ids["bank"].did)
    with pytest.raises(EnvelopeAuthError):
        open_intersection(c, out.sealed_result, ids["telco"].did)


@pytest.mark.parametrize("mode", MODES)
def test_three_parties_equal_python_set_operations(ids, mode):
    c = ids["consumer"]
    out = run_psi("job-8", parties(ids, ("bank", BANK), ("telco", TELCO), ("shop", SHOP)), mode,
                  c.did, c.x25519_public, transport="memory")
    a, b, s = plain(BANK, TELCO, SHOP)
    want = {"intersection": len(a & b & s), "cardinality": len(a & b & s), "union_size": len(a | b | s),
            "difference_size": len(a - (b | s))}[mode]
    assert out.size == want
    assert (out.sealed_result is not None) == (mode == "intersection")
    if mode == "intersection":
        assert open_intersection(c, out.sealed_result, ids["bank"].did) == sorted(a & b & s)


def test_three_parties_over_tcp_with_worker_processes(ids):
    big_a = [f"id{i}" for i in range(2500)]
    big_b = [f"ID{i}" for i in range(1000, 3600)]
    big_c = [f" id{i}" for i in range(0, 3600, 2)]
    out = run_psi("job-9", [PsiParty(ids["bank"], big_a), PsiParty(ids["telco"], big_b, ["lower"]),
                            PsiParty(ids["shop"], big_c, ["strip"])], "cardinality", processes=2)
    assert out.size == len(set(big_a) & {v.lower() for v in big_b} & {v.strip() for v in big_c})
    assert out.sealed_result is None


def test_refusals_before_anything_is_sent(ids):
    c = ids["consumer"]
    with pytest.raises(EmptyPsiSet) as err:
        run_psi("j", [PsiParty(ids["bank"], ["a"]), PsiParty(ids["telco"], ["  ", ""], ["strip"])], "cardinality")
    assert err.value.party == ids["telco"].did
    with pytest.raises(UnknownNormalisationRule):
        run_psi("j", [PsiParty(ids["bank"], ["a"], ["soundex"]), PsiParty(ids["telco"], ["a"])], "cardinality")
    with pytest.raises(PsiConfigError):
        run_psi("j", [PsiParty(ids["bank"], ["a"]), PsiParty(ids["telco"], ["a"])], "intersection")
    with pytest.raises(PsiConfigError):
        run_psi("j", [PsiParty(ids["bank"], ["a"]), PsiParty(ids["bank"], ["a"])], "cardinality")
    with pytest.raises(PsiConfigError):
        run_psi("j", [PsiParty(ids["bank"], ["a"])], "cardinality", c.did, c.x25519_public)


def half_session(ids, fault):
    """The bank (leader) runs honestly over TCP; the telco connects, then ``fault(endpoint)``."""
    bank, telco = ids["bank"], ids["telco"]
    dids = [bank.did, telco.did]
    eps = [TcpEndpoint(bank, "job-x", {telco.did: telco.x25519_public}),
           TcpEndpoint(telco, "job-x", {bank.did: bank.x25519_public})]
    addresses = {e.did: e.address for e in eps}
    box: dict = {}

    def honest() -> None:
        try:
            eps[0].connect(addresses, 5)
            serve_party(PartyMachine(0, dids, "job-x", "cardinality", ["a", "b", "c"]), eps[0], timeout=1.0)
        except Exception as exc:  # noqa: BLE001 — asserted by the tests
            box["error"] = exc
        finally:
            eps[0].close()

    t = threading.Thread(target=honest)
    started = time.monotonic()
    t.start()
    eps[1].connect(addresses, 5)
    fault(eps[1])
    t.join(10)
    eps[1].close()
    return box.get("error"), time.monotonic() - started


def test_a_peer_that_disconnects_mid_protocol_is_named(ids):
    def leave_after_first_message(ep):
        assert ep.recv(5) is not None                 # the leader's blinded set arrives ...
        ep.close()                                    # ... and the telco hangs up
    error, elapsed = half_session(ids, leave_after_first_message)
    assert isinstance(error, PsiPeerLost) and error.peer == ids["telco"].did
    assert elapsed < 5


def test_a_silent_peer_is_named_after_the_timeout(ids):
    def go_silent(ep):
        ep.recv(5)
        time.sleep(1.5)
    error, elapsed = half_session(ids, go_silent)
    assert isinstance(error, PsiPeerLost) and error.peer == ids["telco"].did and "sent nothing" in str(error)
    assert elapsed < 5


def test_the_intersection_can_also_be_sealed_to_the_providers(ids):
    """An intermediate step: each provider gets the matched IDs (to select rows later), sealed
    to its own key; no consumer copy."""
    bank, telco = ids["bank"], ids["telco"]
    recipients = [(bank.did, bank.x25519_public), (telco.did, telco.x25519_public)]
    out = run_psi("job-10", parties(ids, ("bank", BANK), ("telco", TELCO)), "intersection",
                  recipients=recipients, transport="memory")
    a, b = plain(BANK, TELCO)
    assert out.sealed_result is None and set(out.sealed_for) == {bank.did, telco.did}
    for who in (bank, telco):
        assert open_intersection(who, out.sealed_for[who.did], bank.did) == sorted(a & b)
    with pytest.raises(EnvelopeNotForYou):
        open_intersection(telco, out.sealed_for[bank.did], bank.did)
    with pytest.raises(PsiConfigError):
        run_psi("job-11", parties(ids, ("bank", BANK), ("telco", TELCO)), "cardinality", recipients=recipients)
