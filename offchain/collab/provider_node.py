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
        """Secret-share the columns this data source gives the step (``contributed_columns``).

        Horizontal: the rows matched by the earlier PSI steps in ``after`` (all rows if none), in
        table order. Vertical: exactly the matched rows, one per ID, ordered by the normalised ID,
        so every provider's columns line up row by row without anyone sending an ID."""
        rows = self._admit(collab_id, step, source)
        wanted = contributed_columns(source, params)
        if not wanted:
            raise ContributionRefused(f"{self.identity.name}: the step takes no column from data source "
                                      f"{source.get('name')!r}")
        offered = source.get("columns", [])
        for local in wanted.values():
            if rows and local not in rows[0]:
                raise ContributionRefused(f"{self.identity.name}: asset {source['asset']} has no column {local!r}")
            if local not in offered:
                raise ContributionRefused(f"{self.identity.name}: column {local!r} is not offered by the data source "
                                          f"(columns {offered})")
        matched = [self.matched[(collab_id, a)] for a in after if (collab_id, a) in self.matched]
        if params.get("layout", "horizontal") == "vertical":
            selected = self._aligned(rows, source, matched)
        else:
            selected = rows
            for ids in matched:
                keys = normalize([str(r[source["id_column"]]) for r in selected], source.get("normalise", []))
                selected = [r for r, k in zip(selected, keys) if k in ids]
        group_by = params.get("group_by")
        columns: dict[str, list[Any]] = {}
        for shared, local in wanted.items():
            if shared == group_by:
                columns[shared] = [str(r[local]) for r in selected]
            else:
                columns[shared] = [_number(r[local], local, self.identity.name) for r in selected]
        cats = {group_by: [str(c) for c in params.get("categories", [])]} if group_by in columns else None
        return share_inputs(columns, nodes, self.identity, session, categories=cats)

    def _aligned(self, rows: list[dict[str, Any]], source: dict[str, Any],
                 matched: list[set[str]]) -> list[dict[str, Any]]:
        """The rows whose normalised ID every earlier PSI step matched, sorted by that ID."""
        if not matched:
            raise ContributionRefused(f"{self.identity.name}: a vertical step needs the IDs an earlier PSI step "
                                      f"matched, and this node holds none for it")
        common = set.intersection(*matched)
        keys = normalize([str(r[source["id_column"]]) for r in rows], source.get("normalise", []))
        by_key: dict[str, dict[str, Any]] = {}
        for r, k in zip(rows, keys):
            if k in common:
                if k in by_key:
                    raise ContributionRefused(f"{self.identity.name}: ID {k!r} appears twice in asset "
                                              f"{source['asset']}; vertical rows must be unique per ID")
                by_key[k] = r
        if len(by_key) != len(common):
            raise ContributionRefused(f"{self.identity.name}: {len(common) - len(by_key)} matched ID(s) are no "
                                      f"longer in asset {source['asset']}; the rows cannot be aligned")
        return [by_key[k] for k in sorted(by_key)]

    def forget(self, collab_id: int) -> None:
        """Drop every intermediate result of a collaboration (it completed or was terminated)."""
        for key in [k for k in self.matched if k[0] == collab_id]:
            del self.matched[key]


def contributed_columns(source: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    """Shared column name -> this source's local column, for an MPC step's parameters.

    Vertical: the names listed for this source in ``params.columns``. Horizontal: ``column``
    (read from the local column ``params.columns[source]`` when given), the Pearson pair and the
    group-by key, which every provider holds for its own rows."""
    given = (params.get("columns") or {}).get(source.get("name", ""))
    if params.get("layout", "horizontal") == "vertical":
        names = [given] if isinstance(given, str) else list(given or [])
        return {c: c for c in names}
    out: dict[str, str] = {}
    if params.get("column"):
        out[params["column"]] = given if isinstance(given, str) else params["column"]
    for c in list(params.get("pearson") or []) + ([params["group_by"]] if params.get("group_by") else []):
        out.setdefault(c, c)
    return out


def _number(value: Any, column: str, who: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ContributionRefused(f"{who}: column {column!r} holds {value!r}, not a number") from None
