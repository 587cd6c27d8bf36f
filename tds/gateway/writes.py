"""The gateway's write routes: they relay what participants signed themselves (raw transactions:
the signer pays gas; grant offers: the gateway's relayer pays) after checking who signed what.

A job's parameters go to the content store only once its ``requestJob`` transaction has been
simulated and accepted by the node, and they are unpinned again if it is mined but reverts; a
grant offer is simulated right before the relayer sends it, within the holder's relay budget
(:mod:`tds.gateway.relay`)."""
from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Depends
from web3.logs import DISCARD

from audit.events import plain
from tds.gateway.callers import Caller
from tds.gateway.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unavailable
from tds.gateway.models import ApplicationOut, GrantIn, GrantOut, JobIn, JobOut, RawTransactionIn
from tds.gateway.responses import AUTH_ERRORS, error_responses
from tds.gateway.signed import decode_raw_transaction, expect_call, grant_terms, recover_grant_signer


def write_routes(state: Any, authenticated: Callable[..., Caller], content: Any) -> APIRouter:
    """POST /applications, /grants and /jobs over ``state`` (the chain), with ``content`` the store."""
    router = APIRouter()

    def relayed(receipt: dict[str, Any], paid_by: str) -> dict[str, Any]:
        tx = receipt["transactionHash"]
        mined = receipt.get("status") is not None
        return {"txHash": tx.to_0x_hex() if hasattr(tx, "to_0x_hex") else plain(tx),
                "status": "mined" if mined else "pending", "block": receipt.get("blockNumber"),
                "gasUsed": receipt.get("gasUsed"), "paidBy": paid_by}

    def event_arg(contract: Any, event: str, receipt: dict[str, Any], arg: str) -> Any:
        if receipt.get("status") is None:
            return None
        found = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return found[0]["args"][arg] if found else None

    @router.post("/applications", status_code=201, tags=["authorizations"], response_model=ApplicationOut,
              responses=error_responses(*AUTH_ERRORS, 400, 409, 413), summary="Apply for an asset (signed applyFor)")
    def post_application(payload: RawTransactionIn, caller: Caller = Depends(authenticated)) -> dict[str, Any]:
        """Relay the caller's own signed ``Authorizations.applyFor`` transaction. It must target this
        chain's Authorizations contract and be signed by the account the caller's DID is bound to;
        it is simulated first (a revert is a 409 with the reason), then forwarded. The signer pays gas."""
        r = state.reader()
        auth = r.contracts["Authorizations"]
        tx = decode_raw_transaction(payload.rawTransaction)
        args = expect_call(tx, auth, "applyFor", r.chain_id, caller.account)
        receipt = state.relay().send_raw(tx)
        return {**relayed(receipt, tx.sender), "assetId": args["assetId"], "consumer": tx.sender,
                "applicationId": event_arg(auth, "ApplicationSubmitted", receipt, "applicationId")}

    @router.post("/grants", status_code=201, tags=["authorizations"], response_model=GrantOut,
              responses=error_responses(*AUTH_ERRORS, 400, 404, 409, 413), summary="Relay a holder's signed grant offer")
    def post_grant(payload: GrantIn, caller: Caller = Depends(authenticated)) -> dict[str, Any]:
        """Check a certificate holder's EIP-712 grant offer — it recovers to the asset's current
        holder, who is the authenticated caller; the deadline has not passed; the nonce is the next
        one of its key (not used, not cancelled) — and send ``grantBySignature`` from the gateway's
        relayer, which pays gas: within the holder's relay budget (429 ``relay-budget-*``) and only
        if a simulation against the latest block passes (else a 409 naming the contract error,
        e.g. ``offer-outdated`` when the certificate changed hands since the offer was signed)."""
        r = state.reader()
        auth, assets = r.contracts["Authorizations"], r.contracts["AssetRegistry"]
        terms = grant_terms(payload.terms.model_dump())
        try:
            signature = bytes.fromhex(payload.signature.removeprefix("0x"))
        except ValueError:
            raise BadRequest("invalid-signature", "signature is not hex") from None
        if not r.select("AssetRegistry", "AssetRegistered", assetId=terms.assetId):
            raise NotFound("unknown-asset", f"unknown asset {terms.assetId}: no AssetRegistered event for it")
        holder = assets.functions.termsOf(terms.assetId).call()[0]
        signer = recover_grant_signer(terms, payload.nonce, payload.deadline, signature, r.chain_id, auth.address)
        if signer != holder:
            raise Forbidden("signer-not-holder", f"the offer is signed by {signer}, but asset {terms.assetId} is "
                                                 f"held by {holder}; only the holder can grant it")
        if signer != caller.account:
            raise Forbidden("signer-not-caller", f"the offer is signed by {signer}, but the authenticated caller's "
                                                 f"DID is bound on chain to {caller.account}")
        now = r.w3.eth.get_block("latest")["timestamp"]
        if payload.deadline < now:
            raise Conflict("signature-expired", f"the offer's deadline {payload.deadline} has passed "
                                                 f"(chain time {now}); sign a new one")
        key, seq = payload.nonce >> 64, payload.nonce & (2 ** 64 - 1)
        if key >= 2 ** 192:
            raise BadRequest("invalid-nonce", "nonce key must fit 192 bits")
        expected = auth.functions.nonces(holder, key).call() & (2 ** 64 - 1)  # packed: key << 64 | sequence
        if seq < expected and r.select("Authorizations", "OfferCancelled", holder=holder, nonce=payload.nonce):
            raise Conflict("offer-cancelled", f"{holder} cancelled this offer (nonce {payload.nonce:#x}) on chain; "
                                              "it can no longer be submitted")
        if seq != expected:
            raise Conflict("nonce-used" if seq < expected else "nonce-ahead",
                            f"nonce sequence {seq} of key {key:#x}: the next one for {holder} is {expected}")
        receipt = state.relay().send_as_relayer(
            auth.functions.grantBySignature(terms.as_tuple(), payload.nonce, payload.deadline, signature), holder)
        return {**relayed(receipt, state.relay().relayer.address), "assetId": terms.assetId,
                "consumer": terms.consumer, "provider": holder,
                "grantId": event_arg(auth, "GrantIssued", receipt, "grantId")}

    @router.post("/jobs", status_code=201, tags=["jobs"], response_model=JobOut,
              responses=error_responses(*AUTH_ERRORS, 400, 409, 413), summary="Request a job (signed requestJob + params)")
    def post_job(payload: JobIn, caller: Caller = Depends(authenticated)) -> dict[str, Any]:
        """Relay the caller's own signed ``Jobs.requestJob`` transaction (it pays gas and the price)
        and store the job's parameters in the content store (CIDv1 raw of their canonical JSON,
        which must hash to the transaction's ``paramsHash``) — only once the transaction has been
        simulated and the node has accepted it; if it is then mined but reverts, the parameters
        are unpinned again (unless another job on chain uses the same ones). Posting the same
        signed transaction again does not send it twice: it only stores the parameters."""
        from chain.params import ParamsError, canonical_params, is_sealed, params_cid, params_hash

        r = state.reader()
        jobs = r.contracts["Jobs"]
        tx = decode_raw_transaction(payload.rawTransaction)
        args = expect_call(tx, jobs, "requestJob", r.chain_id, caller.account)
        try:
            data = canonical_params(payload.params)
        except ParamsError as exc:
            raise PayloadTooLarge("params-too-large", str(exc)) from None
        if not is_sealed(payload.params):
            raise BadRequest("params-not-sealed", "job parameters must be sealed to the provider's key service "
                                                  "(chain.params.seal_params, format tds-params/1): the content "
                                                  "store is shared and never holds a query in clear")
        digest = params_hash(data)
        if digest != bytes(args["paramsHash"]):
            raise BadRequest("params-mismatch", f"the params hash to 0x{digest.hex()} (sha-256 of canonical JSON), "
                                                f"the transaction commits to 0x{bytes(args['paramsHash']).hex()}")
        if content is None:
            raise Unavailable("store-unavailable", "this gateway has no content store for job parameters")
        cid = params_cid(digest)
        relay = state.relay()
        # simulated and accepted by the node before anything is stored; the very same signed
        # request again (its parameters could not be stored the first time) is not sent twice
        tx_hash = tx.hash if relay.known(tx) else relay.submit_raw(tx)
        sent = "0x" + tx_hash.hex()
        try:
            stored = content.add_bytes(data, cid_version=1)
        except Exception as exc:
            raise Unavailable("store-unavailable", f"transaction {sent} was sent, but the content store refused its "
                                                   f"parameters ({exc}); POST the same request again to store them"
                              ) from None
        if stored != cid:
            raise Unavailable("store-unavailable", f"the content store answered CID {stored}, expected {cid} "
                                                   f"(transaction {sent} was sent)")
        try:
            receipt = relay.wait(tx_hash)
        except Conflict:
            unpin_unused(state.reader(), content, cid, digest)
            raise
        return {**relayed(receipt, tx.sender), "grantId": args["grantId"], "paramsHash": "0x" + digest.hex(),
                "paramsCid": cid, "jobId": event_arg(jobs, "JobRequested", receipt, "jobId")}

    return router


def unpin_unused(reader: Any, content: Any, cid: str, digest: bytes) -> bool:
    """Unpin the parameters ``cid`` of a job request that was mined but reverted, unless a job on
    chain was requested with the same parameters. True if unpinned."""
    if reader.select("Jobs", "JobRequested", paramsHash=digest) or not hasattr(content, "unpin"):
        return False
    try:
        content.unpin(cid)
    except Exception:  # not pinned, or the store is gone: nothing more to undo
        return False
    return True
