"""The participant commands of ``tds`` on a real chain: the whole lifecycle from the command line
(register → an offer signed by an external wallet → job → oracle → opened answer → rating →
withdrawal → destruction proof → offline), and each refusal as a one-line, specific message.

One anvil and one world per module (``tds.sandbox.build_world``); the tests run in order
and share the chain. The oracle runs in-process, as in the end-to-end tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from did.keystore import encrypt_eth_key
from chain.accounts import dev_account
from chain.node import EmbeddedNode, free_port
from tds.cli import cli
from tds.cli.refusals import (BadInput, BadSignature, GrantExpired, InsufficientFunds, NoDeployment, NotYours,
                                 ParticipantError,
                                 Refused, SignedGrantExpired, StateRefused, UnknownAsset, UnknownGrant, WalletError,
                                 advise, parse_description)
from tds.cli.terms import parse_amount, parse_ops
from tds.cli.typed_data import parse_offer, parse_signature, to_wallet_json
from tds.cli.wallet import dev_key
from chain.config import load_settings
from chain.eip712 import GrantTerms, grant_typed_data
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from tds.sandbox import World, build_world
from chain import Member

PASSWORD = "participant-test-password"
PRICE = 10**15
QUERY = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 500]]}


@dataclass
class Env:
    world: World
    home: Path
    vars: dict[str, str | None]
    provider_keystore: Path
    rpc_url: str
    state: dict[str, Any]

    def run(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        return CliRunner().invoke(cli, [str(a) for a in args], env={**self.vars, **(env or {})})

    def ok(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        r = self.run(*args, env=env)
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def refused(self, kind: type, needle: str, *args: str, env: dict[str, str | None] | None = None) -> str:
        r = self.run(*args, env=env)
        assert isinstance(r.exception, kind), (args, r.output, repr(r.exception))
        assert needle in str(r.exception), (needle, str(r.exception))
        return str(r.exception)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-participants")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    info = node.up(fresh=True)
    try:
        world = build_world(settings, settings.home, rows=60)
        world.identities["consumer"].save(settings.home / "identities", PASSWORD, scrypt_n=2**10)
        keystore = tmp / "provider-keystore.json"
        keystore.write_text(json.dumps(encrypt_eth_key(world.provider.account, PASSWORD, scrypt_n=2**10)))
        variables = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": info.url, "TDS_CHAIN_ID": None,
                     "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_IPFS_API": None,
                     "TDS_PROJECT_ROOT": str(settings.project_root), "TDS_KEYSTORE_PASSWORD": PASSWORD}
        yield Env(world, settings.home, variables, keystore, info.url, {})
    finally:
        node.down(save=False)


def _plain_sum_count(rows: list[list[Any]], lo: int, hi: int) -> list[int]:
    sel = [a for _, _, a in rows if lo <= a <= hi]
    return [sum(sel), len(sel)]


# --- pure parts ------------------------------------------------------------------------------------
def test_terms_parsing():
    assert parse_ops("DET_EQ,HOM_AGG") == DET_EQ | HOM_AGG
    assert parse_ops("eq|range|sum") == DET_EQ | OPE_RANGE | HOM_AGG
    assert parse_ops("5") == 5
    for bad in ("", "teleport", "200"):
        with pytest.raises(BadInput):
            parse_ops(bad)
    assert parse_amount("0.01ether") == 10**16 and parse_amount("5gwei") == 5 * 10**9 and parse_amount("7") == 7
    for bad in ("-1", "0.5", "lots", str(2**96)):
        with pytest.raises(BadInput):
            parse_amount(bad)


def test_typed_data_round_trip_and_signature_checks():
    terms = GrantTerms(3, dev_account(4).address, keccak(text="p"), 7, 0, 0, 2_000_000_000, 5, "0x" + "00" * 20,
                       PRICE, "0x" + "00" * 20)
    data = grant_typed_data(terms, 12345 << 64, 1_900_000_000, 31337, dev_account(9).address)
    exported = json.loads(json.dumps(to_wallet_json(data)))
    assert exported["message"]["nonce"] == str(12345 << 64)  # beyond 2^53: a string, as wallets want
    offer, sig = parse_offer(exported)
    assert sig is None and offer.terms == terms and offer.nonce == 12345 << 64
    signature = Account.sign_message(encode_typed_data(full_message=exported), dev_account(3).key).signature
    assert offer.recover(bytes(signature)) == dev_account(3).address
    for bad, needle in [("1234", "expected 0x"), ("0x12zz", "not hexadecimal"), ("0x" + "00" * 64, "64 bytes")]:
        with pytest.raises(BadSignature, match=needle):
            parse_signature(bad)
    with pytest.raises(BadInput, match="primaryType 'Grant'"):
        parse_offer({"types": {}, "message": {}})
    exported["message"]["purposeHash"] = "0x12"
    with pytest.raises(BadInput, match="purposeHash"):
        parse_offer(exported)


def test_revert_advice():
    assert parse_description("GrantExpired(grantId=3, expiry=100, nowTs=200)") == (
        "GrantExpired", {"grantId": "3", "expiry": "100", "nowTs": "200"})
    r = advise("UsesExhausted(grantId=3, uses=5, maxUses=5)")
    assert isinstance(r, Refused) and r.error == "UsesExhausted" and "apply for a new grant" in str(r)
    assert "frozen by a regulator" in str(advise("GrantIsFrozen(grantId=1, frozenBy=3)"))
    assert "Mystery(x=1)" in str(advise("Mystery(x=1)"))
    with pytest.raises(WalletError, match="refused on chain 1"):
        dev_key(0, 1)


# --- the lifecycle ---------------------------------------------------------------------------------
def test_full_participant_lifecycle(env: Env, tmp_path: Path):
    w = env.world
    catalog = env.json("catalog")
    assert [a["assetId"] for a in catalog] == [1, 2] and catalog[0]["holder"] == w.provider.address
    manifest_cid = catalog[0]["contentCid"]

    # the provider registers the sales dataset again from its manifest, signing from its keystore
    env.refused(BadInput, "no quality-report hash", "asset", "register", manifest_cid, "--keystore",
                env.provider_keystore)  # the sandbox's datasets were not scored
    reg = env.json("asset", "register", manifest_cid, "--template", "1", "--quality-hash",
                   "0x" + keccak(text="quality").hex(), "--min-quality", "0", "--keystore", env.provider_keystore)
    asset = reg["assetId"]
    assert asset == 3 and reg["dataset"] == w.sales_id and reg["classification"] == "internal"
    w.key_service.register_asset(asset, {w.sales_id})
    shown = env.json("asset", "show", asset)
    assert shown["state"] == "active" and shown["holder"] == w.provider.address
    assert shown["contentCid"] == manifest_cid

    # an offer exported for an external wallet, signed there, submitted by the consumer
    offer = tmp_path / "offer.json"
    env.ok("grant", "sign", asset, "--consumer", w.consumer.address, "--purpose", "cli study",
           "--ops", "DET_EQ,OPE_RANGE,HOM_AGG", "--max-uses", "5", "--price", str(PRICE), "--export-typed-data",
           "--out", offer)
    typed = json.loads(offer.read_text())
    assert typed["primaryType"] == "Grant" and typed["domain"]["chainId"] == 31337
    signature = "0x" + bytes(Account.sign_message(encode_typed_data(full_message=typed),
                                                  w.provider.account.key).signature).hex()
    submitted = env.json("grant", "submit", offer, "--signature", signature, "--identity", "consumer")
    grant = submitted["grantId"]
    assert submitted["provider"] == w.provider.address and submitted["consumer"] == w.consumer.address
    env.refused(StateRefused, "already submitted", "grant", "submit", offer, "--signature", signature,
                "--identity", "consumer")
    g = env.json("grant", "show", grant)
    assert g["assetId"] == asset and g["uses"] == 0 and g["usableNow"] is True
    env.state.update(asset=asset, grant=grant, offer=offer, signature=signature)

    # a paid job; the oracle (in-process) computes it; the consumer opens the answer
    req = env.json("job", "request", grant, "--query", json.dumps(QUERY), "--identity", "consumer")
    job = req["jobId"]
    assert req["status"] == "requested" and req["amount"] == str(PRICE)
    runner = w.runner(tmp_path / "journal.sqlite")
    runner.run_once()
    assert runner.stats.posted == 1
    assert "completed" in env.ok("job", "wait", job, "--timeout", "10").stdout
    status = env.json("job", "status", job)
    assert status["status"] == "completed" and status["result"]["cid"]
    out = tmp_path / "answer.json"
    result = env.json("job", "result", job, "--identity", "consumer", "--out", out)
    assert result["sealedBy"] == w.identities["provider"].did
    assert [int(v) for v in result["answer"]["rows"][0][:2]] == _plain_sum_count(w.sales_rows, 100, 500)
    assert json.loads(out.read_text())["answer"] == result["answer"]
    text = env.ok("job", "result", job, "--identity", "consumer").stdout
    assert "hash verified" in text
    # a sealed answer downloaded from the participant console opens the same way; altered bytes do not
    sealed_file = tmp_path / f"job-{job}.sealed.json"
    sealed_file.write_bytes(w.store.cat(status["result"]["cid"]))
    assert env.json("job", "result", job, "--identity", "consumer", "--sealed", sealed_file)["answer"] == result["answer"]
    sealed_file.write_bytes(sealed_file.read_bytes().replace(b'"ciphertext":"', b'"ciphertext":"A'))
    env.refused(ParticipantError, "do not match the result hash", "job", "result", job, "--identity", "consumer",
                "--sealed", sealed_file)

    # a second job, requested with --wait while the oracle follows the chain in a thread
    stop = threading.Event()
    loop = threading.Thread(target=lambda: runner.run_forever(idle=0.02, stop=stop.is_set), daemon=True)
    loop.start()
    try:
        waited = env.json("job", "request", grant, "--query", json.dumps({"aggregates": [["count"]]}),
                          "--identity", "consumer", "--wait", "--timeout", "30")
    finally:
        stop.set()
        loop.join(timeout=10)
    assert waited["status"] == "completed"

    # rate, withdraw, destroy, offline
    assert "rated 4/5" in env.ok("rate", grant, "4", "--identity", "consumer").stdout
    env.refused(StateRefused, "already rated", "rate", grant, "5", "--identity", "consumer")
    before = env.json("earnings", "balance", w.provider.address)["balances"]["native"]
    assert int(before) >= 2 * PRICE * 7000 // 10000
    drawn = env.json("earnings", "withdraw", "--keystore", env.provider_keystore)
    assert drawn["amount"] == before
    assert env.json("earnings", "balance", "--keystore", env.provider_keystore)["balances"]["native"] == "0"
    env.refused(StateRefused, "nothing to withdraw", "earnings", "withdraw", "--keystore", env.provider_keystore)

    closed = env.json("asset", "destroy", grant, "--identity", "consumer")
    proof = Path(closed["proof"])
    assert proof.exists() and "0x" + keccak(proof.read_bytes()).hex() == closed["proofHash"]
    ev = w.space.c["Authorizations"].events.GrantClosed().get_logs(from_block=0, argument_filters={"grantId": grant})
    assert "0x" + bytes(ev[0]["args"]["destructionProofHash"]).hex() == closed["proofHash"]
    assert env.json("grant", "show", grant)["status"] == "closed"
    assert "offline" in env.ok("asset", "offline", asset, "--keystore", env.provider_keystore).stdout
    assert env.json("asset", "show", asset)["state"] == "offline"
    assert [a["assetId"] for a in env.json("catalog", "--state", "offline")] == [asset]


def test_apply_approve_wallet_signed_offer_revoke_freeze(env: Env, tmp_path: Path):
    w = env.world
    app = env.json("grant", "apply", "1", "--purpose", "apply study", "--ops", "HOM_AGG", "--max-uses", "2",
                   "--identity", "consumer")
    env.refused(NotYours, "not yours", "grant", "approve", app["applicationId"], "--price", "1000",
                "--identity", "consumer")
    approved = env.json("grant", "approve", app["applicationId"], "--price", "0.001ether",
                        "--keystore", env.provider_keystore)
    assert env.json("grant", "show", approved["grantId"])["pricePerUse"] == str(PRICE)
    env.refused(StateRefused, "already approved", "grant", "approve", app["applicationId"], "--price", "1",
                "--keystore", env.provider_keystore)

    # an offer signed here from the provider's keystore, submitted as a file with its signature
    signed = tmp_path / "signed.json"
    env.ok("grant", "sign", "1", "--consumer", w.consumer.address, "--purpose", "keystore-signed",
           "--ops", "HOM_AGG", "--price", "0", "--keystore", env.provider_keystore, "--out", signed)
    assert json.loads(signed.read_text())["signer"] == w.provider.address
    grant = env.json("grant", "submit", signed, "--identity", "consumer")["grantId"]

    # freeze by the regulator (dev account 1); the consumer's job is refused; a stranger cannot freeze
    env.ok("grant", "freeze", grant, "--reason-code", "42", "--dev-account", "1")
    env.refused(StateRefused, "frozen by a regulator", "job", "request", grant, "--query", json.dumps(QUERY),
                "--identity", "consumer")
    env.refused(Refused, "may not freeze", "grant", "freeze", grant, "--dev-account", "8")
    env.refused(Refused, "held by a regulator", "grant", "unfreeze", grant, "--keystore", env.provider_keystore)
    env.ok("grant", "unfreeze", grant, "--dev-account", "1")
    env.refused(NotYours, "not yours", "grant", "revoke", grant, "--identity", "consumer")
    env.ok("grant", "revoke", grant, "--reason", "no longer offered", "--keystore", env.provider_keystore)
    env.refused(StateRefused, "revoked", "job", "request", grant, "--query", json.dumps(QUERY),
                "--identity", "consumer")


def test_refusals(env: Env, tmp_path: Path):
    w = env.world
    q = json.dumps(QUERY)
    env.refused(UnknownAsset, "asset 99 does not exist", "asset", "show", "99")
    env.refused(UnknownGrant, "grant 77 does not exist", "grant", "show", "77")
    env.refused(NotYours, "grant 1 is not yours", "job", "request", "1", "--query", q, "--dev-account", "8")
    env.refused(InsufficientFunds, "--value 1 is not that", "job", "request", "1", "--query", q, "--value", "1",
                "--identity", "consumer")
    env.refused(BadInput, "not JSON", "job", "request", "1", "--query", "{nope", "--identity", "consumer")
    env.refused(BadInput, "does not cover", "job", "request", "1", "--query", q, "--ops", "HOM_AGG",
                "--identity", "consumer")
    env.refused(WalletError, "wrong password", "job", "request", "1", "--query", q, "--identity", "consumer",
                env={"TDS_KEYSTORE_PASSWORD": "not-the-password"})
    env.refused(WalletError, "choose a wallet", "earnings", "withdraw")
    env.refused(StateRefused, "has not been used yet", "rate", "1", "3", "--identity", "consumer")
    env.refused(NoDeployment, "run 'tds deploy'", "catalog", env={"TDS_DEPLOYMENT": str(tmp_path / "none.json")})
    env.refused(NotYours, "asset 1 is not yours", "asset", "offline", "1", "--identity", "consumer")

    # an account with gas money but not the price cannot pay for a job
    broke = Account.create()
    w.space.w3.eth.send_transaction({"from": dev_account(9).address, "to": broke.address, "value": 6 * 10**14})
    w.space.bind_identity(Member("broke", broke, "did:key:z6MkBroke"), b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    w.space.grant_role(w.operator, Member("broke", broke, "did:key:z6MkBroke"), "CONSUMER", keccak(text="vc:broke"))
    broke_keystore = tmp_path / "broke.json"
    broke_keystore.write_text(json.dumps(encrypt_eth_key(broke, PASSWORD, scrypt_n=2**10)))
    offer = tmp_path / "broke-offer.json"
    env.ok("grant", "sign", "1", "--consumer", broke.address, "--purpose", "broke", "--ops", "HOM_AGG",
           "--price", str(PRICE), "--keystore", env.provider_keystore, "--out", offer)
    broke_grant = env.json("grant", "submit", offer, "--keystore", env.provider_keystore)["grantId"]  # anyone submits
    env.refused(InsufficientFunds, "insufficient funds", "job", "request", broke_grant, "--query",
                json.dumps({"aggregates": [["count"]]}), "--keystore", broke_keystore)

    # a job the oracle fails: 'wait' says why and that the payment was refunded
    bad = env.json("job", "request", "1", "--query", json.dumps({"aggregates": [["sum", "nope"]]}),
                   "--identity", "consumer")["jobId"]
    w.runner(tmp_path / "journal.sqlite").run_once()
    env.refused(StateRefused, "refunded", "job", "wait", bad, "--timeout", "5")
    env.refused(StateRefused, "no result", "job", "result", bad, "--identity", "consumer")

    # signatures: malformed, or by someone other than the holder
    export = tmp_path / "export.json"
    env.ok("grant", "sign", "1", "--consumer", w.consumer.address, "--purpose", "sig checks", "--ops", "HOM_AGG",
           "--export-typed-data", "--out", export)
    typed = json.loads(export.read_text())
    env.refused(BadSignature, "malformed signature", "grant", "submit", export, "--signature", "0xdeadbeef",
                "--identity", "consumer")
    env.refused(BadSignature, "carries no signature", "grant", "submit", export, "--identity", "consumer")
    by_consumer = "0x" + bytes(Account.sign_message(encode_typed_data(full_message=typed),
                                                    w.consumer.account.key).signature).hex()
    env.refused(BadSignature, f"recovers to {w.consumer.address}, but asset 1 is held by {w.provider.address}",
                "grant", "submit", export, "--signature", by_consumer, "--identity", "consumer")

    # expiry: a grant valid for a minute and an offer valid for a minute, then two minutes pass
    short = tmp_path / "short.json"
    env.ok("grant", "sign", "1", "--consumer", w.consumer.address, "--purpose", "short", "--ops", "HOM_AGG",
           "--days", str(60 / 86400), "--price", str(PRICE), "--keystore", env.provider_keystore, "--out", short)
    short_grant = env.json("grant", "submit", short, "--identity", "consumer")["grantId"]
    late = tmp_path / "late.json"
    env.ok("grant", "sign", "1", "--consumer", w.consumer.address, "--purpose", "late", "--ops", "HOM_AGG",
           "--offer-hours", str(1 / 60), "--keystore", env.provider_keystore, "--out", late)
    w.space.w3.provider.make_request("evm_increaseTime", [120])
    w.space.w3.provider.make_request("evm_mine", [])
    env.refused(GrantExpired, f"grant {short_grant} expired", "job", "request", short_grant, "--query",
                json.dumps({"aggregates": [["count"]]}), "--identity", "consumer")
    env.refused(SignedGrantExpired, "offer expired", "grant", "submit", late, "--identity", "consumer")


def test_tds_prints_one_line_errors(env: Env):
    """The installed entry point: a refusal is one line on stderr and exit status 1, no traceback."""
    variables = {k: v for k, v in {**os.environ, **env.vars}.items() if v is not None}
    variables.pop("TDS_IPFS_API", None)
    variables.pop("TDS_CHAIN_ID", None)
    r = subprocess.run([sys.executable, "-c", "from tds.cli import main; main()", "asset", "show", "99"],
                       capture_output=True, text=True, env=variables, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: asset 99 does not exist") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cancelled_offer_can_no_longer_be_submitted(env: Env, tmp_path: Path):
    """Issue 12, item 17: the holder cancels a signed offer (by its file, or by its nonce); the
    consumer's submit is refused, and so is grantBySignature on chain (InvalidAccountNonce)."""
    from web3.exceptions import ContractCustomError

    from chain.revert import describe_revert

    w = env.world
    auth = w.space.c["Authorizations"]
    offer = tmp_path / "to-cancel.json"
    env.ok("grant", "sign", "1", "--consumer", w.consumer.address, "--purpose", "cancel me", "--ops", "HOM_AGG",
           "--keystore", env.provider_keystore, "--out", offer)
    env.refused(NotYours, "only its signer can cancel it", "grant", "cancel-offer", offer, "--identity", "consumer")
    env.refused(BadInput, "neither an offer file nor a nonce", "grant", "cancel-offer", "soon",
                "--keystore", env.provider_keystore)
    done = env.json("grant", "cancel-offer", offer, "--keystore", env.provider_keystore)
    parsed, sig = parse_offer(json.loads(offer.read_text()))
    assert int(done["nonce"]) == parsed.nonce and done["holder"] == w.provider.address
    logs = auth.events.OfferCancelled().get_logs(from_block=0, argument_filters={"holder": w.provider.address})
    assert parsed.nonce in [int(log["args"]["nonce"]) for log in logs]
    env.refused(StateRefused, "cancelled this signed grant offer", "grant", "submit", offer, "--identity", "consumer")
    with pytest.raises(ContractCustomError) as refused:  # the chain itself refuses it, whoever submits
        auth.functions.grantBySignature(parsed.terms.as_tuple(), parsed.nonce, parsed.deadline,
                                        parse_signature(sig)).call({"from": w.consumer.address})
    assert advise(describe_revert(refused.value.data)).error == "InvalidAccountNonce"
    env.refused(StateRefused, "already cancelled", "grant", "cancel-offer", offer, "--keystore", env.provider_keystore)

    # by nonce: an offer exported for an external wallet, cancelled before it is even signed
    export = tmp_path / "export-to-cancel.json"
    env.ok("grant", "sign", "1", "--consumer", w.consumer.address, "--purpose", "cancel by nonce", "--ops", "HOM_AGG",
           "--export-typed-data", "--out", export)
    typed = json.loads(export.read_text())
    nonce = int(typed["message"]["nonce"])
    assert "is cancelled" in env.ok("grant", "cancel-offer", hex(nonce), "--keystore", env.provider_keystore).stdout
    signature = "0x" + bytes(Account.sign_message(encode_typed_data(full_message=typed),
                                                  w.provider.account.key).signature).hex()
    env.refused(StateRefused, "cancelled", "grant", "submit", export, "--signature", signature,
                "--identity", "consumer")
