"""What an alert does: notify (webhook, e-mail over SMTP) and freeze the grant on chain.

Freeze reason codes (the ``uint16`` in ``Authorizations.freeze`` and ``GrantFrozen``; the rule
file sets them, these are the shipped defaults — docs/oversight.md):

| code   | rule kind        | meaning                                                |
|--------|------------------|--------------------------------------------------------|
| 0xA001 | burst            | more jobs per window than the grant/consumer may run   |
| 0xA002 | out_of_hours     | use outside the allowed hours                          |
| 0xA003 | beyond_scope     | repeated refused attempts beyond the grant's scope     |
| 0xA004 | oracle_failures  | an oracle that accepts and fails repeatedly (notify)   |
| 0xA005 | quality_drop     | a data source's ratings fell below threshold (notify)  |
| 0xA006 | network_region   | access from outside the allowed network regions        |

The monitor holds MONITOR on Authorizations: it may freeze a grant (also one its holder froze:
a monitor freeze escalates a holder's) but never lift one; only a regulator lifts a monitor's
freeze (``Authorizations.unfreeze``: ``FreezeHeldBy`` for anyone below).
"""
from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from typing import Protocol

import httpx
from web3.contract import Contract

from chain.errors import TdsError
from chain.tx import Reverted, Sender
from oversight.alerts import Alert

REASON_CODES = {0xA001: "burst", 0xA002: "out of hours", 0xA003: "beyond scope", 0xA004: "oracle failures",
                0xA005: "quality drop", 0xA006: "network region"}
GRANT_ACTIVE = 1                       # IAuthorizations.GrantStatus.Active
FREEZE_AUTHORITIES = ("nobody", "holder", "monitor", "regulator")
MONITOR_AUTHORITY = 2


class NotifyFailed(TdsError):
    """A notification could not be delivered (names the channel, the target and why)."""

    def __init__(self, channel: str, target: str, reason: str):
        self.channel, self.target, self.reason = channel, target, reason
        super().__init__(f"{channel} notification to {target} failed: {reason}")


class Notifier(Protocol):
    """Delivers one alert; raises :class:`NotifyFailed`. ``name`` keys its delivery in the journal."""

    name: str

    def send(self, alert: Alert) -> None: ...


def alert_payload(alert: Alert) -> dict:
    """The JSON body a webhook receives (``type`` names the format)."""
    return {"type": "tds-alert/1", **alert.to_json(), "transactions": alert.transactions,
            "log_records": alert.log_records}


class WebhookNotifier:
    """POSTs the alert as JSON; any 2xx answer is a delivery. Receivers dedupe by ``id``."""

    def __init__(self, url: str, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise NotifyFailed("webhook", url, "the URL must start with http:// or https://")
        self.url, self.timeout, self.name = url, timeout, f"webhook:{url}"

    def send(self, alert: Alert) -> None:
        try:
            r = httpx.post(self.url, json=alert_payload(alert), timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise NotifyFailed("webhook", self.url, f"{type(exc).__name__}: {exc}") from None
        if not 200 <= r.status_code < 300:
            raise NotifyFailed("webhook", self.url, f"HTTP {r.status_code}")


def parse_smtp(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port defaults to 25)."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "25")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise NotifyFailed("smtp", text, "expected HOST:PORT, e.g. localhost:25")
    return host, int(port)


class MailNotifier:
    """Sends the alert as a plain-text e-mail (with its JSON) over SMTP."""

    def __init__(self, host: str, port: int, to: list[str], sender: str = "tds-monitor@localhost",
                 timeout: float = 10.0, starttls: bool = False):
        if not to:
            raise NotifyFailed("smtp", f"{host}:{port}", "no recipient (--mail-to ADDR)")
        self.host, self.port, self.to, self.sender = host, port, to, sender
        self.timeout, self.starttls = timeout, starttls
        self.name = f"smtp:{host}:{port}:{','.join(to)}"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[tds {alert.severity}] {alert.rule} on {alert.subject}"
        msg["From"], msg["To"] = self.sender, ", ".join(self.to)
        msg["X-Tds-Alert"] = alert.id
        actions = ", ".join(alert.actions) or "none"
        msg.set_content(f"{alert.detail}\n\nrule {alert.rule} ({alert.kind}), severity {alert.severity}, "
                        f"actions {actions}\ngrants {list(alert.grants)}; reason code {alert.reason_code:#06x}\n"
                        f"evidence:\n" + "".join(f"  {e}\n" for e in alert.evidence) +
                        "\n" + json.dumps(alert_payload(alert), indent=2, sort_keys=True) + "\n")
        return msg

    def send(self, alert: Alert) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                smtp.send_message(self.message(alert))
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyFailed("smtp", f"{self.host}:{self.port}", f"{type(exc).__name__}: {exc}") from None


class Freezer:
    """Freezes grants from the monitor's account, at most once per alert and grant."""

    def __init__(self, authorizations: Contract, sender: Sender):
        self.auth = authorizations
        self.sender = sender

    def grant_state(self, grant_id: int) -> tuple[int, int]:
        """(status, frozenBy) of the grant on chain."""
        g = self.auth.functions.grantOf(grant_id).call()
        return int(g[4]), int(g[5])

    def our_freeze_since(self, grant_id: int, block: int) -> str | None:
        """The transaction of a freeze of ``grant_id`` by this monitor at or after ``block``."""
        if block > self.auth.w3.eth.block_number:
            return None                       # nothing mined since the alert was committed
        logs = self.auth.events.GrantFrozen().get_logs(
            from_block=block, argument_filters={"grantId": grant_id, "by": self.sender.address})
        return logs[0]["transactionHash"].to_0x_hex() if logs else None

    def freeze(self, grant_id: int, reason_code: int, since_block: int) -> tuple[str, str | None]:
        """Freeze ``grant_id`` unless done already; returns (outcome, transaction).

        Outcomes: ``sent``; ``already-frozen`` (our freeze since ``since_block`` is on chain — a
        restart after the transaction — or a monitor/regulator freeze holds); ``not-active``."""
        done = self.our_freeze_since(grant_id, since_block)
        if done is not None:
            return "already-frozen", done
        status, frozen_by = self.grant_state(grant_id)
        if status != GRANT_ACTIVE:
            return "not-active", None
        if frozen_by >= MONITOR_AUTHORITY:
            return "already-frozen", None
        try:
            r = self.sender.send(self.auth.functions.freeze(grant_id, reason_code))
        except Reverted as exc:
            if exc.error == "AlreadyFrozen":
                return "already-frozen", None
            if exc.error in ("GrantNotActive", "UnknownGrant"):
                return "not-active", None
            raise
        return "sent", r["transactionHash"].to_0x_hex()
