"""The collaboration description file (YAML; JSON Schema in docs/collab.schema.json): environment,
participants and roles, data sources (asset, grant, columns), steps with their engine, inputs,
nodes and parameters. ``load`` parses and checks its shape; ``plan`` checks the graph (unknown
inputs, cycles, engine parameters) and turns it into the on-chain step requests, in dependency
order, with the hash of every step's parameter document. Pure: no chain, no I/O but the file."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chain.collab import StepRequest
from chain.errors import TdsError
from chain.ops import MPC, PSI

VERSION = "tds-collab/1"
ENGINE_OPERATION = {"psi": PSI, "mpc": MPC}
PSI_MODES = ("intersection", "cardinality", "union_size", "difference_size")
MPC_OPERATIONS = ("count", "sum", "mean", "variance", "stddev", "min", "max", "median", "percentiles",
                  "pearson", "crosstab")
MAX_STEPS = 16


class DescriptionError(TdsError):
    """The description does not validate; ``problems`` lists every finding as ``path: message``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the collaboration description does not validate:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Strict):
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="the participant's account")
    did: str | None = Field(default=None, description="its DID (checked against the chain's binding)")


class Participants(_Strict):
    consumer: Party = Field(description="the initiator: holds every grant, pays, receives the outputs")
    providers: dict[str, Party] = Field(min_length=1)
    compute_nodes: dict[str, Party] = Field(min_length=1, description="registered compute nodes")


class DataSource(_Strict):
    asset: int = Field(ge=1)
    provider: str = Field(description="key in participants.providers")
    grant: int = Field(ge=1, description="the consumer's grant on this asset")
    id_column: str | None = Field(default=None, description="the ID column PSI matches on")
    normalise: list[str | dict[str, Any]] = Field(default_factory=list, description="PSI normalisation rules")
    columns: list[str] = Field(default_factory=list, description="value columns MPC may read")


class Step(_Strict):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
    engine: Literal["psi", "mpc"]
    inputs: list[str] = Field(min_length=1, description="data sources and earlier steps this step reads")
    nodes: list[str] = Field(min_length=1, max_length=8, description="compute nodes; the first coordinates")
    params: dict[str, Any] = Field(default_factory=dict)
    output: bool = Field(default=False, description="delivered (sealed) to the consumer; else intermediate")


class Environment(_Strict):
    chain_id: int = Field(ge=1)
    step_timeout: int = Field(default=3600, ge=60, le=30 * 86400, description="seconds each step may run")


class Description(_Strict):
    version: Literal["tds-collab/1"]
    name: str = Field(min_length=1, max_length=80)
    environment: Environment
    participants: Participants
    data_sources: dict[str, DataSource] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    parameters: dict[str, Any] = Field(default_factory=dict, description="shared by every step")


@dataclass(frozen=True)
class PlannedStep:
    index: int  # on-chain step index (dependency order)
    step: Step
    sources: tuple[str, ...]  # data sources read, in input order
    after: tuple[int, ...]  # indexes of the steps read
    document: dict[str, Any]  # the step's parameter document (its sha2-256 is on chain)
    request: StepRequest


@dataclass(frozen=True)
class Plan:
    description: Description
    description_hash: bytes
    steps: list[PlannedStep]
    node_addresses: dict[str, str] = field(default_factory=dict)

    def step(self, step_id: str) -> PlannedStep:
        return next(s for s in self.steps if s.step.id == step_id)

    def requests(self) -> list[StepRequest]:
        return [s.request for s in self.steps]

    def uses_per_grant(self) -> dict[int, int]:
        """How many uses each grant must still have (one per step that reads it)."""
        n: dict[int, int] = {}
        for s in self.steps:
            for g in s.request.grant_ids:
                n[g] = n.get(g, 0) + 1
        return n


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the description file (published as docs/collab.schema.json)."""
    schema = Description.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://trusted-data-space.example/schemas/tds-collab-1.json"
    return schema


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load(source: str | Path | dict[str, Any]) -> Description:
    """Parse a description (a YAML/JSON path, YAML text or a dict); DescriptionError lists every problem."""
    if isinstance(source, dict):
        raw: Any = source
    else:
        text = Path(source).read_text() if isinstance(source, Path) or "\n" not in str(source) else str(source)
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DescriptionError([f"(file): not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise DescriptionError(["(file): the description must be a mapping at the top level"])
    try:
        return Description.model_validate(raw)
    except ValidationError as exc:
        raise DescriptionError([f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                                for e in exc.errors()]) from None


def description_hash(d: Description) -> bytes:
    """sha2-256 of the canonical JSON of the parsed description (what the chain records)."""
    return hashlib.sha256(canonical(d.model_dump(mode="json"))).digest()


def plan(d: Description) -> Plan:
    """Check the graph and parameters; return the steps in dependency order with their requests."""
    problems: list[str] = []
    steps = {s.id: s for s in d.steps}
    if len(steps) != len(d.steps):
        problems.append("steps: step ids must be unique")
    for name, src in d.data_sources.items():
        if src.provider not in d.participants.providers:
            problems.append(f"data_sources.{name}.provider: {src.provider!r} is not in participants.providers")
    for s in d.steps:
        for i in s.inputs:
            if i not in d.data_sources and i not in steps:
                problems.append(f"steps.{s.id}.inputs: {i!r} is neither a data source nor a step")
            if i == s.id:
                problems.append(f"steps.{s.id}.inputs: a step cannot read its own output")
        for n in s.nodes:
            if n not in d.participants.compute_nodes:
                problems.append(f"steps.{s.id}.nodes: {n!r} is not in participants.compute_nodes")
        if not any(i in d.data_sources for i in s.inputs):
            problems.append(f"steps.{s.id}.inputs: a step must read at least one data source (its grants)")
        problems += [f"steps.{s.id}.params: {p}" for p in _engine_problems(s, d)]
    order = _topological(d.steps, problems)
    if problems:
        raise DescriptionError(problems)
    index = {sid: i for i, sid in enumerate(order)}
    planned = []
    for sid in order:
        s = steps[sid]
        sources = tuple(i for i in s.inputs if i in d.data_sources)
        after = tuple(sorted(index[i] for i in s.inputs if i in steps))
        doc = _document(d, s, sources, after)
        req = StepRequest(operation=ENGINE_OPERATION[s.engine], depends_on=sum(1 << a for a in after),
                          output=s.output, params_hash=hashlib.sha256(canonical(doc)).digest(),
                          grant_ids=tuple(d.data_sources[n].grant for n in sources),
                          nodes=tuple(d.participants.compute_nodes[n].address for n in s.nodes))
        planned.append(PlannedStep(index[sid], s, sources, after, doc, req))
    return Plan(d, description_hash(d), planned,
                {n: p.address for n, p in d.participants.compute_nodes.items()})


def _topological(steps: list[Step], problems: list[str]) -> list[str]:
    """Kahn's order, keeping the file's order among ready steps; a cycle is reported by its members."""
    ids = [s.id for s in steps]
    deps = {s.id: {i for i in s.inputs if i in ids and i != s.id} for s in steps}
    order: list[str] = []
    while len(order) < len(ids):
        ready = [i for i in ids if i not in order and deps[i] <= set(order)]
        if not ready:
            stuck = [i for i in ids if i not in order]
            problems.append(f"steps: the inputs form a cycle among {', '.join(stuck)}")
            return order
        order.append(ready[0])
    return order


def _engine_problems(s: Step, d: Description) -> list[str]:
    p, out = s.params, []
    sources = [d.data_sources[i] for i in s.inputs if i in d.data_sources]
    if s.engine == "psi":
        mode = p.get("mode", "intersection")
        if mode not in PSI_MODES:
            out.append(f"mode {mode!r} is not one of {', '.join(PSI_MODES)}")
        if len(sources) < 2:
            out.append("PSI needs at least two data sources")
        for name in (i for i in s.inputs if i in d.data_sources):
            src = d.data_sources[name]
            if not src.id_column:
                out.append(f"data source {name!r} has no id_column to match on")
            out += [f"data source {name!r}: {m}" for m in _rule_problems(src.normalise)]
        unknown = set(p) - {"mode"}
    else:
        out += _mpc_problems(s, d)
        unknown = set(p) - set(MPC_PARAMS)
    out += [f"unknown parameter {k!r}" for k in sorted(unknown)]
    return out


MPC_PARAMS = ("operations", "column", "columns", "min_group", "layout", "group_by", "categories", "percentiles",
              "pearson")


def mpc_spec(params: dict[str, Any]) -> Any:
    """The engine's JointSpec for an MPC step's parameters (raises MpcSpecError when inconsistent).

    Horizontal: the statistics run on ``column`` over the union of the providers' rows (a source
    may name its own local column for it in ``columns``). Vertical: every column named in
    ``columns`` (per source) is a statistic column, over the rows an earlier PSI step aligned;
    ``group_by`` (with its public ``categories``) may be held by one provider and the values by
    another; ``pearson`` names two columns, possibly of two providers."""
    from offchain.mpc.spec import JointSpec

    layout = params.get("layout", "horizontal")
    group_by = params.get("group_by")
    if layout == "vertical":
        names = [c for cols in (params.get("columns") or {}).values()
                 for c in ([cols] if isinstance(cols, str) else cols)]
        columns = tuple(dict.fromkeys(c for c in names if c != group_by))
    else:
        columns = (params["column"],) if params.get("column") else ()
    return JointSpec(operations=tuple(params.get("operations") or ()), columns=columns, layout=layout,
                     group_by=group_by, categories=tuple(params.get("categories") or ()),
                     percentiles=tuple(params.get("percentiles") or ()),
                     pearson=tuple(params["pearson"]) if params.get("pearson") else None,
                     min_group=int(params.get("min_group", 1)))


def _mpc_problems(s: Step, d: Description) -> list[str]:
    """An MPC step's parameters against the engine's spec and the data sources' offered columns."""
    from offchain.collab.provider_node import contributed_columns
    from offchain.mpc.errors import MpcSpecError

    p, out = s.params, []
    ops = p.get("operations", [])
    if not ops or not isinstance(ops, list):
        return ["operations: name at least one of " + ", ".join(MPC_OPERATIONS)]
    out += [f"operations: unknown operation {o!r}" for o in ops if o not in MPC_OPERATIONS]
    mg = p.get("min_group", 1)
    if not isinstance(mg, int) or mg < 1:
        out.append(f"min_group must be a positive integer, got {mg!r}")
    layout = p.get("layout", "horizontal")
    if layout not in ("horizontal", "vertical"):
        out.append(f"layout {layout!r} is not horizontal or vertical")
    if not isinstance(p.get("columns", {}), dict):
        out.append("columns must map data source names to a column or a list of columns")
    if out:
        return out
    try:
        mpc_spec(p)
    except (MpcSpecError, TypeError, ValueError) as exc:
        out.append(str(exc))
    sources = [i for i in s.inputs if i in d.data_sources]
    out += [f"columns: {name!r} is not a data source this step reads" for name in (p.get("columns") or {})
            if name not in sources]
    holders: dict[str, list[str]] = {}
    for name in sources:
        offered = d.data_sources[name].columns
        mine = contributed_columns({"name": name}, p)
        for c in mine.values():
            holders.setdefault(c, []).append(name)
            if c not in offered:
                out.append(f"column {c!r} is not among data source {name!r}'s columns {offered}")
        if layout == "vertical" and not mine:
            out.append(f"data source {name!r} is read (its grant is used) but gives no column: name its "
                       f"columns in params.columns")
    if layout == "vertical":
        out += [f"column {c!r} is given by {len(h)} data sources ({', '.join(h)}); vertical columns need one "
                f"holder each" for c, h in holders.items() if len(h) > 1]
        for c in ([p["group_by"]] if p.get("group_by") else []) + list(p.get("pearson") or []):
            if c not in holders:
                out.append(f"column {c!r} is not given by any data source of this step")
        reads_psi = [i for i in s.inputs if any(t.id == i and t.engine == "psi" for t in d.steps)]
        if not reads_psi:
            out.append("layout 'vertical' needs the rows aligned by an earlier PSI step: add it to inputs")
        for step_id in reads_psi:
            matched = next(t for t in d.steps if t.id == step_id).inputs
            out += [f"data source {name!r} is not matched by PSI step {step_id!r}, so its rows cannot be aligned"
                    for name in sources if name not in matched]
        for name in sources:
            if not d.data_sources[name].id_column:
                out.append(f"data source {name!r} has no id_column to align its rows by")
    return out


def _rule_problems(rules: list[str | dict[str, Any]]) -> list[str]:
    from offchain.psi.normalize import validate_rules  # the PSI engine owns its rule vocabulary

    try:
        validate_rules(rules)
    except Exception as exc:  # noqa: BLE001 - the engine's own error text names the rule
        return [str(exc)]
    return []


def _document(d: Description, s: Step, sources: tuple[str, ...], after: tuple[int, ...]) -> dict[str, Any]:
    """The step's parameter document: everything a node needs to run it, hashed on chain."""
    return {
        "version": VERSION, "collaboration": d.name, "step": s.id, "engine": s.engine,
        "sources": {n: d.data_sources[n].model_dump(mode="json") for n in sources},
        "after": list(after), "params": s.params, "shared": d.parameters, "output": s.output,
    }
