"""``tds job ...``: the consumer's paid computations. ``request`` stores the query by its hash
and pays for one use of a grant (every grant term is checked first, so a refusal says which);
``wait`` follows the job with a spinner on stderr; ``result`` fetches the sealed answer by the
CID the oracle posted, checks it against the hash on chain and opens it with the consumer's
DID keys (sealed by the provider's DID, which is checked too)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from eth_utils import keccak

from tds.cli.deployed import ZERO_ADDRESS, Deployed, JobView
from tds.cli.output import emit_json, err_console
from tds.cli.refusals import BadInput, InsufficientFunds, NotYours, ParticipantError, StateRefused, iso, onchain
from tds.cli.terms import parse_amount, parse_ops
from tds.cli.wallet import WalletChoice, wallet_options
from chain.ops import describe

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
FINAL = ("completed", "failed", "reclaimed", "cancelled")
GAS_RESERVE = 300_000  # gas a requestJob may need, checked against the balance with the price


class JobTimeout(ParticipantError):
    """A job did not finish within the wait."""


def _tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _load_query(text: str) -> dict[str, Any]:
    """``--query`` is a JSON file or inline JSON."""
    try:
        is_file = Path(text).is_file()
    except OSError:  # inline JSON longer than a file name may be
        is_file = False
    source = f"query file {text}" if is_file else "--query"
    raw = Path(text).read_text() if is_file else text
    try:
        query = json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"{source} is not JSON (nor a file): {exc}") from None
    if not isinstance(query, dict):
        raise BadInput(f"{source} must be a JSON object such as "
                       '{"aggregates": [["sum", "amount"]], "where": [["range", "amount", 100, 500]]}')
    return query


def _dataset_of(d: Deployed, asset_id: int) -> str | None:
    """The dataset id of an asset, from its manifest in the content store (None if unavailable)."""
    from chain.cid import cid_from_bytes

    try:
        manifest = json.loads(d.store().cat(cid_from_bytes(bytes(d.registration(asset_id)["contentCid"])).encode()))
        return manifest["dataset_id"]
    except Exception:
        return None


def _operation(query: dict[str, Any]) -> int:
    from offchain.errors import QueryError
    from offchain.query.plan import Query
    from chain.ops import mask_of

    try:
        return mask_of(Query.from_dict(query).operations())
    except (QueryError, KeyError, TypeError, IndexError, ValueError) as exc:
        raise BadInput(f"the query is not valid: {exc.__class__.__name__}: {exc}") from None


def _pay_check(d: Deployed, g: Any, payer: str, value: int | None) -> int:
    """The price of one use, after checking the payer can pay it."""
    if g.payment_token == ZERO_ADDRESS:
        if value is not None and value != g.price:
            raise InsufficientFunds(f"grant {g.grant_id} costs {g.price} wei per job; --value {value} is not that "
                                    f"(omit --value to pay the price)")
        balance = d.w3.eth.get_balance(payer)
        fee = d.w3.eth.gas_price * GAS_RESERVE
        if balance < g.price + fee:
            raise InsufficientFunds(f"insufficient funds: {payer} has {balance} wei; the job costs {g.price} wei "
                                    f"plus about {fee} wei of gas")
        return g.price
    if value:
        raise InsufficientFunds(f"grant {g.grant_id} is paid in token {g.payment_token}, not the native coin; "
                                f"drop --value")
    token = d.c["Credits"] if g.payment_token == d.c["Credits"].address else d.w3.eth.contract(
        address=g.payment_token, abi=d.c["Credits"].abi)
    held = token.functions.balanceOf(payer).call()
    if held < g.price:
        raise InsufficientFunds(f"insufficient credits: {payer} holds {held}, the job costs {g.price}; ask the "
                                f"regulator for an allocation")
    return 0


@click.group("job")
def job() -> None:
    """Computation jobs: request (and pay), status, wait, result, reclaim."""


@job.command("request")
@click.argument("grant_id", type=click.IntRange(min=1))
@click.option("--query", "query_text", required=True,
              help='JSON file or inline JSON, e.g. {"aggregates": [["sum", "amount"]]} (dataset: the asset\'s).')
@click.option("--ops", "ops_text", default=None, help="Operations to pay for (default: what the query needs).")
@click.option("--value", "value_text", default=None, help="Payment (default: the grant's price per use).")
@click.option("--ttl", type=click.IntRange(60, 90 * 86400), default=3600, show_default=True,
              help="Seconds the oracle has before the payment can be reclaimed.")
@click.option("--wait", "wait_", is_flag=True, help="Wait for the oracle to finish (spinner on stderr).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True)
@wallet_options
@_JSON
@onchain
def job_request(grant_id: int, query_text: str, ops_text: str | None, value_text: str | None, ttl: int,
                wait_: bool, timeout: float, as_json: bool, wallet: WalletChoice) -> None:
    """Consumer: request (and pay for) a job under GRANT_ID."""
    from web3.logs import DISCARD

    from chain.params import params_cid, params_hash, seal_params

    query = _load_query(query_text)
    value = parse_amount(value_text) if value_text is not None else None
    d = Deployed.open()
    g = d.grant(grant_id)
    if "dataset" not in query:
        dataset = _dataset_of(d, g.asset_id)
        if dataset is None:
            raise BadInput(f"the query names no dataset and asset {g.asset_id}'s manifest is not in the content "
                           f"store; add \"dataset\": \"<dataset id>\" to the query")
        query = {"dataset": dataset, **query}
    needed = _operation(query)
    operation = parse_ops(ops_text) if ops_text else needed
    if needed & ~operation:
        raise BadInput(f"the query needs {describe(needed)}; --ops {describe(operation)} does not cover it")
    known = wallet.address() if wallet.given else None
    if known is not None:
        d.usable_grant(g, known, operation)  # before asking for a password
    me = d.signer(wallet)
    d.usable_grant(g, me.address, operation)
    pay = _pay_check(d, g, me.address, value)
    if g.payment_token != ZERO_ADDRESS:
        token = d.w3.eth.contract(address=g.payment_token, abi=d.c["Credits"].abi)
        if token.functions.allowance(me.address, d.c["Jobs"].address).call() < g.price:
            d.send(me, token.functions.approve(d.c["Jobs"].address, g.price))
            err_console.print(f"allowed the Jobs contract to take {g.price} credits", markup=False)
    # sealed to the key service of the asset's holder: the shared store never holds the query in clear
    holder = d.c["AssetRegistry"].functions.ownerOf(g.asset_id).call()
    key = d.space.key_agreement_key(holder)
    if key == b"\0" * 32:
        raise ParticipantError(f"the asset's holder {holder} has no key-agreement key on chain to seal the query to")
    data = seal_params(query, [key])
    digest = params_hash(data)
    cid = d.store().add_bytes(data, cid_version=1)
    if cid != params_cid(digest):
        raise ParticipantError(f"the content store answered CID {cid} for the job parameters, expected "
                               f"{params_cid(digest)}")
    jobs = d.c["Jobs"]
    r = d.send(me, jobs.functions.requestJob(grant_id, operation, digest, d.now() + ttl), value=pay)
    job_id = jobs.events.JobRequested().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
    if not as_json:
        click.echo(f"job {job_id} requested under grant {grant_id} ({describe(operation)}, paid {g.price}); "
                   f"'tds job wait {job_id}' follows it")
    view = _wait(d, job_id, timeout) if wait_ else d.job(job_id)
    if as_json:
        emit_json(_status(d, view) | {"paramsCid": cid, "tx": _tx(r)})
    elif wait_:
        _say_final(d, view)


def _status(d: Deployed, j: JobView) -> dict[str, Any]:
    from oracle.pipeline import describe_reason, result_cid_text

    out = j.to_dict()
    if j.status == "completed":
        ev = d.space.completion(j.job_id)
        if ev:
            out["result"] = {"cid": result_cid_text(bytes(ev["resultCid"])),
                             "hash": "0x" + bytes(ev["resultHash"]).hex()}
    if j.status == "failed":
        code = d.job_failure(j.job_id)
        out["failure"] = {"code": code, "reason": describe_reason(code) if code is not None else None}
    return out


def _wait(d: Deployed, job_id: int, timeout: float, poll: float = 0.2) -> JobView:
    """Poll the job until it is final: a spinner on a terminal, one line per change otherwise."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    j = d.job(job_id)
    if j.status in FINAL:
        return j
    deadline = time.monotonic() + timeout
    live = err_console.is_terminal
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=not live) as bar:
        task = bar.add_task(f"job {job_id}: {j.status}")
        seen = None
        while j.status not in FINAL:
            label = f"job {job_id}: {j.status}" + (f" by {j.oracle}" if j.status == "accepted" else "")
            if label != seen:
                bar.update(task, description=label)
                if not live:
                    err_console.print(label, markup=False)
                seen = label
            if time.monotonic() > deadline:
                raise JobTimeout(f"job {job_id} is still {j.status} after {timeout:.0f} s; is an oracle running "
                                 f"('tds oracle status NAME')? After {iso(j.deadline)} reclaim the payment with "
                                 f"'tds job reclaim {job_id}'")
            time.sleep(poll)
            j = d.job(job_id)
    return j


def _say_final(d: Deployed, j: JobView) -> None:
    info = _status(d, j)
    if j.status == "completed":
        click.echo(f"job {j.job_id} completed: result {info['result']['cid']}; open it with "
                   f"'tds job result {j.job_id} --identity NAME'")
    elif j.status == "failed":
        raise StateRefused(f"job {j.job_id} failed: {info['failure']['reason']} (code {info['failure']['code']}); "
                           f"the payment was refunded to your balance ('tds earnings withdraw')")
    else:
        click.echo(f"job {j.job_id} {j.status}")


@job.command("status")
@click.argument("job_id", type=click.IntRange(min=1))
@_JSON
@onchain
def job_status(job_id: int, as_json: bool) -> None:
    """Where JOB_ID stands (requested, accepted, completed, failed, reclaimed)."""
    d = Deployed.open()
    info = _status(d, d.job(job_id))
    if as_json:
        emit_json(info)
        return
    for k, v in info.items():
        click.echo(f"{k:<10} {v}")


@job.command("wait")
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True)
@_JSON
@onchain
def job_wait(job_id: int, timeout: float, as_json: bool) -> None:
    """Wait until JOB_ID is completed or failed (spinner on stderr); a failure exits non-zero."""
    d = Deployed.open()
    j = _wait(d, job_id, timeout)
    if as_json:
        emit_json(_status(d, j))
        if j.status == "failed":
            raise SystemExit(1)
        return
    _say_final(d, j)


@job.command("result")
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--identity", "identity_name", required=True, metavar="NAME",
              help="The consumer's 'tds id' identity (its key-agreement key opens the answer).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the opened answer (JSON) here.")
@click.option("--sealed", "sealed_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Open this sealed answer (downloaded from the console) instead of fetching it from the store.")
@_JSON
@onchain
def job_result(job_id: int, identity_name: str, out: Path | None, as_json: bool,
               sealed_file: Path | None = None) -> None:
    """Consumer: fetch, verify and open the sealed answer of JOB_ID."""
    from chain.errors import InvalidCid
    from offchain.errors import DataPlaneError
    from oracle.pipeline import result_cid_text
    from did.sealing import ChainDirectory, open_result

    d = Deployed.open()
    j = d.job(job_id)
    if j.status != "completed":
        hint = ("it failed; see 'tds job status'" if j.status == "failed"
                else f"wait with 'tds job wait {job_id}'")
        raise StateRefused(f"job {job_id} is {j.status}, it has no result ({hint})")
    g = d.grant(j.grant_id)
    wallet = WalletChoice(identity=identity_name)
    known = wallet.address()
    if known is not None and known != g.consumer:
        raise NotYours(f"job {job_id}'s answer is sealed to its consumer {g.consumer}; identity {identity_name!r} "
                       f"is {known}")
    ev = d.space.completion(job_id)
    cid = result_cid_text(bytes(ev["resultCid"]))
    try:
        sealed = sealed_file.read_bytes() if sealed_file is not None else d.store().cat(cid)
    except (DataPlaneError, InvalidCid) as exc:
        raise ParticipantError(f"the sealed result {cid} is not in the content store ({exc}); point TDS_IPFS_API "
                               f"at the store the oracle writes to") from None
    if keccak(sealed) != bytes(ev["resultHash"]):
        source = f"the bytes of {sealed_file}" if sealed_file is not None else f"the bytes behind {cid}"
        raise ParticipantError(f"{source} do not match the result hash on chain; they are something else "
                               f"— do not trust them")
    provider_did, _key = ChainDirectory(d.c["IdentityRegistry"], d.deployment["block"]).resolve(
        d.grant_provider(j.grant_id))
    payload = open_result(wallet.identity_keys(), sealed, provider_did, job_id=job_id)
    answer = payload.get("answer", payload)
    doc = {"jobId": job_id, "grantId": j.grant_id, "resultCid": cid, "resultHash": "0x" + keccak(sealed).hex(),
           "sealedBy": provider_did, "answer": answer}
    if out is not None:
        out.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    if as_json:
        emit_json(doc)
        return
    columns = answer.get("columns") if isinstance(answer, dict) else None
    rows = answer.get("rows") if isinstance(answer, dict) else None
    click.echo(f"job {job_id}: answer sealed by {provider_did}, hash verified")
    if columns:
        click.echo("\t".join(str(c) for c in columns))
    for row in rows or []:
        click.echo("\t".join(str(v) for v in row))
    if rows is None:
        click.echo(json.dumps(answer, indent=1, default=str))


@job.command("reclaim")
@click.argument("job_id", type=click.IntRange(min=1))
@wallet_options
@onchain
def job_reclaim(job_id: int, wallet: WalletChoice) -> None:
    """Consumer: after its deadline, take back the payment of a job no oracle finished."""
    d = Deployed.open()
    j = d.job(job_id)
    if j.status not in ("requested", "accepted"):
        raise StateRefused(f"job {job_id} is {j.status}; only an unfinished job can be reclaimed")
    if d.now() <= j.deadline:
        raise StateRefused(f"job {job_id} runs until {iso(j.deadline)}; reclaim it after that")
    me = d.signer(wallet)
    g = d.grant(j.grant_id)
    if me.address != g.consumer:
        raise NotYours(f"job {job_id} is not yours: grant {j.grant_id} belongs to {g.consumer}")
    r = d.send(me, d.c["Jobs"].functions.reclaim(job_id))
    click.echo(f"job {job_id} reclaimed: {j.amount} credited to your balance ('tds earnings withdraw'); tx {_tx(r)}")
