"""The coordinator's side of the providers' party nodes over HTTP (``offchain.collab.party_api``):
:class:`RemoteParty` has the methods of an in-process ``ProviderNode`` (the coordinator's
``Party`` protocol), each call a DID-bound request (:mod:`did.bound_http`) answered only because
the chain names this node the step's coordinator. Refusals come back as the errors the
coordinator maps to ``failStep`` reasons: ``ContributionRefused`` (0x0111), ``PsiPeerLost``
(0x0112), :class:`PartyUnreachable` (0x0115: the node did not answer)."""
from __future__ import annotations

import base64
import time
from typing import Any

import requests

from chain import Space
from chain import collab as cc
from did.bound_http import BoundHttpClient, ServiceUnreachable, error_of
from did.identity import Identity
from did.sealing import ChainDirectory
from offchain.collab.provider_node import ContributionRefused
from offchain.psi.errors import PsiPeerLost, PsiProtocolError
from offchain.psi.party_run import PartyResult


class PartyUnreachable(ConnectionError):
    """A provider's party node did not answer (down, unreachable, or too slow)."""


class RemoteParty:
    """One provider's party node at ``url``, whose DID the chain binds to the provider (``did``)."""

    def __init__(self, url: str, did: str, coordinator: Identity, timeout: float = 60.0):
        self.url, self.did = url.rstrip("/"), did
        self.http = BoundHttpClient(self.url, coordinator, timeout)

    def _call(self, path: str, body: dict[str, Any], timeout: float | None = None) -> requests.Response:
        try:
            r = self.http.post(path, body, timeout)
        except ServiceUnreachable as exc:
            raise PartyUnreachable(f"party node of {self.did}: {exc}") from None
        if r.status_code in (200, 202):
            return r
        message, kind = error_of(r)
        if kind == "PsiPeerLost":
            peer = (r.json().get("peer") if r.headers.get("content-type", "").startswith("application/json")
                    else None) or "?"
            err = PsiPeerLost(peer, "")
            Exception.__init__(err, message)
            raise err
        if r.status_code in (502, 503, 504):
            raise PartyUnreachable(f"party node {self.url} ({self.did}) is unavailable: {message}")
        if kind in ("PsiProtocolError", "FrameTampered", "FrameReplayed", "FrameFromWrongSender"):
            raise PsiProtocolError(self.did, message)
        raise ContributionRefused(f"party node {self.url} refused ({r.status_code} {kind}): {message}")

    def _step(self, collab_id: int, step: int) -> str:
        return f"/v1/collab/{collab_id}/steps/{step}"

    def psi_prepare(self, collab_id: int, step: int, name: str, dids: list[str]) -> tuple[str, int]:
        out = self._call(self._step(collab_id, step) + "/psi/prepare", {"source": name, "dids": dids}).json()
        host, port = out["address"]
        return str(host), int(port)

    def psi_start(self, collab_id: int, step: int, addresses: dict[str, tuple[str, int]], timeout: float) -> None:
        self._call(self._step(collab_id, step) + "/psi/start",
                   {"addresses": {d: list(a) for d, a in addresses.items()}, "timeout": timeout})

    def psi_result(self, collab_id: int, step: int, timeout: float) -> PartyResult:
        """Poll the node until its run ends (or ``timeout`` seconds pass: PartyUnreachable)."""
        deadline = time.monotonic() + timeout
        while True:
            wait = max(0.0, min(10.0, deadline - time.monotonic()))
            r = self._call(self._step(collab_id, step) + "/psi/result", {"wait": wait}, timeout=wait + 30)
            if r.status_code == 200:
                out = r.json()
                return PartyResult(self.did, int(out["size"]), bytes.fromhex(out["transcript"]),
                                   {slot or None: base64.b64decode(b) for slot, b in out["sealed"].items()})
            if time.monotonic() >= deadline:
                raise PartyUnreachable(f"party node {self.url} ({self.did}) still runs PSI step {step} of "
                                       f"collaboration {collab_id} after {timeout:g} s")

    def keep_intersection(self, collab_id: int, step: int, sealed: bytes) -> int:
        out = self._call(self._step(collab_id, step) + "/intersection", {"sealed": base64.b64encode(sealed).decode()})
        return int(out.json()["kept"])

    def mpc_bundles(self, collab_id: int, step: int, name: str) -> list[bytes]:
        out = self._call(self._step(collab_id, step) + "/mpc/bundles", {"source": name}).json()
        return [base64.b64decode(b) for b in out["bundles"]]

    def forget(self, collab_id: int) -> None:
        self._call(f"/v1/collab/{collab_id}/forget", {})


def registered_parties(space: Space, coordinator: Identity, timeout: float = 60.0) -> dict[str, RemoteParty]:
    """The party nodes the NodeRegistry lists (active, kind PARTY, an http(s) endpoint), by the
    provider account each serves; the DID expected of each is the one the chain binds to it."""
    directory = ChainDirectory(space.c["IdentityRegistry"], space.deployment["block"])
    out = {}
    for record in cc.list_nodes(space):
        if record.kind == cc.NodeKind.PARTY and record.active and record.endpoint.startswith(("http://", "https://")):
            did, _ = directory.resolve(record.address)
            out[record.address] = RemoteParty(record.endpoint, did, coordinator, timeout)
    return out
