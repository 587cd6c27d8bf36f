"""Errors of live sources; each names the source and what to do about it."""
from __future__ import annotations

from offchain.errors import DataPlaneError


class SourceError(DataPlaneError):
    """Base class of every live-source error."""


class SourceConfigError(SourceError):
    """A source definition is incomplete or contradictory (names the option to fix)."""

    def __init__(self, source: str, option: str, reason: str) -> None:
        self.source, self.option = source, option
        super().__init__(f"source {source!r}: {option}: {reason}")


class UnknownSource(SourceError):
    """No source of this name is defined."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"no source named {source!r}; define it with 'tds source add {source} --kind ...' "
                         f"or list them with 'tds source list'")


class SourceExists(SourceError):
    """A source of this name is already defined."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"source {source!r} already exists; pick another name")


class SourceUnavailable(SourceError):
    """The source (and its standby, if any) could not be reached after every retry."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source, self.url, self.reason = source, url, reason
        super().__init__(f"source {source!r} at {url} is unreachable: {reason} (retried with backoff; "
                         f"check the server or add a standby with --standby URL)")


class SourceAuthRefused(SourceError):
    """The source refused our credentials (HTTP 401/403, database login): not retried."""

    def __init__(self, source: str, url: str, status: int | str, env: str) -> None:
        self.source, self.url, self.status = source, url, status
        super().__init__(f"source {source!r} at {url} refused the credentials ({status}); "
                         f"set the right secret in {env}")


class SourceFormatError(SourceError):
    """The source answered something that is not the expected JSON/XML shape."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source, self.url, self.reason = source, url, reason
        super().__init__(f"source {source!r} at {url}: {reason}")


class ScheduleError(SourceError):
    """A cron expression or interval is invalid."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression, self.reason = expression, reason
        super().__init__(f"schedule {expression!r}: {reason} (cron has 5 fields: minute hour "
                         f"day-of-month month day-of-week)")


class SchemaChanged(SourceError):
    """A new version would change the dataset's schema or policy (appends must keep them)."""

    def __init__(self, source: str, what: str) -> None:
        self.source, self.what = source, what
        super().__init__(f"source {source!r}: the {what} differs from the dataset's; appending needs the "
                         f"same {what} (define a new source for a new dataset)")


class QualityBelowThreshold(SourceError):
    """A dataset's quality report scores below the threshold needed to register it."""

    def __init__(self, dataset: str, overall: str, threshold: str) -> None:
        self.dataset, self.overall, self.threshold = dataset, overall, threshold
        super().__init__(f"dataset {dataset} scores {overall} overall, below the quality threshold "
                         f"{threshold}: clean the data (quarantine, cleaning rules) before registering it, "
                         f"or lower --min-quality / TDS_MIN_QUALITY")
