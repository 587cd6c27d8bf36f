"""The coordinating compute node of a collaboration: it follows ``StepOpened`` events naming it
first, fetches the step's parameter document by the hash on chain, gathers each provider node's
contribution (every provider checks the step on chain first), runs the engine — PSI between the
providers, or MPC on the step's compute nodes — and reports on chain: ``completeStep`` with the
result hash (and, for an output step, the CID of the result sealed to the consumer), or
``failStep`` with a reason code. Nothing but sealed envelopes and hashes leaves this module."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from chain import Space
from chain import collab as cc
from chain.cid import parse_cid
from chain.params import params_cid
from did.identity import Identity
from did.sealing import ChainDirectory
from offchain.collab.provider_node import ContributionRefused
from oracle.collab.description import mpc_spec

log = logging.getLogger(__name__)

# failStep reasons (>= 0x100: not the consumer's fault, the uses are given back)
REASON_BELOW_MIN_GROUP = 0x0003
REASON_BAD_DOCUMENT = 0x0110
REASON_PROVIDER_REFUSED = 0x0111
REASON_PEER_LOST = 0x0112
REASON_NODE_LOST = 0x0113
REASON_ENGINE_ERROR = 0x0114
REASON_PARTY_UNREACHABLE = 0x0115
REASONS = {REASON_BELOW_MIN_GROUP: "below the minimum group size", REASON_BAD_DOCUMENT: "bad step document",
           REASON_PROVIDER_REFUSED: "a provider refused", REASON_PEER_LOST: "a PSI peer was lost",
           REASON_NODE_LOST: "a compute node was lost", REASON_ENGINE_ERROR: "engine error",
           REASON_PARTY_UNREACHABLE: "a provider's party node did not answer"}
RESULT_FORMAT = "tds-collab-result/1"
# an output PSI step's billing receipt: its transcript hash (session, parties, mode, size), anchored
# through Evidence about the collaboration (an intermediate step's result hash is that hash itself)
PSI_RECEIPT = keccak(text="PSI_RECEIPT")


class Party(Protocol):
    """A provider's party node as the coordinator reaches it: in-process
    (``offchain.collab.provider_node.ProviderNode``) or over HTTP (``oracle.collab.party_client``)."""

    did: str

    def psi_prepare(self, collab_id: int, step: int, name: str, dids: list[str]) -> tuple[str, int]: ...
    def psi_start(self, collab_id: int, step: int, addresses: dict[str, tuple[str, int]], timeout: float) -> None: ...
    def psi_result(self, collab_id: int, step: int, timeout: float) -> Any: ...
    def keep_intersection(self, collab_id: int, step: int, sealed: bytes) -> int: ...
    def mpc_bundles(self, collab_id: int, step: int, name: str) -> list[bytes]: ...
    def forget(self, collab_id: int) -> None: ...


@dataclass(frozen=True)
class StepOutcome:
    collab_id: int
    step: int
    engine: str
    ok: bool
    result_hash: bytes | None = None
    result_cid: str | None = None
    reason: int | None = None
    detail: str = ""


class CollabCoordinator:
    """Runs the steps this compute node coordinates.

    ``providers`` maps a provider's address to its party node (in one process for the demo and
    tests; a deployment reaches each over its endpoint). ``compute`` holds the identities of the
    compute nodes whose MPC processes this host starts (the step's nodes, by address)."""

    def __init__(self, space: Space, account: LocalAccount, identity: Identity, store: Any,
                 providers: dict[str, Party], compute: dict[str, Identity], workdir: Path,
                 timeout: float = 120.0):
        self.space, self.account, self.identity, self.store = space, account, identity, store
        self.providers, self.compute = providers, compute
        self.workdir, self.timeout = Path(workdir), timeout
        self.directory = ChainDirectory(space.c["IdentityRegistry"], space.deployment["block"])
        self._obeyed: set[int] = set()
        self._receipts: dict[tuple[int, int], bytes] = {}

    # -- finding work ----------------------------------------------------------------------------
    def open_steps(self) -> list[tuple[int, int]]:
        """(collaboration, step) pairs open now whose coordinator is this node."""
        logs = self.space.c["Collaborations"].events.StepOpened().get_logs(from_block=self.space.deployment["block"])
        out = []
        for e in logs:
            a = e["args"]
            if a["nodes"] and a["nodes"][0] == self.account.address:
                if cc.step_of(self.space, a["id"], a["step"]).status == cc.StepStatus.OPEN and \
                        cc.collaboration(self.space, a["id"])["status"] == cc.CollabStatus.RUNNING:
                    out.append((a["id"], a["step"]))
        return out

    def obey_terminations(self) -> list[int]:
        """Stop and clean up after every collaboration that was terminated (failed or cancelled,
        by anyone): the providers drop its intermediate results, its work folders are removed."""
        import shutil

        logs = self.space.c["Collaborations"].events.CollaborationTerminated().get_logs(
            from_block=self.space.deployment["block"])
        ended = sorted({e["args"]["id"] for e in logs} - self._obeyed)
        chain_id = self.space.w3.eth.chain_id
        for collab_id in ended:
            self._forget(collab_id)
            for folder in self.workdir.glob(f"c{chain_id}-{collab_id}-s*"):
                shutil.rmtree(folder, ignore_errors=True)
            self._obeyed.add(collab_id)
        return ended

    def run_until_idle(self, max_rounds: int = 32) -> list[StepOutcome]:
        """Run every open step, then the ones they opened, until none is left."""
        self.obey_terminations()
        done: list[StepOutcome] = []
        for _ in range(max_rounds):
            todo = self.open_steps()
            if not todo:
                break
            done += [self.run_step(c, s) for c, s in todo]
        return done

    # -- one step --------------------------------------------------------------------------------
    def run_step(self, collab_id: int, step: int) -> StepOutcome:
        view = cc.step_of(self.space, collab_id, step)
        try:
            doc = self._document(view.params_hash)
        except ValueError as exc:
            return self._fail(collab_id, step, "?", REASON_BAD_DOCUMENT, str(exc))
        engine = doc["engine"]
        session = f"c{self.space.w3.eth.chain_id}-{collab_id}-s{step}"
        try:
            if engine == "psi":
                payload = self._psi(collab_id, step, doc, session)
            else:
                payload = self._mpc(collab_id, step, doc, view, session)
        except ContributionRefused as exc:
            return self._fail(collab_id, step, engine, REASON_PROVIDER_REFUSED, str(exc))
        except Exception as exc:  # noqa: BLE001 - every engine error ends the step with a reason
            return self._fail(collab_id, step, engine, _reason_of(exc), f"{type(exc).__name__}: {exc}")
        result_hash, body = payload
        cid = ""
        if doc["output"]:
            cid = self.store.add_bytes(body, cid_version=1)
        cc.complete_step(self.space, self.account, collab_id, step, result_hash,
                         parse_cid(cid).to_bytes() if cid else b"")  # binary CID, as Jobs records results
        receipt = self._receipts.pop((collab_id, step), None)
        if receipt is not None:
            self.space.send(self.account, self.space.c["Evidence"].functions.anchorHash(receipt, PSI_RECEIPT,
                                                                                       collab_id))
        self._forget_if_over(collab_id)
        log.info("collaboration %s step %s (%s) completed", collab_id, step, engine)
        return StepOutcome(collab_id, step, engine, True, result_hash, cid or None)

    def _document(self, params_hash: bytes) -> dict[str, Any]:
        data = self.store.cat(params_cid(params_hash))
        if hashlib.sha256(data).digest() != params_hash:
            raise ValueError("the step document does not match its hash on chain")
        return json.loads(data)

    def _provider(self, source: dict[str, Any]) -> Party:
        holder = self.space.c["AssetRegistry"].functions.ownerOf(int(source["asset"])).call()
        node = self.providers.get(holder)
        if node is None:
            raise ContributionRefused(f"no party node reachable for {holder}, holder of asset {source['asset']}")
        return node

    def _consumer(self, collab_id: int) -> tuple[str, bytes]:
        return self.directory.resolve(cc.collaboration(self.space, collab_id)["initiator"])

    def _psi(self, collab_id: int, step: int, doc: dict[str, Any], session: str) -> tuple[bytes, bytes]:
        """Each provider runs its own side at its node; this node relays the addresses, checks that
        every party ended with the same transcript and, for an intermediate step, hands each
        provider the intersection the leader sealed to it (an output goes to the consumer)."""
        from offchain.psi.errors import PsiPeerLost
        from offchain.psi.party_run import agreed

        sources = list(doc["sources"].items())
        nodes = [self._provider(s) for _, s in sources]
        dids = [n.did for n in nodes]
        if len(set(dids)) != len(dids):
            raise ContributionRefused("one provider holds two assets of a PSI step; one data source each")
        addresses = {n.did: n.psi_prepare(collab_id, step, name, dids) for n, (name, _) in zip(nodes, sources)}
        for n in nodes:
            n.psi_start(collab_id, step, addresses, self.timeout)
        results, errors = [], []
        for n in nodes:
            try:
                results.append(n.psi_result(collab_id, step, self.timeout + 10))
            except Exception as exc:  # noqa: BLE001 - a party's own error is raised before a lost peer
                errors.append(exc)
        if errors:
            raise next((e for e in errors if not isinstance(e, PsiPeerLost)), errors[0])
        leader = agreed(results)
        if doc["output"]:
            body = leader.sealed.get(None) or self._seal_size(collab_id, session, doc, dids, leader)
            self._receipts[(collab_id, step)] = leader.transcript
            return keccak(body), body
        for n in nodes:
            n.keep_intersection(collab_id, step, leader.sealed[n.did])
        return leader.transcript, b""

    def _seal_size(self, collab_id: int, session: str, doc: dict[str, Any], dids: list[str], leader: Any) -> bytes:
        from did.envelope import seal

        did, key = self._consumer(collab_id)
        body = json.dumps({"format": RESULT_FORMAT, "session": session, "mode": doc["params"].get("mode"),
                           "size": leader.size, "parties": dids, "transcript": leader.transcript.hex()},
                          sort_keys=True)
        return seal(self.identity, did, key, body.encode(), f"{RESULT_FORMAT}|{session}").to_bytes()

    def _mpc(self, collab_id: int, step: int, doc: dict[str, Any], view: cc.StepView,
             session: str) -> tuple[bytes, bytes]:
        from offchain.mpc.session import run_joint

        missing = [a for a in view.nodes if a not in self.compute]
        if missing:
            raise ContributionRefused(f"compute node(s) {', '.join(missing)} are not run by this host")
        identities = [self.compute[a] for a in view.nodes]
        bundles: dict[str, list[bytes]] = {}
        for name, source in doc["sources"].items():
            node = self._provider(source)
            if node.did in bundles:
                raise ContributionRefused(f"{node.did} holds two assets of one step; one data source each")
            bundles[node.did] = node.mpc_bundles(collab_id, step, name)
        consumer_did, consumer_key = self._consumer(collab_id)
        out = run_joint(session, mpc_spec(doc["params"]), bundles, identities, consumer_did, consumer_key,
                        self.workdir, self.timeout)
        body = json.dumps({"format": RESULT_FORMAT, "engine": "mpc", "session": session,
                           "nodes": [i.did for i in identities],
                           "outputs": [base64.b64encode(s).decode() for s in out.sealed_outputs]},
                          sort_keys=True).encode()
        return out.output_hash, body

    def _fail(self, collab_id: int, step: int, engine: str, reason: int, detail: str) -> StepOutcome:
        log.warning("collaboration %s step %s failed (%s): %s", collab_id, step, REASONS.get(reason, reason), detail)
        cc.fail_step(self.space, self.account, collab_id, step, reason)
        self._forget_if_over(collab_id, force=True)
        return StepOutcome(collab_id, step, engine, False, reason=reason, detail=detail)

    def _forget_if_over(self, collab_id: int, force: bool = False) -> None:
        if force or cc.collaboration(self.space, collab_id)["status"] != cc.CollabStatus.RUNNING:
            self._forget(collab_id)

    def _forget(self, collab_id: int) -> None:
        """Every party node drops the collaboration's state; one that does not answer is logged
        (it drops it anyway when it sees the collaboration end)."""
        for p in self.providers.values():
            try:
                p.forget(collab_id)
            except Exception as exc:  # noqa: BLE001 - cleanup must reach every other node
                log.warning("party node %s did not forget collaboration %s: %s", p.did, collab_id, exc)


def _reason_of(exc: BaseException) -> int:
    name = type(exc).__name__
    if name == "PsiPeerLost":
        return REASON_PEER_LOST
    if name in ("MpcNodeLost", "MpcTimeout"):
        return REASON_NODE_LOST
    if name == "MinGroupRefused":
        return REASON_BELOW_MIN_GROUP
    if name == "PartyUnreachable":
        return REASON_PARTY_UNREACHABLE
    return REASON_ENGINE_ERROR


def open_result(consumer: Identity, store: Any, cid: str, senders: list[str] | None = None) -> dict[str, Any]:
    """The consumer opens an output step's result (PSI intersection or size, or MPC statistics)."""
    from did.envelope import Envelope, open_envelope
    from offchain.psi.session import open_intersection

    data = store.cat(cid)
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("format") == RESULT_FORMAT and doc.get("engine") == "mpc":
        from offchain.mpc.session import open_outputs

        sealed = [base64.b64decode(s) for s in doc["outputs"]]
        return {"engine": "mpc", "values": open_outputs(consumer, sealed, doc["nodes"])}
    env = Envelope.from_bytes(data)
    if senders is not None and env.sender not in senders:
        raise ValueError(f"the result is sealed by {env.sender}, not by a party of this collaboration")
    if env.purpose.startswith(RESULT_FORMAT):
        return {"engine": "psi", **json.loads(open_envelope(consumer, env, purpose=env.purpose))}
    return {"engine": "psi", "mode": "intersection", "ids": open_intersection(consumer, data, env.sender)}
