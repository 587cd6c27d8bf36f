"""A source's definition: what to read, how to sync it, when, and how to encrypt it."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from offchain.sources.errors import SourceConfigError

KINDS = ("postgres", "sqlite", "mqtt", "rest")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class SourceSpec:
    """One live source. ``table``/``query`` for databases; ``topic`` for MQTT; REST pulls
    ``url`` (``items`` = dot path of the record list in JSON, or the record element in XML).
    ``watermark`` makes database and REST syncs incremental (REST sends it as ``since_param``);
    ``key`` names the field that identifies a message (MQTT/REST de-duplication; default: a
    hash of the message). ``onions`` overrides the encryption policy per column."""

    name: str
    kind: str
    url: str
    table: str | None = None
    query: str | None = None
    watermark: str | None = None
    topic: str | None = None
    key: str | None = None
    every: float | None = None
    cron: str | None = None
    standby: str | None = None
    schema: dict | None = None
    clean: list = field(default_factory=list)
    onions: dict = field(default_factory=dict)
    auth: str | None = None            # rest: "bearer" | "basic"
    user: str | None = None            # rest basic auth user
    items: str | None = None           # rest: record list path / XML record element
    since_param: str = "since"
    batch_rows: int = 50_000
    batch_seconds: float = 1.0         # mqtt micro-batch: at most this long
    min_group_size: int = 5

    def __post_init__(self) -> None:
        n = self.name
        if not _NAME.match(n):
            raise SourceConfigError(n, "NAME", "use letters, digits, '_', '.', '-' (at most 64)")
        if self.kind not in KINDS:
            raise SourceConfigError(n, "--kind", f"{self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("postgres", "sqlite"):
            if bool(self.table) == bool(self.query):
                raise SourceConfigError(n, "--table/--query", "give exactly one of them")
        if self.kind == "mqtt" and not self.topic:
            raise SourceConfigError(n, "--topic", "an MQTT source needs a topic filter")
        if self.kind != "mqtt" and self.topic:
            raise SourceConfigError(n, "--topic", "only MQTT sources have a topic")
        if self.every is not None and self.cron is not None:
            raise SourceConfigError(n, "--every/--cron", "give at most one schedule")
        if self.every is not None and self.every <= 0:
            raise SourceConfigError(n, "--every", "must be a positive number of seconds")
        if self.auth not in (None, "bearer", "basic"):
            raise SourceConfigError(n, "--auth", "bearer or basic")
        if self.auth == "basic" and not self.user:
            raise SourceConfigError(n, "--user", "basic auth needs a user (the password comes from the environment)")
        if self.batch_rows < 1:
            raise SourceConfigError(n, "--batch-rows", "must be at least 1")
        if self.cron is not None:
            from offchain.sources.schedule import Cron
            Cron.parse(self.cron)

    @property
    def incremental(self) -> bool:
        """Streams always append; databases and REST feeds append when they have a watermark."""
        return self.kind == "mqtt" or self.watermark is not None or (self.kind == "rest" and self.key is not None)

    def urls(self) -> list[str]:
        """Primary first, then the standby (failover order)."""
        return [self.url] + ([self.standby] if self.standby else [])

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SourceSpec":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def public(self) -> dict[str, Any]:
        """The definition with credentials in URLs masked (for listings)."""
        d = self.to_dict()
        for k in ("url", "standby"):
            if k in d:
                d[k] = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", d[k])
        return d
