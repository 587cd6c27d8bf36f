"""The auditor's verdicts: every signature, hash, Merkle proof and payment checked against the chain.

Steps (each verdict is ``{step, subject, ok, status, detail}``; ``status`` is ``pass``, ``fail``
or ``skip`` — a skip is something that could not be checked, e.g. a result no longer in the
content store, and does not fail the audit; overall = every verdict ok):

- ``signature``  — each ``JobCompleted``: the oracle's EIP-712 ``JobResult`` signature, read from
  the ``completeJob`` calldata, recovers to the event's oracle and the job's recorded oracle, over
  the digest the Jobs contract itself computes (``resultDigest`` view) for (jobId, resultHash,
  keccak256(resultCid));
- ``result-hash`` — the stored result bytes (``fetch(cid)``) hash (keccak256) to ``resultHash``;
- ``batch-root`` — each published log batch (JSON lines) recomputes to an anchored Merkle root
  with the anchored record count;
- ``batch-inclusion`` — every record's inclusion proof holds locally and through
  ``Evidence.verifyRecord`` (eth_call); an SM3 batch (``sm`` profile, ``batch-….sm3.jsonl``) is
  proven locally against the anchored root only, the contract hashing with keccak256;
- ``document`` — a supplied document (quality report, destruction proof, final record …) hashes
  (keccak256, SHA-256 or SM3) to the hash recorded on chain for its subject;
- ``payment`` — a completed job's credited shares sum exactly to the job's escrowed amount, in
  its token, with the compute share to the completing oracle; a failed or reclaimed job's refund
  equals its amount.
- ``collab-order``, ``collab-payment``, ``collab-result`` — collaborations (audit/verify_collab.py).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from web3 import Web3

from audit.events import ChainEvent, ChainReader
from audit.merkle import KECCAK
from audit.merkle import verify as merkle_verify
from audit.oplog import Batch, OpLogError
from audit.trail import SHARES, asset_events, asset_scope
from chain.eip712 import job_result_typed_data
from chain.sm import sm3

Fetch = Callable[[str], "bytes | None"]
REFUND = SHARES.index("refund")
COMPUTE = SHARES.index("compute-provider")


def verdict(step: str, subject: str, ok: bool | None, detail: str, **refs: Any) -> dict[str, Any]:
    """``ok=None`` marks a skipped check (counted as not failing); ``refs`` name the chain objects
    checked (job, batch, hash) so a timeline can attach the verdict to its events."""
    status = "skip" if ok is None else ("pass" if ok else "fail")
    return {"step": step, "subject": subject, "ok": ok is not False, "status": status, "detail": detail,
            "refs": refs}


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def cid_text(raw: bytes) -> str:
    """Textual CID of binary CID bytes (as the chain stores them); 0x-hex if not a CID we know."""
    try:
        from chain.cid import cid_from_bytes

        return cid_from_bytes(bytes(raw)).encode()
    except Exception:  # unknown codec/hash, or the store package unavailable
        return _hex(raw)


# ---------------------------------------------------------------------------- (a) signatures

def verify_signature(reader: ChainReader, ev: ChainEvent) -> dict[str, Any]:
    job_id = ev.args["jobId"]
    subject = f"job {job_id}"
    jobs = reader.contracts["Jobs"]
    tx = reader.w3.eth.get_transaction(ev.tx)
    try:
        fn, params = jobs.decode_function_input(tx["input"])
    except ValueError:
        return verdict("signature", subject, False,
                       f"transaction {ev.tx} is not a direct completeJob call; its signature cannot be read")
    if fn.fn_name == "settleReleased" and params["jobId"] == job_id:
        return verdict("signature", subject, True,
                       f"settled by {ev.args['oracle']} without the oracle's posting (settleReleased): the answer is "
                       f"the one its provider released (see the release check)")
    if fn.fn_name != "completeJob" or params["jobId"] != job_id:
        return verdict("signature", subject, False, f"transaction {ev.tx} calls {fn.fn_name}, not completeJob({job_id})")
    result_hash, result_cid, sig = bytes(params["resultHash"]), bytes(params["resultCid"]), bytes(params["signature"])
    if result_hash != bytes(ev.args["resultHash"]) or result_cid != bytes(ev.args["resultCid"]):
        return verdict("signature", subject, False, "calldata result differs from the JobCompleted event")
    typed = job_result_typed_data(job_id, result_hash, result_cid, reader.chain_id, jobs.address)
    signable = encode_typed_data(full_message=typed)
    local_digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    chain_digest = bytes(jobs.functions.resultDigest(job_id, result_hash, keccak(result_cid)).call())
    if local_digest != chain_digest:
        return verdict("signature", subject, False,
                       f"EIP-712 digest {_hex(local_digest)} differs from the contract's {_hex(chain_digest)}")
    try:
        signer = Account.recover_message(signable, signature=sig)
    except Exception as exc:  # malformed signature bytes
        return verdict("signature", subject, False, f"signature does not recover: {exc}")
    recorded = jobs.functions.jobOf(job_id).call()[1][0]
    oracle = ev.args["oracle"]
    if signer != oracle or signer != recorded:
        return verdict("signature", subject, False,
                       f"signature recovers to {signer}, but the completing oracle is {oracle} (job records {recorded})")
    did = reader.did_of(signer, ev.position)
    return verdict("signature", subject, True, f"JobResult signed by the job's oracle {signer} ({did})")


# ---------------------------------------------------------------------------- (a') the release

def verify_release(reader: ChainReader, done: ChainEvent, released: ChainEvent | None) -> dict[str, Any]:
    """A completed job's answer is the one the provider's key service released for that job."""
    job_id = done.args["jobId"]
    subject = f"job {job_id}"
    if released is None:
        return verdict("release", subject, False, "completed without an AnswerReleased event for this job")
    if bytes(released.args["resultHash"]) != bytes(done.args["resultHash"]) or released.position > done.position:
        return verdict("release", subject, False,
                       f"completed with {_hex(bytes(done.args['resultHash']))} but the release recorded "
                       f"{_hex(bytes(released.args['resultHash']))}")
    provider = released.args["provider"]
    return verdict("release", subject, True,
                   f"answer released by the asset holder {provider} ({reader.did_of(provider, released.position)}) "
                   f"to oracle {released.args['oracle']} before completion")


# ---------------------------------------------------------------------------- (b) result bytes

def verify_result_bytes(ev: ChainEvent, fetch: Fetch) -> dict[str, Any]:
    job_id = ev.args["jobId"]
    cid = cid_text(ev.args["resultCid"])
    try:
        data = fetch(cid)
    except Exception as exc:  # the store says it has no such content, or is down
        data = None
        why = f"{exc.__class__.__name__}: {exc}"
    else:
        why = "not in the content store"
    if data is None:
        return verdict("result-hash", f"job {job_id}", None, f"result {cid} {why}; not checked")
    got = keccak(bytes(data))
    want = bytes(ev.args["resultHash"])
    if got != want:
        return verdict("result-hash", f"job {job_id}", False,
                       f"keccak256 of the {len(data)} stored bytes of {cid} is {_hex(got)}, chain says {_hex(want)}")
    return verdict("result-hash", f"job {job_id}", True, f"keccak256 of {cid} ({len(data)} bytes) = resultHash")


# ---------------------------------------------------------------------------- (c) log batches

def batch_files(logs_dir: Path) -> list[Path]:
    """Published batch files under ``logs_dir`` (the still-open log is not a batch)."""
    return sorted(p for p in Path(logs_dir).rglob("*.jsonl") if p.name != "open.jsonl")


def verify_batch_file(reader: ChainReader, path: Path, logs_dir: Path) -> tuple[list[dict[str, Any]], int | None]:
    """Verdicts for one batch file; also the anchor it matched (or None)."""
    rel = str(path.relative_to(logs_dir)) if path.is_relative_to(logs_dir) else str(path)
    subject = f"batch file {rel}"
    try:
        batch = Batch.from_jsonl(path.parent.name, path.read_bytes(), str(path))
    except OpLogError as exc:
        return [verdict("batch-root", subject, False, f"unreadable batch: {exc}")], None
    if not batch.records:
        return [verdict("batch-root", subject, False, "empty batch file")], None
    root = batch.root
    anchors = reader.select("Evidence", "BatchAnchored")
    by_root = [a for a in anchors if bytes(a.args["root"]) == root]
    if not by_root:
        # batchRef names the file, but names repeat across producers: the anchor must also be
        # by an account that wrote records of this batch
        actors = {r.actor_address.lower() for r in batch.records}
        named = [a for a in anchors if bytes(a.args["batchRef"]).decode("utf-8", "replace") in (path.name, rel)
                 and a.args["producer"].lower() in actors]
        if named:
            a = named[0]
            out = [verdict("batch-root", subject, False,
                           f"recomputed root {_hex(root)} ≠ root {_hex(a.args['root'])} anchored as batch "
                           f"#{a.args['batchId']}: the file was altered after anchoring")]
            out.append(_inclusion(reader, batch, a, subject))
            return out, a.args["batchId"]
        return [verdict("batch-root", subject, False, f"root {_hex(root)} was never anchored on chain")], None
    a = by_root[0]
    batch_id = a.args["batchId"]
    count = a.args["count"]
    if count != len(batch.records):
        return [verdict("batch-root", subject, False,
                        f"root matches batch #{batch_id} but it anchored {count} records, "
                        f"file has {len(batch.records)}")], batch_id
    producer = a.args["producer"]
    out = [verdict("batch-root", subject, True,
                   f"Merkle root of {count} records = batch #{batch_id} anchored by {producer} "
                   f"({reader.did_of(producer, a.position)}) at block {a.block}")]
    out.append(_inclusion(reader, batch, a, subject))
    return out, batch_id


def _inclusion(reader: ChainReader, batch: Batch, anchor: ChainEvent, subject: str) -> dict[str, Any]:
    evidence = reader.contracts["Evidence"].functions
    batch_id, root = anchor.args["batchId"], bytes(anchor.args["root"])
    tree, h = batch.tree, batch.hash_name
    bad = []
    for i, rec in enumerate(batch.records):
        proof = tree.proof(i)
        local = merkle_verify(proof, root, rec.leaf(h), h)
        onchain = evidence.verifyRecord(batch_id, rec.canonical(), proof).call() if h == KECCAK else True
        if not (local and onchain):
            bad.append(rec.id)
    n = len(batch.records)
    if h != KECCAK:          # the contract recomputes keccak256: an SM3 tree is proven off chain only
        if bad:
            return verdict("batch-inclusion", subject, False,
                           f"{n - len(bad)}/{n} {h} proofs hold against batch #{batch_id}'s root; "
                           f"not included: {', '.join(bad[:5])}")
        return verdict("batch-inclusion", subject, True,
                       f"{n}/{n} {h} inclusion proofs hold against the root anchored as batch #{batch_id} "
                       "(verified off chain: Evidence.verifyRecord hashes with keccak256)")
    if bad:
        return verdict("batch-inclusion", subject, False,
                       f"{n - len(bad)}/{n} records proven in batch #{batch_id}; not included: {', '.join(bad[:5])}")
    return verdict("batch-inclusion", subject, True,
                   f"{n}/{n} inclusion proofs accepted by Evidence.verifyRecord for batch #{batch_id}")


# ---------------------------------------------------------------------------- (d) documents

def chain_hashes(reader: ChainReader, asset_ids: Iterable[int]) -> dict[str, bytes]:
    """Subject → hash recorded on chain (quality reports, manifests, final records, destruction proofs)."""
    out: dict[str, bytes] = {}
    for aid in asset_ids:
        for h, subject in asset_scope(reader, aid).hashes.items():
            out[subject] = h
    return out


def verify_document(name: str, data: bytes, recorded: Mapping[str, bytes]) -> dict[str, Any]:
    digests = {"keccak256": keccak(data), "sha256": hashlib.sha256(data).digest(), "sm3": sm3(data)}
    if name in recorded:
        want = recorded[name]
        for algo, d in digests.items():
            if d == want:
                return verdict("document", name, True, f"{algo} of the document = {_hex(want)} recorded on chain",
                               hash=_hex(want))
        return verdict("document", name, False,
                       f"document hashes to {_hex(digests['keccak256'])} (keccak256) / {_hex(digests['sha256'])} "
                       f"(sha256) / {_hex(digests['sm3'])} (sm3); chain records {_hex(want)}", hash=_hex(want))
    for subject, want in recorded.items():
        for algo, d in digests.items():
            if d == want:
                return verdict("document", name, True, f"{algo} matches the hash recorded for {subject}",
                               hash=_hex(want))
    return verdict("document", name, False, "the document matches no hash recorded on chain for the audited assets")


# ---------------------------------------------------------------------------- (e) payments

def verify_payment(reader: ChainReader, req: ChainEvent, end: ChainEvent) -> dict[str, Any]:
    job_id = req.args["jobId"]
    amount, token = req.args["amount"], req.args["paymentToken"]
    credits = reader.select("Jobs", "Credited", jobId=job_id)
    wrong_token = [c for c in credits if c.args["token"] != token]
    if wrong_token:
        return verdict("payment", f"job {job_id}", False,
                       f"credited in token {wrong_token[0].args['token']}, paid in {token}")
    if end.name == "JobCompleted":
        shares = [c for c in credits if c.args["share"] != REFUND]
        # under a dispute window (docs/disputes.md) all but the operator's share is held until released
        # or decided; an arbitrator's decision may refund part of it to the consumer
        refunded = sum(c.args["amount"] for c in credits if c.args["share"] == REFUND)
        held = reader.select("Jobs", "PaymentHeld", jobId=job_id)
        settled = reader.select("Jobs", {"HeldPaymentReleased", "DisputeResolved"}, jobId=job_id)
        pending = held[0].args["amount"] if held and not settled else 0
        total = sum(c.args["amount"] for c in shares) + refunded + pending
        if total != amount:
            return verdict("payment", f"job {job_id}", False,
                           f"shares credited {total - pending} (of which {refunded} refunded), {pending} held "
                           f"≠ amount paid {amount}")
        compute = [c for c in shares if c.args["share"] == COMPUTE]
        payees = {end.args["oracle"]}
        if reader.select("Jobs", "JobSettledWithoutOracle", jobId=job_id):  # the provider posted: its share
            payees |= {c.args["payee"] for c in shares if c.args["share"] == 0}
        if any(c.args["payee"] not in payees for c in compute):
            return verdict("payment", f"job {job_id}", False, "compute share credited to someone other than the oracle")
        split = ", ".join(f"{SHARES[c.args['share']]} {c.args['amount']}" for c in shares)
        extra = (f"; {pending} held in its dispute window" if pending else "") + \
            (f"; {refunded} refunded by the arbitrator" if refunded else "")
        return verdict("payment", f"job {job_id}", True,
                       f"{amount} split exactly: {split or 'nothing to split'}{extra}")
    refund = sum(c.args["amount"] for c in credits if c.args["share"] == REFUND)
    others = [c for c in credits if c.args["share"] != REFUND]
    ok = refund == amount and not others
    return verdict("payment", f"job {job_id}", ok,
                   f"{end.name}: refund {refund} of {amount} paid"
                   + ("" if not others else "; shares were also paid out"))


# ---------------------------------------------------------------------------- all

def verify_all(w3: Web3 | None, deployment: dict[str, Any] | None, *, asset: int | None = None,
               logs_dir: Path | str | None = None, fetch: Fetch | None = None,
               documents: Mapping[str, bytes] | None = None, reader: ChainReader | None = None) -> list[dict[str, Any]]:
    """Every verdict for one asset (or the whole deployment when ``asset`` is None)."""
    if reader is None:
        assert w3 is not None and deployment is not None
        reader = ChainReader(w3, deployment)
    asset_ids = [asset] if asset is not None else reader.asset_ids()
    unique: dict[str, ChainEvent] = {}
    for aid in asset_ids:
        unique.update((ev.uid, ev) for ev in asset_events(reader, aid)[1])
    events = sorted(unique.values(), key=lambda e: e.position)
    out: list[dict[str, Any]] = []
    requested = {ev.args["jobId"]: ev for ev in events if ev.name == "JobRequested"}
    releases = {ev.args["jobId"]: ev for ev in events if ev.name == "AnswerReleased"}
    for ev in events:
        found = []
        if ev.name == "JobCompleted":
            found.append(verify_signature(reader, ev))
            found.append(verify_release(reader, ev, releases.get(ev.args["jobId"])))
            if fetch is not None:
                found.append(verify_result_bytes(ev, fetch))
        if ev.name in ("JobCompleted", "JobFailed", "JobReclaimed") and ev.args["jobId"] in requested:
            found.append(verify_payment(reader, requested[ev.args["jobId"]], ev))
        for v in found:
            v["refs"] = {"job": ev.args["jobId"]}
        out += found
    from audit.verify_collab import verify_collaborations

    out += verify_collaborations(reader, events, fetch, cid_text)
    if logs_dir is not None:
        logs_dir = Path(logs_dir)
        matched: set[int] = set()
        for path in batch_files(logs_dir):
            verdicts, batch_id = verify_batch_file(reader, path, logs_dir)
            if batch_id is not None:
                matched.add(batch_id)
                for v in verdicts:
                    v["refs"] = {"batch": batch_id}
            out += verdicts
        in_scope = [ev for ev in events if ev.name == "BatchAnchored"] if asset is not None \
            else reader.select("Evidence", "BatchAnchored")
        for ev in in_scope:
            if ev.args["batchId"] not in matched:
                out.append(verdict("batch-root", f"batch #{ev.args['batchId']}", None,
                                   f"anchored by {ev.args['producer']} but no published file in {logs_dir}; not checked",
                                   batch=ev.args["batchId"]))
    if documents:
        recorded = chain_hashes(reader, asset_ids)
        for ev in events:  # single hashes anchored in these trails (key releases, proofs …)
            if ev.name == "HashAnchored":
                subject = f"anchor:{_hex(ev.args['kind'])[:10]}:{ev.args.get('subjectId', 0)}"
                recorded.setdefault(subject, bytes(ev.args["hash"]))
        for name, data in documents.items():
            out.append(verify_document(name, data, recorded))
    return out


def overall(verdicts: list[dict[str, Any]]) -> bool:
    return all(v["ok"] for v in verdicts)
