"""Normalisation rules bring differently formatted ID columns to one form; bad rules refused."""
from __future__ import annotations

import pytest

from offchain.psi.errors import UnknownNormalisationRule
from offchain.psi.normalize import normalize, validate_rules


@pytest.mark.parametrize("rule, value, expected", [
    ("strip", "  a b ", "a b"),
    ("lower", "AbC", "abc"),
    ("upper", "AbC", "ABC"),
    ("casefold", "Straße", "strasse"),
    ("nfkc", "１２３ＡＢ", "123AB"),
    ("digits_only", "+86 (138) 0013-8000", "8613800138000"),
    ("alnum_only", "ab-12_c", "ab12c"),
    ("remove_spaces", " a\tb  c ", "abc"),
    ("collapse_spaces", " a\t b  c ", "a b c"),
    ("remove: -", "138-0013-8000", "13800138000"),
    ("remove: -.", "1.2-3", "123"),
    ({"remove": " "}, "1 2 3", "123"),
    ("strip_chars: *", "**x**", "x"),
    ("lstrip: 0", "000123", "123"),
    ("prefix: 86", "13800138000", "8613800138000"),
    ({"prefix": "86"}, "138", "86138"),
    ({"suffix": "@x"}, "a", "a@x"),
    ({"ensure_prefix": "86"}, "86138", "86138"),
    ({"ensure_prefix": "86"}, "138", "86138"),
    ({"strip_prefix": "+86"}, "+86138", "138"),
    ({"strip_prefix": "+86"}, "138", "138"),
    ({"strip_suffix": ".0"}, "12.0", "12"),
    ({"keep_last": 4}, "123456", "3456"),
    ({"pad_left": {"width": 11, "char": "0"}}, "123", "00000000123"),
    ({"pad_left": 5}, "12", "00012"),
    ({"replace": {"old": "O", "new": "0"}}, "1O1", "101"),
])
def test_each_rule(rule, value, expected):
    assert normalize([value], [rule]) == [expected]


def test_three_formats_meet_in_one_form():
    a = normalize(["13800138000", " 13900000001"], ["strip"])
    b = normalize(["+86 138-0013-8000", "+86 139-0000-0001"], ["digits_only", {"strip_prefix": "86"}])
    c = normalize(["１３８００１３８０００"], ["nfkc", {"pad_left": {"width": 11, "char": "0"}}])
    assert a == b == ["13800138000", "13900000001"]
    assert c == ["13800138000"]


def test_rules_apply_in_order_and_keep_one_output_per_input():
    assert normalize(["a-b", None, "  "], ["strip", "remove: -", "upper"]) == ["AB", "", ""]
    assert normalize([], ["strip"]) == []
    assert normalize(["x"], []) == ["x"]


def test_validate_rules_returns_the_canonical_form():
    assert validate_rules(["strip", "remove: -", {"pad_left": 3}]) == [
        ("strip", None), ("remove", "-"), ("pad_left", (3, "0"))]


@pytest.mark.parametrize("rules", [
    ["titlecase"],                                   # unknown name
    ["strip: x"],                                    # no argument expected
    ["remove"],                                      # argument missing
    [{"pad_left": {"width": -1}}],
    [{"pad_left": {"width": 4, "char": "00"}}],
    [{"pad_left": {"width": 4, "fill": "0"}}],
    [{"keep_last": "many"}],
    [{"replace": {"old": "a"}}],
    [{"strip": None, "lower": None}],                # two keys in one mapping
    [42],
    "strip",                                         # not a list
])
def test_unknown_or_malformed_rules_are_refused(rules):
    with pytest.raises(UnknownNormalisationRule) as err:
        normalize(["x"], rules)
    assert err.value.rule is not None
