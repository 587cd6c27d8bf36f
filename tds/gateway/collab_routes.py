"""The gateway's collaboration routes (docs/collab.md): validate a description file against the
chain, and relay the consumer's own signed ``requestCollaboration`` after checking that it is
exactly the plan of the description it comes with (same description hash, same steps, grants,
nodes and parameter hashes, the price as value) — then the step documents go to the content store,
where the coordinating compute node and the providers' party nodes fetch them by hash."""
from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from web3.logs import DISCARD

from audit.events import plain
from chain import Space
from oracle.collab.checks import check
from oracle.collab.description import DescriptionError, Plan, canonical, load, plan
from tds.gateway.callers import Caller
from tds.gateway.errors import BadRequest, Forbidden, GatewayError
from tds.gateway.models import HEX
from tds.gateway.responses import AUTH_ERRORS, error_responses
from tds.gateway.signed import decode_raw_transaction, expect_call


class DescriptionInvalid(GatewayError):
    """The description does not validate, or cannot be submitted against the chain now."""

    status = 422


class DescriptionIn(BaseModel):
    description: dict[str, Any] | str = Field(description="a tds-collab/1 description (JSON object or YAML text)")


class CollabIn(DescriptionIn):
    rawTransaction: str = Field(pattern=HEX, max_length=2 * 64 * 1024 + 2,
                                description="the consumer's signed Collaborations.requestCollaboration")


class PlanOut(BaseModel):
    valid: bool
    descriptionHash: str
    steps: list[dict[str, Any]]
    paymentToken: str | None = None
    price: str | None = None


class CollabOut(BaseModel):
    txHash: str
    status: str
    block: int | None = None
    collaborationId: int | None = None
    price: str


def _plan(raw: dict[str, Any] | str) -> Plan:
    try:
        return plan(load(raw if isinstance(raw, dict) else str(raw) + ("\n" if "\n" not in str(raw) else "")))
    except DescriptionError as exc:
        raise DescriptionInvalid("description-invalid", "; ".join(exc.problems)) from None


def _checked(space: Space, p: Plan) -> Any:
    problems, quote = check(space, p)
    if problems:
        raise DescriptionInvalid("description-refused", "; ".join(problems))
    return quote


def _out(p: Plan, quote: Any) -> dict[str, Any]:
    return {"valid": True, "descriptionHash": "0x" + p.description_hash.hex(),
            "steps": [{"index": s.index, "id": s.step.id, "engine": s.step.engine, "after": list(s.after),
                       "grants": list(s.request.grant_ids), "output": s.step.output,
                       "paramsHash": "0x" + s.request.params_hash.hex()} for s in p.steps],
            "paymentToken": quote.payment_token, "price": str(quote.total)}


def collab_routes(state: Any, authenticated: Callable[..., Caller], content: Any) -> APIRouter:
    """POST /collaborations/validate and POST /collaborations."""
    router = APIRouter()

    @router.post("/collaborations/validate", tags=["collaborations"], response_model=PlanOut,
                 responses=error_responses(413, 422), summary="Check a collaboration description against the chain")
    def validate(payload: DescriptionIn) -> dict[str, Any]:
        """Shape, graph (unknown inputs, cycles), engine parameters, then grants, holders, identities,
        nodes and uses on chain; 422 lists every problem. Nothing is signed or stored."""
        r = state.reader()
        p = _plan(payload.description)
        return _out(p, _checked(Space(r.w3, r.deployment), p))

    @router.post("/collaborations", status_code=201, tags=["collaborations"], response_model=CollabOut,
                 responses=error_responses(*AUTH_ERRORS, 400, 409, 413, 422),
                 summary="Start a collaboration (the consumer's signed requestCollaboration)")
    def submit(payload: CollabIn, caller: Caller = Depends(authenticated)) -> dict[str, Any]:
        """Relay the consumer's own signed transaction once it matches the description exactly; the
        step documents are published to the content store first. The signer pays gas and the price."""
        r = state.reader()
        space = Space(r.w3, r.deployment)
        p = _plan(payload.description)
        quote = _checked(space, p)
        collab = r.contracts["Collaborations"]
        tx = decode_raw_transaction(payload.rawTransaction)
        args = expect_call(tx, collab, "requestCollaboration", r.chain_id, caller.account)
        if tx.sender != p.description.participants.consumer.address and \
                tx.sender.lower() != p.description.participants.consumer.address.lower():
            raise Forbidden("signer-not-consumer", f"the description names consumer "
                                                   f"{p.description.participants.consumer.address}; the "
                                                   f"transaction is signed by {tx.sender}")
        if bytes(args["descriptionHash"]) != p.description_hash:
            raise BadRequest("description-mismatch", "the transaction's descriptionHash is not this description's")
        want = [s.as_tuple() for s in p.requests()]
        fields = ("operation", "dependsOn", "output", "paramsHash", "grantIds", "nodes")
        decoded = [tuple(s[f] for f in fields) if isinstance(s, dict) else tuple(s) for s in args["steps"]]
        got = [(s[0], s[1], s[2], bytes(s[3]), list(s[4]), [a.lower() for a in s[5]]) for s in decoded]
        want = [(s[0], s[1], s[2], bytes(s[3]), list(s[4]), [a.lower() for a in s[5]]) for s in want]
        if got != want:
            raise BadRequest("steps-mismatch", "the transaction's steps are not this description's plan "
                                               "(order, grants, nodes or parameter hashes differ)")
        if args["stepTimeout"] != p.description.environment.step_timeout:
            raise BadRequest("steps-mismatch", "the transaction's stepTimeout is not the description's")
        if tx.value != quote.total:
            raise BadRequest("wrong-value", f"the collaboration costs {quote.total} wei; the transaction pays "
                                            f"{tx.value}")
        content.add_bytes(canonical(p.description.model_dump(mode="json")), cid_version=1)
        for s in p.steps:
            content.add_bytes(canonical(s.document), cid_version=1)
        receipt = state.relay().send_raw(tx)
        mined = receipt.get("status") is not None
        found = collab.events.CollaborationRequested().process_receipt(receipt, errors=DISCARD) if mined else []
        txh = receipt["transactionHash"]
        return {"txHash": txh.to_0x_hex() if hasattr(txh, "to_0x_hex") else plain(txh),
                "status": "mined" if mined else "pending", "block": receipt.get("blockNumber"),
                "collaborationId": found[0]["args"]["id"] if found else None, "price": str(quote.total)}

    return router
