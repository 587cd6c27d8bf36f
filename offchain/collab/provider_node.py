"""A provider's party node: the only place its plaintext rows are read for a collaboration.

Before it contributes to a step it asks the chain (``Collaborations.checkStep``) whether that step
is open, not past its deadline, and consumed a live grant of this provider's asset; then it gives
the engine exactly what the step's parameter document names — the normalised ID column for PSI,
the named value column (restricted to the rows an earlier PSI step matched) secret-shared to the
compute nodes for MPC. Intermediate PSI results it receives stay here, keyed by collaboration and
step, and are dropped when the collaboration ends (``forget``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from did.identity import Identity
from offchain.errors import DataPlaneError
from offchain.mpc.sharing import NodeKey, share_inputs
from offchain.psi.normalize import normalize
from offchain.psi.session import PsiParty, open_intersection

# (collaboration id, step index, grant id) -> None, or raises: the chain's checkStep
StepCheck = Callable[[int, int, int], None]


class ContributionRefused(DataPlaneError):
    """The provider's node will not contribute to this step (it names why)."""


@dataclass
class ProviderNode:
    """One provider: its identity, its assets' rows (``asset id -> list of row dicts``) and the
    chain check it makes before every contribution."""

    identity: Identity
    tables: dict[int, list[dict[str, Any]]]
    check_step: StepCheck
    matched: dict[tuple[int, int], set[str]] = field(default_factory=dict)  # (collab, psi step) -> ids

    @property
    def did(self) -> str:
        return self.identity.did

    def _admit(self, collab_id: int, step: int, source: dict[str, Any]) -> list[dict[str, Any]]:
        asset = int(source["asset"])
        if asset not in self.tables:
            raise ContributionRefused(f"{self.identity.name} holds no asset {asset}")
        try:
            self.check_step(collab_id, step, int(source["grant"]))
        except Exception as exc:  # noqa: BLE001 - the chain's refusal, named
            raise ContributionRefused(f"{self.identity.name} refuses step {step} of collaboration {collab_id}: "
                                      f"the chain says {exc}") from None
        return self.tables[asset]

    def psi_party(self, collab_id: int, step: int, source: dict[str, Any]) -> PsiParty:
        """This provider's side of a PSI step over ``source`` (a data source of the step document)."""
        rows = self._admit(collab_id, step, source)
        column = source.get("id_column")
        if not column or (rows and column not in rows[0]):
            raise ContributionRefused(f"{self.identity.name}: asset {source['asset']} has no column {column!r}")
        return PsiParty(self.identity, [str(r[column]) for r in rows], list(source.get("normalise", [])))

    def keep_intersection(self, collab_id: int, step: int, sealed: bytes, leader_did: str) -> int:
        """Open the intersection an earlier PSI step sealed to this provider; returns its size."""
        ids = open_intersection(self.identity, sealed, leader_did)
        self.matched[(collab_id, step)] = set(ids)
        return len(ids)

    def mpc_bundles(self, collab_id: int, step: int, source: dict[str, Any], params: dict[str, Any],
                    after: list[int], nodes: list[NodeKey], session: str) -> list[bytes]:
        """Secret-share the step's value column (rows matched by the earlier PSI steps in ``after``)."""
        rows = self._admit(collab_id, step, source)
        column = params.get("column") or (params.get("columns") or {}).get(source.get("name", ""))
        if not column or (rows and column not in rows[0]):
            raise ContributionRefused(f"{self.identity.name}: asset {source['asset']} has no column {column!r}")
        if column not in source.get("columns", []):
            raise ContributionRefused(f"{self.identity.name}: column {column!r} is not offered by the data source "
                                      f"(columns {source.get('columns', [])})")
        selected = rows
        for earlier in after:
            ids = self.matched.get((collab_id, earlier))
            if ids is None:
                continue  # an MPC step before: nothing to select by
            keys = normalize([str(r[source["id_column"]]) for r in selected], source.get("normalise", []))
            selected = [r for r, k in zip(selected, keys) if k in ids]
        values = [float(r[column]) for r in selected]
        return share_inputs({column: values}, nodes, self.identity, session)

    def forget(self, collab_id: int) -> None:
        """Drop every intermediate result of a collaboration (it completed or was terminated)."""
        for key in [k for k in self.matched if k[0] == collab_id]:
            del self.matched[key]
