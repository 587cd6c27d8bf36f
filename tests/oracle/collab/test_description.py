"""The collaboration description file: shape, graph (unknown inputs, cycles, order), engine
parameters, hashes, and the JSON Schema published in docs/ (pure: no chain)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from chain.ops import MPC, PSI
from oracle.collab.description import DescriptionError, canonical, json_schema, load, plan

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs/examples/collab-joint-stats.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(DescriptionError) as err:
        plan(load(raw))
    return err.value.problems


def test_example_plans_in_dependency_order():
    p = plan(load(EXAMPLE))
    assert [s.step.id for s in p.steps] == ["match", "stats", "spread"]
    match, stats, spread = p.steps
    assert match.request.operation == PSI and stats.request.operation == MPC
    assert match.request.depends_on == 0 and stats.request.depends_on == 0b1 and spread.request.depends_on == 0b10
    assert stats.request.grant_ids == (1, 2, 3) and stats.request.output and not match.request.output
    assert stats.request.nodes[0] == p.description.participants.compute_nodes["node-1"].address
    assert p.uses_per_grant() == {1: 3, 2: 3, 3: 3}
    assert len(p.description_hash) == 32 and all(len(s.request.params_hash) == 32 for s in p.steps)


def test_steps_listed_out_of_order_are_reordered_and_hashes_are_stable():
    raw = example()
    raw["steps"] = list(reversed(raw["steps"]))
    p = plan(load(raw))
    assert [s.step.id for s in p.steps] == ["match", "stats", "spread"]
    assert plan(load(example())).steps[1].request.params_hash == p.steps[1].request.params_hash
    changed = example()
    changed["steps"][1]["params"]["min_group"] = 5
    assert plan(load(changed)).steps[1].request.params_hash != p.steps[1].request.params_hash


def test_a_cycle_is_refused_naming_its_steps():
    raw = example()
    raw["steps"][0]["inputs"].append("spread")
    found = problems_of(raw)
    assert any("cycle among match, stats, spread" in m for m in found), found


def test_shape_problems_are_all_listed_with_their_path():
    raw = example()
    raw["steps"][0]["engine"] = "magic"
    raw["environment"]["surprise"] = 1
    del raw["name"]
    with pytest.raises(DescriptionError) as err:
        load(raw)
    text = "\n".join(err.value.problems)
    assert "steps.0.engine" in text and "environment.surprise" in text and "name" in text


def test_graph_and_engine_problems():
    raw = example()
    raw["steps"][1]["inputs"].append("nowhere")
    raw["steps"][1]["nodes"].append("node-9")
    raw["steps"][0]["params"]["mode"] = "everything"
    raw["steps"][2]["params"]["operations"] = ["mean", "astrology"]
    raw["data_sources"]["a-customers"]["normalise"] = ["strip", "rot13"]
    raw["data_sources"]["c-customers"]["provider"] = "bank-z"
    found = "\n".join(problems_of(raw))
    for expected in ("steps.stats.inputs: 'nowhere' is neither a data source nor a step",
                     "steps.stats.nodes: 'node-9' is not in participants.compute_nodes",
                     "mode 'everything'", "unknown operation 'astrology'", "rot13",
                     "data_sources.c-customers.provider: 'bank-z'"):
        assert expected in found, (expected, found)


def test_psi_needs_two_sources_with_id_columns():
    raw = example()
    raw["steps"][0]["inputs"] = ["a-customers"]
    del raw["data_sources"]["a-customers"]["id_column"]
    found = "\n".join(problems_of(raw))
    assert "at least two data sources" in found and "no id_column" in found


def test_bad_yaml_is_a_clear_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("version: [unclosed\n  name: x\n")
    with pytest.raises(DescriptionError, match="not valid YAML"):
        load(f)


def test_published_schema_is_current():
    published = json.loads((ROOT / "docs/collab.schema.json").read_text())
    assert published == json_schema(), "regenerate with: python -m oracle.collab.schema > docs/collab.schema.json"
    assert canonical(json_schema())  # serialisable


VERTICAL = ROOT / "docs/examples/collab-vertical.yaml"


def test_vertical_example_plans_with_the_engine_spec():
    from oracle.collab.description import mpc_spec

    p = plan(load(VERTICAL))
    profile = p.step("profile")
    spec = mpc_spec(profile.document["params"])
    assert spec.layout == "vertical" and spec.columns == ("balance", "loans", "card_spend")
    assert spec.group_by == "segment" and spec.categories == ("retail", "sme", "private")
    assert spec.pearson == ("loans", "card_spend") and spec.min_group == 3
    assert profile.request.depends_on == 0b1


def test_vertical_refusals_name_the_problem():
    raw = yaml.safe_load(VERTICAL.read_text())
    params = raw["steps"][1]["params"]
    raw["steps"][1]["inputs"].remove("match")                   # no PSI to align by
    params["columns"]["b-customers"] = ["loans", "balance"]     # balance from two holders, and not offered
    params["columns"]["c-customers"] = []                       # read, but gives nothing
    params["pearson"] = ["loans", "salary"]                     # nobody holds salary
    found = "\n".join(problems_of(raw))
    for expected in ("needs the rows aligned by an earlier PSI step",
                     "column 'balance' is given by 2 data sources",
                     "column 'balance' is not among data source 'b-customers''s columns",
                     "data source 'c-customers' is read (its grant is used) but gives no column",
                     "column 'salary' is not given by any data source"):
        assert expected in found, (expected, found)


def test_vertical_sources_must_be_matched_by_the_psi_step_and_specs_must_hold():
    raw = yaml.safe_load(VERTICAL.read_text())
    raw["steps"][0]["inputs"] = ["a-customers", "b-customers"]
    raw["steps"][1]["params"]["categories"] = []                # crosstab without its public categories
    found = "\n".join(problems_of(raw))
    assert "data source 'c-customers' is not matched by PSI step 'match'" in found, found
    assert "crosstab needs group_by and its public categories" in found, found
