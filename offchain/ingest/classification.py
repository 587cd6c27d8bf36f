"""Classification (000 §5.1.3): public < internal < sensitive < confidential, per field and
per dataset (the highest of its fields). A declared level always wins; otherwise the field
name is matched against patterns for personal / secret data."""
from __future__ import annotations

import re
from dataclasses import dataclass

from offchain.ingest.schema import LEVELS, Field, Schema

_CONFIDENTIAL = re.compile(r"(id_?card|身份证|passport|护照|ssn|password|密码|diagnos|诊断|病历|"
                           r"salary|工资|收入|income|bank_?account|银行卡|account_?no)", re.I)
_SENSITIVE = re.compile(r"(name|姓名|phone|mobile|手机|电话|email|邮箱|address|地址|birth|出生|"
                        r"gender|性别|age|年龄|location|位置|amount|金额|balance|余额)", re.I)


def level_rank(level: str) -> int:
    return LEVELS.index(level)


def classify_field(f: Field) -> str:
    if f.classification:
        return f.classification
    if _CONFIDENTIAL.search(f.name):
        return "confidential"
    if _SENSITIVE.search(f.name):
        return "sensitive"
    return "internal"


@dataclass(frozen=True)
class Classification:
    dataset: str
    fields: dict[str, str]

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "fields": dict(sorted(self.fields.items()))}


def classify(schema: Schema, floor: str = "public") -> Classification:
    """Per-field levels and the dataset level (max of fields and ``floor``)."""
    fields = {f.name: classify_field(f) for f in schema.fields}
    top = max([floor, *fields.values()], key=level_rank)
    return Classification(top, fields)
