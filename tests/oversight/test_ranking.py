"""The quality ranking (oversight/ranking.py): the score and order rules (pure); the ranking of the
shared lifecycle gathered from chain events, published with its hash anchored, and its top
provider rewarded in Credits with the ranking's hash as memo (inside an anvil snapshot, reverted);
the regulator's commands publish it and refuse a reward for an unanchored or unrated ranking."""
from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from audit.events import ChainReader
from chain.accounts import dev_account
from chain.tx import Sender
from oversight.ranking import KIND, AssetFacts, document, gather, rank, rewards, score
from tds.cli.refusals import StateRefused
from tests.support.lifecycle import shared_lifecycle


def test_bayesian_score_and_ties():
    assert score([]) == 3.0 and score([5]) == pytest.approx(20 / 6)
    assert score([5] * 20) > score([4, 4, 4]) > score([5])   # one perfect rating does not outrank three good ones
    r = rank([AssetFacts(1, "0xB", [5], 1), AssetFacts(2, "0xA", [5] * 20, 0), AssetFacts(3, "0xA", [], 9),
              AssetFacts(4, "0xC", [], 2)])
    assert [e["asset"] for e in r["assets"]] == [2, 1, 3, 4]         # unrated: by completed jobs
    assert [e["rank"] for e in r["assets"]] == [1, 2, 3, 4]
    assert [e["provider"] for e in r["providers"]] == ["0xA", "0xB", "0xC"]
    assert r["providers"][0]["ratings"] == 20 and r["providers"][0]["completed_jobs"] == 9
    assert rewards(r, 5, 100) == (["0xA", "0xB"], [100, 100])       # the unrated provider gets nothing
    doc = document(r, 31337, 0, 9)
    assert json.loads(doc)["format"] == "tds-ranking/1" and document(r, 31337, 0, 9) == doc  # canonical


def test_the_lifecycle_ranking_is_published_and_rewarded(request, tmp_path_factory):
    lc = shared_lifecycle(request, tmp_path_factory)
    facts = gather(ChainReader(lc.w3, lc.deployment))
    rated = [f for f in facts if f.scores]
    assert rated and all(f.completed >= 1 for f in rated), facts     # the lifecycle rated a used asset
    head = lc.w3.eth.block_number
    doc = document(rank(facts), lc.w3.eth.chain_id, 0, head)
    assert doc == document(rank(gather(ChainReader(lc.w3, lc.deployment), 0, head)), lc.w3.eth.chain_id, 0, head)
    snap = lc.w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        regulator = Sender(lc.w3, dev_account(1))
        regulator.send(lc.c["Evidence"].functions.anchorHash(keccak(doc), KIND))
        anchored = lc.c["Evidence"].events.HashAnchored().get_logs(from_block=head,
                                                                  argument_filters={"hash": keccak(doc)})
        assert anchored and anchored[0]["args"]["kind"] == KIND
        to, amounts = rewards(json.loads(doc), 1, 7)
        regulator.send(lc.c["Credits"].functions.allocate(to, amounts, keccak(doc)))
        assert lc.c["Credits"].functions.balanceOf(to[0]).call() >= 7
        with pytest.raises(Exception, match="AccessControlUnauthorizedAccount"):   # only the regulator mints
            Sender(lc.w3, dev_account(9)).send(lc.c["Credits"].functions.allocate(to, amounts, keccak(doc)))
    finally:
        lc.w3.provider.make_request("evm_revert", [snap])


def test_the_regulator_commands(env):
    from click.testing import CliRunner

    from offchain.store.client import open_store
    from tds.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], env=env.vars)

    published = json.loads(env.cli("regulator", "ranking", "--json", "--dev-account", 1).stdout)
    assert published["ranking"]["format"] == "tds-ranking/1" and published["ranking"]["assets"]
    anchored = env.world.space.c["Evidence"].events.HashAnchored().get_logs(
        from_block=env.world.space.deployment["block"], argument_filters={"kind": KIND})
    assert "0x" + bytes(anchored[-1]["args"]["hash"]).hex() == published["hash"]
    r = run("regulator", "reward", published["cid"], "--amount", 5, "--dev-account", 1)
    assert isinstance(r.exception, StateRefused) and "no rated provider" in str(r.exception), r.output
    forged = open_store(env.settings.home, None).add_bytes(b'{"format":"tds-ranking/1","providers":[]}', cid_version=1)
    r = run("regulator", "reward", forged, "--amount", 5, "--dev-account", 1)
    assert isinstance(r.exception, StateRefused) and "is not anchored on chain" in str(r.exception), r.output
