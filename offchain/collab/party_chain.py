"""What a provider's party node asks the chain (and the content store) before it contributes —
so it never takes the coordinator's word for what to share, with whom, or under which keys:

* the step's document, fetched by the ``paramsHash`` on chain and checked against it (which data
  source, which columns, which engine parameters);
* ``checkStep`` for its grant (open, in time, a live grant consumed by that very step);
* the step's coordinator (``nodes[0]``: the only caller a party node answers), its compute nodes'
  DIDs and X25519 keys (from the NodeRegistry, for MPC bundles), the consumer's DID and key (the
  collaboration's initiator), each PSI peer's key (the DID bound to the holder of a step's asset).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from chain import Space
from chain import collab as cc
from chain.params import params_cid
from did.registry import IdentityRegistryClient
from did.sealing import ChainDirectory
from offchain.errors import DataPlaneError
from offchain.mpc.sharing import NodeKey


class StepDocumentInvalid(DataPlaneError):
    """The step's document in the store does not match the hash on chain, or is not JSON."""


class PartyChain:
    """The chain (and store) as one provider's party node reads them."""

    def __init__(self, space: Space, store: Any):
        self.space, self.store = space, store
        self.registry = IdentityRegistryClient(space.w3, space.c["IdentityRegistry"], space.deployment["block"])
        self.directory = ChainDirectory(space.c["IdentityRegistry"], space.deployment["block"])
        self._documents: dict[bytes, dict[str, Any]] = {}

    def session(self, collab_id: int, step: int) -> str:
        """The engine session id of a step (the same on every node: chain, collaboration, step)."""
        return f"c{self.space.w3.eth.chain_id}-{collab_id}-s{step}"

    def check_step(self, collab_id: int, step: int, grant_id: int) -> None:
        """Raise (naming the chain's custom error) unless ``grant_id`` may contribute to the step now."""
        cc.check_step(self.space, collab_id, step, grant_id)

    def document(self, collab_id: int, step: int) -> dict[str, Any]:
        """The step's parameter document, by the hash the chain holds for it."""
        digest = cc.step_of(self.space, collab_id, step).params_hash
        if digest not in self._documents:
            data = self.store.cat(params_cid(digest))
            if hashlib.sha256(data).digest() != digest:
                raise StepDocumentInvalid(f"step {step} of collaboration {collab_id}: the stored document does "
                                          f"not match paramsHash {digest.hex()} on chain")
            try:
                self._documents[digest] = json.loads(data)
            except ValueError:
                raise StepDocumentInvalid(f"step {step} of collaboration {collab_id}: the document is not JSON") \
                    from None
        return self._documents[digest]

    def coordinator(self, collab_id: int, step: int) -> str:
        """The account that coordinates the step (its first node)."""
        nodes = cc.step_of(self.space, collab_id, step).nodes
        return nodes[0] if nodes else ""

    def coordinators(self, collab_id: int) -> set[str]:
        """The accounts coordinating any step of the collaboration."""
        return {s.nodes[0] for s in cc.steps_of(self.space, collab_id) if s.nodes}

    def account_of(self, did: str) -> str | None:
        return self.registry.account_of_did(did)

    def running(self, collab_id: int) -> bool:
        return cc.collaboration(self.space, collab_id)["status"] == cc.CollabStatus.RUNNING

    def consumer(self, collab_id: int) -> tuple[str, bytes]:
        """The initiator's DID and X25519 key: the only one an output is sealed to."""
        return self.directory.resolve(cc.collaboration(self.space, collab_id)["initiator"])

    def compute_nodes(self, collab_id: int, step: int) -> list[NodeKey]:
        """The step's compute nodes, in order, with the DID and key the chain binds to each now."""
        return [NodeKey(*self.directory.resolve(a)) for a in cc.step_of(self.space, collab_id, step).nodes]

    def holder_did(self, asset: int) -> tuple[str, bytes]:
        """The DID and X25519 key of the holder of ``asset``."""
        return self.directory.resolve(self.space.c["AssetRegistry"].functions.ownerOf(int(asset)).call())
