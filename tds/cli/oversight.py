"""``tds monitor run`` and ``tds regulator alerts|review|restore|ranking|reward``: usage monitoring,
its review, and the quality ranking with its Credits rewards (``oversight/ranking.py``).

The monitor runs under a ``tds id`` identity whose account holds MONITOR on Authorizations (dev
account 2 on the embedded chain); it keeps its journal and alert log in
``$TDS_HOME/oversight/<chain>-<Authorizations>/``. It reads chain events from the shared event
index when one is configured (``TDS_INDEX_URL``) or present (``$TDS_HOME/index/events.sqlite``,
written by ``tds index run`` and ``tds gateway``); ``--from-chain`` reads the node instead.

The regulator's commands read that alert log, record reviews in the regulator's own log (anchored
through Evidence under its account) and lift freezes on chain (``Authorizations.unfreeze``: only
REGULATOR lifts a monitor's freeze).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from chain.config import keystore_password, load_settings
from chain.errors import TdsError
from tds.cli.output import console, emit_json, err_console
from tds.cli.refusals import StateRefused, onchain
from tds.cli.wallet import WalletChoice, wallet_options


class MonitorOptionError(TdsError):
    """A ``tds monitor run`` option that cannot be used as given."""


def _folder(d: Any) -> Path:
    from oversight.monitor import work_dir

    return work_dir(d.settings, d.chain_id, d.c["Authorizations"].address)


# --- the monitor ----------------------------------------------------------------------------
@click.group("monitor")
def monitor() -> None:
    """The usage monitor: rules over chain events and service logs → alerts → automatic freeze."""


@monitor.command("run")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="Environment variable holding the identity's password.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Rule library (YAML); default: the shipped oversight/default_rules.yaml.")
@click.option("--webhook", multiple=True, metavar="URL", help="POST each alert as JSON here (repeatable).")
@click.option("--smtp", metavar="HOST:PORT", help="Send each alert by e-mail through this SMTP server.")
@click.option("--mail-to", multiple=True, metavar="ADDR", help="E-mail recipient (repeatable; needs --smtp).")
@click.option("--mail-from", default="tds-monitor@localhost", show_default=True)
@click.option("--oplog", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A key service's operation-log folder to watch for refusals (repeatable).")
@click.option("--access-log", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A gateway/key-service access log (JSON lines with client IPs) to watch (repeatable).")
@click.option("--source-alerts", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A live sources' alerts.jsonl whose lines are raised as alerts (repeatable).")
@click.option("--discover", is_flag=True,
              help="Also watch every access log and the sources' alerts.jsonl found under TDS_HOME.")
@click.option("--confirmations", type=click.IntRange(0, 64), default=1, show_default=True)
@click.option("--poll", type=click.FloatRange(0.05, 60), default=0.5, show_default=True, help="Seconds between polls.")
@click.option("--from-block", type=click.IntRange(0, None), default=None,
              help="First block on a fresh journal (default: the deployment block).")
@click.option("--once", is_flag=True, help="Evaluate up to the confirmed head, act, and exit.")
@click.option("--from-chain", is_flag=True,
              help="Read chain events from the node (eth_getLogs) instead of the event index.")
@click.option("-v", "--verbose", is_flag=True)
def monitor_run(name: str, password_env: str | None, rules_file: Path | None, webhook: tuple[str, ...],
                smtp: str | None, mail_to: tuple[str, ...], mail_from: str, oplog: tuple[Path, ...],
                access_log: tuple[Path, ...], confirmations: int, poll: float, from_block: int | None, once: bool,
                from_chain: bool, verbose: bool, source_alerts: tuple[Path, ...] = (), discover: bool = False) -> None:
    """Run the monitor under identity NAME (its account must hold MONITOR)."""
    from did.identity import Identity
    from oversight.actions import MailNotifier, WebhookNotifier, parse_smtp
    from oversight.monitor import Monitor, MonitorOptions
    from oversight.rules import load_rules
    from tds.cli.deployed import Deployed
    from tds.cli.identity import _password, _root

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if mail_to and not smtp:
        raise MonitorOptionError("--mail-to needs --smtp HOST:PORT")
    if smtp and not mail_to:
        raise MonitorOptionError("--smtp needs at least one --mail-to ADDR")
    rules = load_rules(rules_file)
    notifiers: list[Any] = [WebhookNotifier(u) for u in webhook]
    if smtp:
        host, port = parse_smtp(smtp)
        notifiers.append(MailNotifier(host, port, list(mail_to), mail_from))
    d = Deployed.open()
    settings = load_settings()
    password = keystore_password() if not password_env else None
    ident = Identity.load(_root(settings), name, password if password is not None else _password(password_env, name))
    index = None if from_chain else _monitor_index(d, settings)
    if discover:
        from oversight.access_logs import discover_access_logs
        from oversight.source_alerts import discover_source_alerts

        access_log = tuple(dict.fromkeys([*access_log, *discover_access_logs(settings)]))
        source_alerts = tuple(dict.fromkeys([*source_alerts, *discover_source_alerts(settings)]))
        err_console.print(f"watching {len(access_log)} access log(s), {len(source_alerts)} source alert file(s)",
                          markup=False)
    mon = Monitor(d.w3, d.deployment, ident.account, ident.did, rules, _folder(d), notifiers,
                  MonitorOptions(confirmations=confirmations, poll_s=poll, oplogs=oplog, access_logs=access_log,
                                 source_alerts=source_alerts, start_block=from_block), index=index)
    mon.install_signal_handlers()
    err_console.print(f"monitor {ident.did} ({ident.address}) on chain {d.chain_id}: {len(rules.rules)} rules, "
                      f"{len(notifiers)} notifier(s); journal in {mon.folder}", markup=False)
    if index is not None:
        err_console.print(f"chain events from the event index {mon.follower.url} (indexed up to block "
                          f"{index.indexed_block()}; --from-chain reads the node)", markup=False)
    else:
        err_console.print("chain events from the node" + ("" if from_chain else " (no event index configured; "
                          "`tds index run` starts one)"), markup=False)

    def say(a: Any) -> None:
        err_console.print(f"alert {a.id} {a.rule} [{a.severity}] {a.subject}: {a.detail}", markup=False)

    try:
        mon.run(once=once, on_alert=say)
    finally:
        counts = mon.journal.counts()
        mon.close()
    err_console.print(f"stopped: {counts['alerts']} alerts ({counts['unfinished']} with actions pending), "
                      f"{counts['freezes_sent']} freezes sent", markup=False)


def _monitor_index(d: Any, settings: Any) -> Any:
    """The event index the monitor reads (see :func:`oversight.index_source.configured_index`), or
    None; raises :class:`oversight.index_source.IndexUnavailable` for a configured one it cannot read."""
    from oversight.index_source import configured_index, open_index

    url = configured_index(settings)
    return None if url is None else open_index(d.w3, d.deployment, url)


# --- the regulator --------------------------------------------------------------------------
@click.group("regulator")
def regulator() -> None:
    """The regulator's side of oversight: alerts, reviews, restoring frozen grants."""


@regulator.command("alerts")
@click.option("--json", "as_json", is_flag=True)
def regulator_alerts(as_json: bool) -> None:
    """List the monitor's alerts with their freezes and reviews."""
    from oversight.alerts import AlertLog, ReviewLog
    from tds.cli.deployed import Deployed

    folder = _folder(Deployed.open())
    alerts = AlertLog(folder / "alerts", "", "")
    freezes: dict[str, list] = {}
    for f in alerts.freezes():
        freezes.setdefault(f["alert"], []).append({"grant": f["grant"], "outcome": f["outcome"], "tx": f["tx"]})
    reviews: dict[str, list] = {}
    for r in ReviewLog(folder / "reviews", "", "").reviews():
        if r["action"] == "review":
            reviews.setdefault(r["alert"], []).append({"note": r["note"], "by": r["by"], "time": r["time"]})
    rows = [a.to_json() | {"freezes": freezes.get(a.id, []), "reviews": reviews.get(a.id, [])}
            for a in alerts.alerts()]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"no alerts (alert log {folder / 'alerts'})", markup=False)
        return
    for r in rows:
        frozen = ", ".join(f"grant {f['grant']} {f['outcome']}" for f in r["freezes"]) or "-"
        console.print(f"{r['id']}  {r['rule']:<18} {r['severity']:<8} {r['subject']:<24} freeze: {frozen}  "
                      f"reviews: {len(r['reviews'])}\n    {r['detail']}", markup=False)


def _reviewer(d: Any, wallet: WalletChoice) -> tuple[Any, str]:
    """The regulator's account and the DID the chain binds it to (``account:<address>`` if none)."""
    from chain.system import role_id

    me = d.signer(wallet)
    if not d.c["Authorizations"].functions.hasRole(role_id("REGULATOR"), me.address).call():
        raise StateRefused(f"{me.address} does not hold REGULATOR on Authorizations; sign with the regulator's "
                           f"wallet (dev account 1 on the embedded chain)")
    logs = d.c["IdentityRegistry"].events.IdentityBound().get_logs(
        from_block=int(d.deployment["block"]), argument_filters={"account": me.address})
    did = logs[-1]["args"]["did"] if logs else f"account:{me.address}"   # as the trail names it
    return me, did


def _anchor(d: Any, log: Any, account: Any) -> None:
    from audit.anchor import Anchorer

    Anchorer(log.oplog, d.c["Evidence"], d.space.sender(account), d.w3, int(d.deployment["block"])).anchor()


@regulator.command("review")
@click.argument("alert_id")
@click.option("--note", required=True, help="What the regulator found.")
@click.option("--decision", type=click.Choice(["reviewed", "confirmed", "dismissed"]), default="reviewed",
              show_default=True)
@wallet_options
@onchain
def regulator_review(alert_id: str, note: str, decision: str, wallet: WalletChoice) -> None:
    """Record a review of ALERT_ID (in the regulator's log, anchored on chain)."""
    from oversight.alerts import AlertLog, ReviewLog
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    folder = _folder(d)
    alert = AlertLog(folder / "alerts", "", "").get(alert_id)
    me, did = _reviewer(d, wallet)
    reviews = ReviewLog(folder / "reviews", did, me.address)
    rec = reviews.review(alert, note, decision)
    _anchor(d, reviews, me)
    click.echo(f"alert {alert_id} {decision} by {did} (record {rec.id}, anchored)")


@regulator.command("restore")
@click.argument("grant_id", type=click.IntRange(min=1))
@wallet_options
@onchain
def regulator_restore(grant_id: int, wallet: WalletChoice) -> None:
    """Lift the freeze on GRANT_ID (a regulator lifts any freeze, the monitor's included)."""
    from oversight.alerts import AlertLog, ReviewLog
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    g = d.grant(grant_id)
    if g.frozen_by == "nobody":
        raise StateRefused(f"grant {grant_id} is not frozen")
    me, did = _reviewer(d, wallet)
    r = d.send(me, d.c["Authorizations"].functions.unfreeze(grant_id))
    tx = r["transactionHash"].to_0x_hex()
    folder = _folder(d)
    alerts = [a.id for a in AlertLog(folder / "alerts", "", "").alerts() if grant_id in a.grants]
    reviews = ReviewLog(folder / "reviews", did, me.address)
    reviews.restore(grant_id, tx, alerts)
    _anchor(d, reviews, me)
    click.echo(f"grant {grant_id} restored (was frozen by {g.frozen_by}; tx {tx})")


# --- quality ranking and rewards --------------------------------------------------------------
@regulator.command("ranking")
@click.option("--since-block", type=click.IntRange(min=0), default=0, show_default=True,
              help="First block of the period (ratings and completed jobs from it on).")
@click.option("--json", "as_json", is_flag=True, help="Print the document.")
@wallet_options
@onchain
def regulator_ranking(since_block: int, as_json: bool, wallet: WalletChoice) -> None:
    """Publish the quality ranking of assets and providers: the document goes to the content store
    and its keccak-256 is anchored on chain (Evidence, kind RANKING); prints its CID."""
    import json

    from eth_utils import keccak

    from audit.events import ChainReader
    from oversight.ranking import KIND, document, gather, rank
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    until = d.w3.eth.block_number
    doc = document(rank(gather(ChainReader(d.w3, d.deployment), since_block, until)), d.chain_id, since_block, until)
    cid = d.store().add_bytes(doc, cid_version=1)
    r = d.send(d.signer(wallet), d.c["Evidence"].functions.anchorHash(keccak(doc), KIND))
    if as_json:
        emit_json({"cid": cid, "hash": "0x" + keccak(doc).hex(), "tx": r["transactionHash"].to_0x_hex(),
                   "ranking": json.loads(doc)})
        return
    body = json.loads(doc)
    console.print(f"ranking of blocks {since_block}–{until} published: {cid} (hash 0x{keccak(doc).hex()} anchored)",
                  markup=False)
    for e in body["providers"][:10]:
        console.print(f"  #{e['rank']} {e['provider']}  score {e['score']:.3f}  {e['ratings']} rating(s), "
                      f"{e['completed_jobs']} completed job(s)", markup=False)


@regulator.command("reward")
@click.argument("cid")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--amount", type=click.IntRange(min=1), required=True, help="Credits (base units) for each provider.")
@wallet_options
@onchain
def regulator_reward(cid: str, top: int, amount: int, wallet: WalletChoice) -> None:
    """Reward the TOP providers of the ranking CID in Credits (memo: the ranking's hash, which
    must be anchored): minted by the regulator, or — on a consortium profile — proposed to the
    members' Governor (then 'tds gov vote|queue|execute')."""
    import json

    from eth_utils import keccak

    from oversight.ranking import KIND, rewards
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    doc = d.store().cat(cid)
    digest = keccak(doc)
    anchored = d.c["Evidence"].events.HashAnchored().get_logs(
        from_block=d.deployment["block"], argument_filters={"hash": digest, "kind": KIND})
    if not anchored:
        raise StateRefused(f"ranking {cid} (hash 0x{digest.hex()}) is not anchored on chain: publish it with "
                           f"'tds regulator ranking' first")
    to, amounts = rewards(json.loads(doc), top, amount)
    if not to:
        raise StateRefused(f"ranking {cid} has no rated provider to reward")
    me = d.signer(wallet)
    if d.deployment.get("profile") == "consortium":
        from chain.governance import Call, Consortium

        g = Consortium.of(d.space)
        pid = g.propose(me, [Call.of(d.c["Credits"], "allocate", to, amounts, digest,
                                     label=f"reward the top {len(to)} of ranking {cid}")],
                        f"Reward the top {len(to)} providers of ranking {cid} with {amount} Credits each")
        console.print(f"proposal {pid}: reward {', '.join(to)} with {amount} each (vote, queue, execute with "
                      f"'tds gov')", markup=False)
        return
    d.send(me, d.c["Credits"].functions.allocate(to, amounts, digest))
    console.print(f"rewarded {', '.join(to)} with {amount} Credits each (memo 0x{digest.hex()})", markup=False)
