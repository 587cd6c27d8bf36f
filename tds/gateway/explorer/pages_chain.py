"""The explorer's pages read from the node: a transaction (decoded call, events, custom error,
internal transfers, call tree), a block, a participant or contract by address, a contract's
published sources."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tds.gateway.explorer import chainview
from tds.gateway.explorer import html as h
from tds.gateway.explorer.abis import proposal_calls
from tds.gateway.explorer.data import ExplorerData
from tds.gateway.explorer.pages import detail_values, trail_table
from tds.gateway.explorer.paging import NO_PAGING, Paging, page_slice
from tds.gateway.explorer.units import operations_text, reason_text, role_name, wei_text

OTS_TYPES = {0: "transfer", 1: "self-destruct", 2: "create", 3: "create2"}  # ots_getInternalOperations


def _checksum(address: str | None) -> str | None:
    from eth_utils import to_checksum_address

    return to_checksum_address(address) if address else address


def tx_page(data: ExplorerData, tx_hash: str) -> h.Html | None:
    """A transaction from the node, decoded; None if the node does not know it."""
    t = chainview.transaction(data.base, tx_hash, data.abis())
    if t is None:
        return None
    status = h.badge(t["status"], "pass" if t["status"] == "success" else "fail")
    err = t["error"]
    facts = h.kv([("status", status), ("block", h.Html(h.when(t["time"], t["block"]) + f" · position {t['index']}")),
                  ("from", h.address(t["from"], data.did_of(t["from"]))),
                  ("to", h.address(t["to"], data.did_of(t["to"])) if t["to"] else
                   h.Html("contract creation " + h.address(t["contract"]))),
                  ("value", wei_text(t["value"])), ("nonce", t["nonce"]),
                  ("gas", f"{t['gas_used']:,} used of {t['gas']:,} at {wei_text(t['gas_price'], 9, 'gwei')}"),
                  ("hash", h.Html(h.tag("code", t["hash"], class_="wrap") + h.copy_button(t["hash"])))])
    out = facts
    if err is not None:
        shown = err["decoded"] or ("no revert data" if not err["data"] else "unknown error " + err["data"][:10])
        out += h.section("Error", h.Html(h.tag("p", shown, class_="error-name", id="error-name")
                                         + h.tag("code", err["data"] or "", class_="wrap")), "error")
    call = t["call"]
    if call:
        args = detail_values(data, {k: v for k, v in call["args"].items() if k not in ("calldatas",)})
        by = h.tag("span", " (decoded by selector with its published ABI)", class_="tag") if call.get("by") else ""
        out += h.section("Call", h.Html(h.tag("p", h.Html(h.tag("strong", f"{call['contract']}.{call['function']}")
                                                          + by + " " + args), id="call")))
    else:
        raw = t["input"][:200] + ("…" if len(t["input"]) > 200 else "")
        out += h.section("Call", h.tag("code", raw, class_="wrap"))
    evs = [[e["log_index"], h.address(e["address"], name=e["contract"]) if e["contract"] else h.address(e["address"]),
            h.tag("strong", e["event"] or "undecoded"),
            detail_values(data, e["args"]) if e["args"] is not None
            else h.tag("code", ", ".join(e["topics"]), class_="wrap")]
           for e in t["events"]]
    out += h.section("Events", h.table(["log", "contract", "event", "arguments"], evs, cls="events",
                                       empty="no events (a failed transaction emits none)"), "events")
    proposed = _proposal(data, t)
    if proposed is not None:
        out += proposed
    internal = [[OTS_TYPES.get(op.get("type"), op.get("type")), h.address(_checksum(op.get("from"))),
                 h.address(_checksum(op.get("to"))), wei_text(int(op.get("value") or "0x0", 16)
                 if isinstance(op.get("value"), str) else op.get("value") or 0)] for op in t["internal"]]
    out += h.section("Internal transfers", h.table(["type", "from", "to", "value"], internal,
                                                   empty="none (no value moved between contracts)"), "internal")
    calls = [[h.Html(f"<span class='depth' style='padding-left:{c['depth']}rem'>{h.esc(c['type'])}</span>"),
              h.address(_checksum(c["from"])), h.address(_checksum(c["to"]), name=c["contract"]) if c["contract"]
              else h.address(_checksum(c["to"])),
              c["function"], wei_text(c["value"]), c["error"] or ""] for c in t["calls"]]
    out += h.section("Call tree", h.table(["type", "from", "to", "function", "value", "error"], calls,
                                          empty="not available"), "calls")
    if t["notes"]:
        out += h.Html("<div class='note' role='note'><strong>This node does not offer everything:</strong><ul>"
                      + "".join(f"<li>{h.esc(n)}</li>" for n in t["notes"]) + "</ul></div>")
    return out


def _proposal(data: ExplorerData, t: dict[str, Any]) -> h.Html | None:
    """A governance proposal's calls, each decoded (the transaction's call or its ProposalCreated)."""
    sources = [t["call"]["args"]] if t["call"] else []
    sources += [e["args"] for e in t["events"] if e["args"] and e["event"] == "ProposalCreated"]
    calls = next((c for c in (proposal_calls(a) for a in sources) if c), None)
    if calls is None:
        return None
    rows = []
    for k, (target, value, raw) in enumerate(calls):
        d = chainview.decode_call(data.base, target, bytes.fromhex(raw[2:]), data.abis())
        name = data.base.names_by_address.get(str(target).lower()) or (d or {}).get("contract")
        shown = (h.Html(h.tag("strong", f"{d['function']}") + " " + detail_values(data, d["args"])) if d
                 else h.tag("code", raw[:74] + ("…" if len(raw) > 74 else ""), class_="wrap", title=raw))
        rows.append([k, h.address(target, name=name), wei_text(value), shown])
    return h.section("Proposal calls", h.table(["#", "target", "value", "call (decoded)"], rows, cls="proposal"),
                     "proposal")


def block_page(data: ExplorerData, ident: int | str) -> h.Html | None:
    """A block from the node with its decoded transactions; None if there is no such block."""
    b = chainview.block(data.base, ident, data.abis())
    if b is None:
        return None
    nav = h.Html(" ".join(x for x in (
        h.link(f"{h.BASE}/block/{b['number'] - 1}", "← previous", rel="prev") if b["number"] > 0 else "",
        h.link(f"{h.BASE}/block/{b['number'] + 1}", "next →", rel="next") if b["number"] < b["head"] else "")))
    facts = h.kv([("time", h.when(b["time"])), ("hash", h.Html(h.tag("code", b["hash"], class_="wrap")
                                                                + h.copy_button(b["hash"]))),
                  ("parent", h.block_link(b["number"] - 1) if b["number"] else "—"),
                  ("gas used", f"{b['gas_used']:,} of {b['gas_limit']:,}"),
                  ("base fee", wei_text(b["base_fee"], 9, "gwei")),
                  ("transactions", len(b["transactions"]))])
    txs = [[h.tx_link(t["hash"]), h.address(t["from"], data.did_of(t["from"])),
            h.address(t["to"], name=t["contract"]) if t["contract"] else h.address(t["to"]),
            t["function"] or "", wei_text(t["value"])] for t in b["transactions"]]
    return h.Html(h.tag("p", nav, class_="pager") + facts
                  + h.section("Transactions", h.table(["transaction", "from", "to", "function", "value"], txs), "txs"))


def address_page(data: ExplorerData, account: str, paging: Paging = NO_PAGING) -> h.Html:
    """A participant (identity, roles, assets, grants, jobs, payments, batches, activity; long tables
    paged) or a contract."""
    p = data.participant(account)
    navs: dict[str, h.Html] = {}
    for key in ("assets", "grants", "jobs", "payments", "batches"):
        p[key], navs[key] = page_slice(p[key], paging, key)
    name = data.base.names_by_address.get(account.lower())
    head: list[tuple[str, Any]] = [("address", h.Html(h.tag("code", account, class_="wrap") + h.copy_button(account)))]
    if name:
        head.append(("contract", h.link(f"{h.BASE}/contract/{name}", name + " (published sources)")))
    head.append(("DID", h.did_link(p["did"] if p["verified"] else (f"unverified:{p['did']}" if p["did"] else None))))
    head.append(("balance", wei_text(data.w3.eth.get_balance(data.w3.to_checksum_address(account)))))
    roles = [[role_name(r["role"]), h.block_link(r["granted_block"]), h.hash_link(r["credential_hash"]),
              h.when(r["valid_until"]) if r["valid_until"] else "no expiry"] for r in p["roles"]]
    assets = [[h.entity("asset", a["asset_id"]), "holder" if a["holder"] == account else "provider (former holder)",
               a["classification"], h.badge(a["state"])] for a in p["assets"]]
    grants = [[h.entity("grant", g["grant_id"]), h.entity("asset", g["asset_id"]),
               "consumer" if g["consumer"] == account else "provider", h.badge(g["status"]), g["uses"]]
              for g in p["grants"]]
    jobs = [[h.entity("job", j["job_id"]), h.entity("grant", j["grant_id"]), operations_text(j["operation"]),
             h.badge(j["status"]), "consumer" if j["consumer"] == account else "oracle"] for j in p["jobs"]]
    pays = [[p2["kind"], p2["share"] or "", data.amount(p2["amount"], p2["token"]), h.entity("job", p2["job_id"])
             if p2["job_id"] else "—", h.block_link(p2["block"]) + " " + h.tx_link(p2["tx"])]
            for p2 in p["payments"]]
    batches = [[h.entity("batch", b["batch_id"]), b["count"], h.hash_link(b["root"]), h.block_link(b["block"])]
               for b in p["batches"]]
    node = [[n["kind"], n["name"], h.tag("code", n["endpoint"], class_="wrap"), h.badge(n["state"]),
             reason_text("node", n["reason_code"]) if n["reason_code"] else "—", h.block_link(n["added_block"]),
             h.when(n["last_heartbeat"], n["heartbeat_block"]) if n["last_heartbeat"] else "—"] for n in p["node"]]
    return h.Html(h.kv(head) + h.tag("p", h.link(f"{h.BASE}/export?participant={account}&format=html",
                                               "Export this participant’s trail"), class_="exports")
                  + h.section("Roles", h.table(["role", "granted", "credential", "valid until"], roles), "roles")
                  + h.section("Assets", navs["assets"] + h.table(["asset", "as", "classification", "state"], assets),
                              "assets")
                  + h.section("Grants", navs["grants"] + h.table(["grant", "asset", "as", "status", "uses"], grants),
                              "grants")
                  + h.section("Jobs", navs["jobs"] + h.table(["job", "grant", "operations", "status", "as"], jobs),
                              "jobs")
                  + h.section("Payments", navs["payments"] + h.table(["kind", "share", "amount", "job", "transaction"],
                                                                     pays), "payments")
                  + h.section("Log batches", navs["batches"] + h.table(["batch", "records", "root", "block"], batches),
                              "batches")
                  + (h.section("Compute node", h.table(["kind", "name", "endpoint", "state", "reason", "added",
                                                        "last heartbeat"], node), "node") if node else h.Html(""))
                  + h.section("Latest activity", trail_table(data, data.latest(20, [account]))
                              + h.tag("p", h.link(f"{h.BASE}/export?participant={account}&format=html",
                                                  "every entry of this participant (the export, in parts) →")),
                              "activity"))


def sources_of(data: ExplorerData, name: str) -> tuple[Path, dict[str, Any]] | None:
    """(the published sources folder, the contract's solc metadata), or None if nothing is published."""
    from chain.sources import sources_folder

    settings = data.state.settings
    try:
        path = settings.deployment_path(data.base.chain_id)
    except Exception:  # noqa: BLE001 - no deployment file configured
        return None
    folder = sources_folder(Path(path))
    meta = folder / f"{name}.metadata.json"
    if not meta.is_file():
        return None
    return folder, json.loads(meta.read_text())


def contract_page(data: ExplorerData, name: str) -> h.Html | None:
    """A system contract: address, published sources, functions, custom errors; None if unknown."""
    c = data.base.contracts.get(name)
    if c is None:
        return None
    found = sources_of(data, name)
    facts = [("address", h.address(c.address)),
             ("compiler", found[1].get("compiler", {}).get("version") if found else "—"),
             ("verification", h.link(f"{h.BASE}/contract/{name}/verify", "recompile the published sources and compare "
                                                                           "with the code on chain"))]
    done = data.contract_verdicts.get((name, c.address))
    if done is not None:
        facts.append(("verified", h.badge(done.match, "pass" if done.ok else "fail") + " " + done.detail))
    files = []
    if found:
        for src in sorted(found[1].get("sources", {})):
            files.append([h.link(f"{h.BASE}/contract/{name}/source?path={src}", src),
                          "present" if (found[0] / src).is_file() else "missing"])
    def sigs(kind: str) -> list[str]:
        return sorted(f"{e['name']}({', '.join(i['type'] for i in e['inputs'])})"
                      for e in c.abi if e.get("type") == kind)

    fns, errs = sigs("function"), sigs("error")
    sources = h.table(["file", ""], files, empty="no sources published beside the deployment")
    return h.Html(h.kv(facts) + h.section("Published sources", sources)
                  + h.section("Functions", h.Html("<ul class='cols'>" + "".join(f"<li><code>{h.esc(f)}</code></li>"
                                                                               for f in fns) + "</ul>"))
                  + h.section("Custom errors", h.Html("<ul class='cols'>" + "".join(f"<li><code>{h.esc(e)}</code></li>"
                                                                                   for e in errs) + "</ul>")))


def source_text(data: ExplorerData, name: str, path: str) -> str | None:
    """One published source file of a contract (only files its metadata names)."""
    found = sources_of(data, name)
    if found is None or path not in found[1].get("sources", {}):
        return None
    f = found[0] / path
    return f.read_text() if f.is_file() else None


def verify_contract_page(data: ExplorerData, name: str) -> h.Html | None:
    """Recompile a contract's published sources and compare with its code on chain."""
    from audit.contracts import verify_contract

    c = data.base.contracts.get(name)
    found = sources_of(data, name)
    if c is None:
        return None
    if found is None:
        return h.tag("p", "nothing published beside the deployment: cannot verify", class_="fail")
    key = (name, c.address)
    if key not in data.contract_verdicts:  # code at an address never changes: verified once per gateway
        data.contract_verdicts[key] = verify_contract(data.w3, data.state.settings, found[0], name, c.address)
    v = data.contract_verdicts[key]
    return h.kv([("contract", h.link(f"{h.BASE}/contract/{name}", name)), ("address", h.address(c.address)),
                 ("match", h.badge(v.match, "pass" if v.ok else "fail")), ("what was compared",
                 ("runtime code on chain ↔ bytecode recompiled from the published metadata and sources "
                  "(immutables masked; full = metadata hash equal too)")), ("detail", v.detail)])
