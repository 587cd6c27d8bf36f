"""Normalisation of ID columns before PSI: providers hold the same IDs in different formats
(``"138-0013-8000"``, ``" 8613800138000"``, ``"+86 138 0013 8000"``), and the collaboration
description gives each provider a list of rules that bring its column to the shared form.

A rule is a name (``"strip"``), a name with an argument in one string (``"remove: -"``; one
space after the colon is not part of the argument) or a one-key mapping
(``{"pad_left": {"width": 11, "char": "0"}}``). Rules apply in order, value by
value; the output has one entry per input (a blank result is not an ID: the protocol drops it).

Rules without argument: ``strip``, ``lower``, ``upper``, ``casefold``, ``nfkc``, ``nfc``,
``digits_only``, ``alnum_only``, ``remove_spaces`` (all whitespace), ``collapse_spaces``.
Rules with argument: ``remove`` (each listed character), ``strip_chars`` (these characters at
both ends), ``lstrip`` (these characters at the start, e.g. leading zeros), ``prefix`` /
``suffix`` (always added), ``ensure_prefix`` (added unless present), ``strip_prefix`` /
``strip_suffix`` (removed when present), ``keep_last`` (the last N characters), ``pad_left``
(``{"width": N, "char": "0"}`` or just N), ``replace`` (``{"old": "x", "new": "y"}``).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from offchain.psi.errors import UnknownNormalisationRule

Rule = tuple[str, Any]          # canonical form: (name, argument or None)

_WS = re.compile(r"\s+")
_NO_ARG: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "casefold": str.casefold,
    "nfkc": lambda v: unicodedata.normalize("NFKC", v),
    "nfc": lambda v: unicodedata.normalize("NFC", v),
    "digits_only": lambda v: "".join(c for c in v if c.isdigit() and c.isascii()),
    "alnum_only": lambda v: "".join(c for c in v if c.isalnum()),
    "remove_spaces": lambda v: _WS.sub("", v),
    "collapse_spaces": lambda v: _WS.sub(" ", v).strip(),
}
_STR_ARG = {"remove", "strip_chars", "lstrip", "prefix", "suffix", "ensure_prefix", "strip_prefix",
            "strip_suffix"}
_INT_ARG = {"keep_last"}
_SPECIAL = {"pad_left", "replace"}


def _canonical(rule: str | dict) -> Rule:
    """One rule in its (name, argument) form; :class:`UnknownNormalisationRule` otherwise."""
    if isinstance(rule, str):
        name, sep, arg = rule.partition(":")
        name = name.strip()
        raw: Any = (arg.removeprefix(" ")) if sep else None   # "remove: -" -> "-"
    elif isinstance(rule, dict) and len(rule) == 1:
        ((name, raw),) = rule.items()
    else:
        raise UnknownNormalisationRule(rule, "a rule is a string or a mapping with one key")
    if not isinstance(name, str):
        raise UnknownNormalisationRule(rule)
    if name in _NO_ARG:
        if raw not in (None, "", True):
            raise UnknownNormalisationRule(rule, f"{name!r} takes no argument")
        return name, None
    if name in _STR_ARG:
        if not isinstance(raw, str) or raw == "":
            raise UnknownNormalisationRule(rule, f"{name!r} needs a non-empty string argument")
        return name, raw
    if name in _INT_ARG:
        return name, _positive_int(rule, raw)
    if name == "pad_left":
        if isinstance(raw, dict):
            extra = set(raw) - {"width", "char"}
            if extra:
                raise UnknownNormalisationRule(rule, f"unknown keys {sorted(extra)}")
            width, char = _positive_int(rule, raw.get("width")), raw.get("char", "0")
        else:
            width, char = _positive_int(rule, raw), "0"
        if not isinstance(char, str) or len(char) != 1:
            raise UnknownNormalisationRule(rule, "pad_left char must be one character")
        return name, (width, char)
    if name == "replace":
        if not (isinstance(raw, dict) and set(raw) == {"old", "new"} and isinstance(raw["old"], str)
                and raw["old"] and isinstance(raw["new"], str)):
            raise UnknownNormalisationRule(rule, 'replace needs {"old": "...", "new": "..."}')
        return name, (raw["old"], raw["new"])
    raise UnknownNormalisationRule(rule)


def _positive_int(rule: Any, raw: Any) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise UnknownNormalisationRule(rule, "needs a positive integer") from None
    if isinstance(raw, bool) or value <= 0 or value > 1024 or (isinstance(raw, float) and raw != value):
        raise UnknownNormalisationRule(rule, "needs a positive integer up to 1024")
    return value


def validate_rules(rules: Sequence[str | dict]) -> list[Rule]:
    """Check every rule (the description-file validator calls this); returns their canonical
    ``(name, argument)`` form. Raises :class:`UnknownNormalisationRule` on the first bad one."""
    if isinstance(rules, (str, dict)) or not isinstance(rules, Sequence):
        raise UnknownNormalisationRule(rules, "rules are a list")
    return [_canonical(r) for r in rules]


def _apply(value: str, rule: Rule) -> str:
    name, arg = rule
    if name in _NO_ARG:
        return _NO_ARG[name](value)
    if name == "remove":
        return value.translate({ord(c): None for c in arg})
    if name == "strip_chars":
        return value.strip(arg)
    if name == "lstrip":
        return value.lstrip(arg)
    if name == "prefix":
        return arg + value
    if name == "suffix":
        return value + arg
    if name == "ensure_prefix":
        return value if value.startswith(arg) else arg + value
    if name == "strip_prefix":
        return value.removeprefix(arg)
    if name == "strip_suffix":
        return value.removesuffix(arg)
    if name == "keep_last":
        return value[-arg:]
    if name == "pad_left":
        return value.rjust(arg[0], arg[1])
    old, new = arg                              # replace
    return value.replace(old, new)


def normalize(values: Iterable[str], rules: Sequence[str | dict]) -> list[str]:
    """Apply ``rules`` in order to every value (``None`` counts as blank); one output per input."""
    compiled = validate_rules(rules)
    out = []
    for value in values:
        v = "" if value is None else str(value)
        for rule in compiled:
            v = _apply(v, rule)
        out.append(v)
    return out
