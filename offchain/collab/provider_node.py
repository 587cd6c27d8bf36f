"""A provider's party node: the only place its plaintext rows are read for a collaboration.

It never takes the coordinator's word for what to share: for every call it reads the step's
document by the hash on chain (``PartyChain``), asks the chain ``checkStep`` for its grant, and
takes the peers', compute nodes' and consumer's keys from the chain. Then it gives the engine
exactly what the document names — its side of the PSI protocol, run here over its own endpoint;
the columns this data source gives an MPC step, secret-shared to the step's compute nodes.
Intermediate PSI results it receives stay here, keyed by collaboration and step, and are dropped
when the collaboration ends (``forget``). The same object serves a coordinator in-process or
behind the party node's HTTP API (``offchain.collab.party_api``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from did.identity import Identity
from offchain.errors import DataPlaneError
from offchain.mpc.sharing import NodeKey, share_inputs
from offchain.psi.channel import TcpEndpoint
from offchain.psi.normalize import normalize
from offchain.psi.party_run import PartyResult, PartyRun
from offchain.psi.session import PsiParty, open_intersection


class ContributionRefused(DataPlaneError):
    """The provider's node will not contribute to this step (it names why)."""


class StepChain(Protocol):
    """What the node reads from the chain (``offchain.collab.party_chain.PartyChain``)."""

    def session(self, collab_id: int, step: int) -> str: ...
    def check_step(self, collab_id: int, step: int, grant_id: int) -> None: ...
    def document(self, collab_id: int, step: int) -> dict[str, Any]: ...
    def consumer(self, collab_id: int) -> tuple[str, bytes]: ...
    def compute_nodes(self, collab_id: int, step: int) -> list[NodeKey]: ...
    def holder_did(self, asset: int) -> tuple[str, bytes]: ...


@dataclass
class ProviderNode:
    """One provider: its identity, its assets' rows (``asset id -> list of row dicts``), the chain
    it checks, and the host its PSI endpoint listens on."""

    identity: Identity
    tables: dict[int, list[dict[str, Any]]]
    chain: StepChain
    psi_host: str = "127.0.0.1"
    matched: dict[tuple[int, int], set[str]] = field(default_factory=dict)  # (collab, psi step) -> ids
    sessions: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # (collab, psi step) -> party DIDs
    runs: dict[tuple[int, int], PartyRun] = field(default_factory=dict)

    @property
    def did(self) -> str:
        return self.identity.did

    def _source(self, collab_id: int, step: int, name: str, engine: str) -> tuple[dict[str, Any], dict[str, Any],
                                                                                     list[dict[str, Any]]]:
        """The step document, the named data source in it (with its name) and its rows, once the
        chain confirms the grant may contribute."""
        try:
            doc = self.chain.document(collab_id, step)
        except Exception as exc:  # noqa: BLE001 - no document, no contribution
            raise ContributionRefused(f"{self.identity.name}: no valid document for step {step} of collaboration "
                                      f"{collab_id}: {exc}") from None
        if doc.get("engine") != engine:
            raise ContributionRefused(f"{self.identity.name}: step {step} of collaboration {collab_id} is a "
                                      f"{doc.get('engine')!r} step, not {engine!r}")
        source = (doc.get("sources") or {}).get(name)
        if source is None:
            raise ContributionRefused(f"{self.identity.name}: step {step} of collaboration {collab_id} reads no "
                                      f"data source {name!r}")
        source = dict(source, name=name)
        asset = int(source["asset"])
        if asset not in self.tables:
            raise ContributionRefused(f"{self.identity.name} holds no asset {asset}")
        try:
            self.chain.check_step(collab_id, step, int(source["grant"]))
        except Exception as exc:  # noqa: BLE001 - the chain's refusal, named
            raise ContributionRefused(f"{self.identity.name} refuses step {step} of collaboration {collab_id}: "
                                      f"the chain says {exc}") from None
        return doc, source, self.tables[asset]

    # -- PSI: this provider's side runs here; the coordinator relays addresses and results ----------
    def psi_prepare(self, collab_id: int, step: int, name: str, dids: list[str]) -> tuple[str, int]:
        """Open this party's PSI endpoint for the step (party order ``dids``: the first leads);
        returns the address the peers dial."""
        doc, source, rows = self._source(collab_id, step, name, "psi")
        column = source.get("id_column")
        if not column or (rows and column not in rows[0]):
            raise ContributionRefused(f"{self.identity.name}: asset {source['asset']} has no column {column!r}")
        holders = dict(self.chain.holder_did(int(s["asset"])) for s in doc["sources"].values())
        if sorted(dids) != sorted(holders) or self.did not in holders:
            raise ContributionRefused(f"{self.identity.name}: the session's parties {dids} are not the holders of "
                                      f"the step's assets {sorted(holders)}")
        self._drop_run(collab_id, step)
        session = self.chain.session(collab_id, step)
        mode = doc["params"].get("mode", "intersection") if doc.get("output") else "intersection"
        party = PsiParty(self.identity, [str(r[column]) for r in rows], list(source.get("normalise", [])))
        peers = {d: k for d, k in holders.items() if d != self.did}
        endpoint = TcpEndpoint(self.identity, session, peers, host=self.psi_host)
        try:
            run = PartyRun(party, dids.index(self.did), dids, session, mode, endpoint)
        except BaseException:
            endpoint.close()
            raise
        self.runs[(collab_id, step)], self.sessions[(collab_id, step)] = run, list(dids)
        return run.address

    def psi_start(self, collab_id: int, step: int, addresses: dict[str, tuple[str, int]], timeout: float) -> None:
        """Run the prepared party; the leader seals the intersection to the consumer (an output
        step) or to every party of the session (an intermediate step), keys from the chain."""
        run = self._run(collab_id, step)
        seal_to: list[tuple[str | None, str, bytes]] = []
        if run.index == 0 and run.mode == "intersection":
            if self.chain.document(collab_id, step).get("output"):
                did, key = self.chain.consumer(collab_id)
                seal_to = [(None, did, key)]
            else:
                keys = dict(self.chain.holder_did(int(s["asset"]))
                            for s in self.chain.document(collab_id, step)["sources"].values())
                seal_to = [(d, d, keys[d]) for d in run.dids]
        run.start({d: (str(a[0]), int(a[1])) for d, a in addresses.items()}, timeout, seal_to)

    def psi_result(self, collab_id: int, step: int, timeout: float) -> PartyResult:
        """Wait for this party's run (its error, or its result)."""
        run = self._run(collab_id, step)
        try:
            return run.result(timeout)
        finally:
            if run.done:
                self.runs.pop((collab_id, step), None)

    def _run(self, collab_id: int, step: int) -> PartyRun:
        run = self.runs.get((collab_id, step))
        if run is None:
            raise ContributionRefused(f"{self.identity.name}: no PSI run prepared for step {step} of collaboration "
                                      f"{collab_id}")
        return run

    def _drop_run(self, collab_id: int, step: int) -> None:
        run = self.runs.pop((collab_id, step), None)
        if run is not None:
            run.close()

    def keep_intersection(self, collab_id: int, step: int, sealed: bytes) -> int:
        """Open the intersection an intermediate PSI step's leader sealed to this provider; returns its size."""
        dids = self.sessions.get((collab_id, step))
        if not dids:
            raise ContributionRefused(f"{self.identity.name}: it took no part in PSI step {step} of collaboration "
                                      f"{collab_id}")
        ids = open_intersection(self.identity, sealed, dids[0])  # only the session's leader may have sealed it
        self.matched[(collab_id, step)] = set(ids)
        return len(ids)

    # -- MPC -------------------------------------------------------------------------------------------
    def mpc_bundles(self, collab_id: int, step: int, name: str) -> list[bytes]:
        """Secret-share the columns data source ``name`` gives the step (``contributed_columns``),
        one bundle per compute node of the step (keys from the chain).

        Horizontal: the rows matched by the earlier PSI steps in ``after`` (all rows if none), in
        table order. Vertical: exactly the matched rows, one per ID, ordered by the normalised ID,
        so every provider's columns line up row by row without anyone sending an ID."""
        doc, source, rows = self._source(collab_id, step, name, "mpc")
        params, after = doc["params"], list(doc.get("after", []))
        nodes, session = self.chain.compute_nodes(collab_id, step), self.chain.session(collab_id, step)
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

    def sweep(self, ended: Any) -> list[int]:
        """Forget every collaboration for which ``ended(collab_id)`` is true (a party node runs
        this periodically, so it cleans up even if no coordinator tells it to)."""
        held = sorted({k[0] for k in (*self.runs, *self.matched, *self.sessions)})
        gone = [c for c in held if ended(c)]
        for c in gone:
            self.forget(c)
        return gone

    def forget(self, collab_id: int) -> None:
        """Drop every intermediate result and open PSI run of a collaboration (it ended)."""
        for key in [k for k in self.runs if k[0] == collab_id]:
            self._drop_run(*key)
        for table in (self.matched, self.sessions):
            for key in [k for k in table if k[0] == collab_id]:
                del table[key]


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
