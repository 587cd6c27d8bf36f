"""Shared plumbing of the Brownie lifecycle scripts: the chain Brownie attached to, the deployment
file, the participants' identities and the one state file that carries ids from step to step.

The steps, in order (each reads what the earlier ones wrote; each is
``brownie run scripts/<step>.py --network tds-anvil``):

    deploy → identities → register → grant → request → compute → result → withdraw → rate → destroy → audit

State lives in ``$TDS_HOME/scripts/state.json`` (work files — sample inputs, credentials,
the oracle's journal, operation logs, proofs — beside it). Participants are Brownie's
``accounts[i]`` on a development network (the anvil dev keys, see :data:`CAST`); on any other
network they are the identities already created with ``tds id new NAME --private-key-env VAR``.
Keystores are encrypted with ``$TDS_KEYSTORE_PASSWORD`` (a fixed development passphrase and a
light KDF are used on development networks, whose keys are public anyway).

The scripts only wire existing Python APIs (:class:`chain.Space`, :mod:`did`,
:mod:`offchain`, :class:`oracle.runner.OracleRunner`, :mod:`audit.verify`) to that state.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from brownie import accounts, network
from brownie import web3 as brownie_web3
from brownie._config import CONFIG
from web3 import Web3

from did.identity import Identity
from offchain.ingest.cleaning import Deduplicate, DropOutliers, clean
from offchain.ingest.readers import read_table
from offchain.store.client import open_store
from chain.accounts import dev_account
from chain.connection import web3_for
from chain.deploy import read_deployment
from chain.config import Settings, keystore_password, load_settings
from tds.demo import BRANCHES, SALES
from chain import Member, Space

STEPS = ("deploy", "identities", "register", "grant", "request", "compute", "result", "withdraw", "rate", "destroy",
         "audit")
STATE_FORMAT = "tds-brownie-state/1"
# name -> Brownie account index on a development network (accounts[2] is the monitor, see deploy.py)
CAST = {"operator": 0, "regulator": 1, "provider-a": 3, "consumer": 4, "oracle": 5, "provider-b": 7}
ROLES = {"regulator": "REGULATOR", "provider-a": "PROVIDER", "provider-b": "PROVIDER", "consumer": "CONSUMER",
         "oracle": "COMPUTE_PROVIDER"}
DEV_PASSPHRASE = "tds-development-only"
# scrypt cost of identity keystores made on a development network: their keys are anvil's
# published dev keys, so a slow KDF would protect nothing (elsewhere: did.keystore's default)
DEV_SCRYPT_N = 2**14
PRICE = 10**16
# The sample datasets: name -> (owner, schema, cleaning rules); files come from tds.demo.write_samples
DATASETS = {
    "sales": ("provider-a", SALES, lambda: [Deduplicate(), DropOutliers("amount", "range", low=0, high=5000)]),
    "branches": ("provider-b", BRANCHES, lambda: []),
}
SUM_RANGE = (1000, 3000)  # the consumer's range-filtered SUM: amount between these bounds


def run_line(step: str) -> str:
    """The command that runs ``step`` on the network this script was started on."""
    return f"brownie run scripts/{step}.py --network {network.show_active()}"


def fail(message: str) -> None:
    """Stop the script with one clear line (exit status 1, no traceback)."""
    raise SystemExit(f"error: {message}")


def is_development() -> bool:
    return CONFIG.network_type == "development"


def check_persistent_chain() -> None:
    """Refuse a chain that Brownie launched itself: it dies with this script, and the next step
    would find nothing. ``tds chain up`` keeps one running across steps."""
    if is_development() and network.rpc.is_active() and network.rpc.is_child():
        fail(f"Brownie launched its own anvil for network {network.show_active()!r}; it stops when this script "
             f"ends and the next step would find an empty chain. Start the chain first with 'tds chain up' "
             f"(TDS_CHAIN_PORT must match the network's port; 'tds setup' registers tds-anvil on it).")


def web3_of_brownie() -> Web3:
    """A plain web3.py connection to the node Brownie attached to (the Python packages use web3.py)."""
    uri = getattr(brownie_web3.provider, "endpoint_uri", None)
    if not uri:
        fail(f"network {network.show_active()!r} is not an HTTP endpoint; the scripts need one")
    return web3_for(uri, timeout=30)  # reads proof-of-authority blocks too


def passphrase() -> str:
    """The keystore password: $TDS_KEYSTORE_PASSWORD, or a fixed one on development networks."""
    value = keystore_password()
    if value:
        return value
    if is_development():
        return DEV_PASSPHRASE
    fail("set TDS_KEYSTORE_PASSWORD: on a non-development network the keystores need a real passphrase")
    return ""  # unreachable


class Step:
    """One script's view: settings, chain, deployment, the Space facade, the store and the state."""

    def __init__(self, name: str, *, fresh_state: bool = False):
        check_persistent_chain()
        self.name = name
        self.settings: Settings = load_settings()
        self.w3 = web3_of_brownie()
        self.chain_id = self.w3.eth.chain_id
        path = self.settings.deployment_path(self.chain_id)
        if not path.exists():
            fail(f"no deployment file at {path}; run '{run_line('deploy')}' (or 'tds deploy') first")
        self.deployment = read_deployment(path, self.chain_id)
        self.space = Space(self.w3, self.deployment)
        self.work = self.settings.home / "scripts"
        self.state_path = self.work / "state.json"
        self.store = open_store(self.settings.home, self.settings.ipfs_api)
        self._identities: dict[str, Identity] = {}
        self.state = self._fresh() if fresh_state else self._read()

    # --- state --------------------------------------------------------------------------------
    def _deployment_key(self) -> dict[str, Any]:
        return {"chainId": self.chain_id, "jobs": self.deployment["contracts"]["Jobs"]["address"],
                "block": self.deployment["block"]}

    def _fresh(self) -> dict[str, Any]:
        old = self._load_file()
        if old and old.get("deployment") == self._deployment_key():
            return old  # re-running the first step on the same deployment keeps what was done
        return {"format": STATE_FORMAT, "network": network.show_active(), "deployment": self._deployment_key(),
                "participants": {}, "steps": {}}

    def _load_file(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            fail(f"{self.state_path} is not valid JSON ({exc}); delete it and start again with "
                 f"'{run_line('identities')}'")
            return None

    def _read(self) -> dict[str, Any]:
        state = self._load_file()
        if state is None:
            fail(f"no script state at {self.state_path}; run '{run_line('identities')}' first")
        if state.get("deployment") != self._deployment_key():
            fail(f"{self.state_path} belongs to another deployment ({state.get('deployment')}); the current one "
                 f"is {self._deployment_key()}. Start again with '{run_line('identities')}'")
        return state

    def need(self, step: str, *keys: str) -> Any:
        """``state[keys...]``, or stop naming the script that writes it."""
        value: Any = self.state
        for k in keys:
            if not isinstance(value, dict) or k not in value:
                fail(f"{'.'.join(keys)} is not in {self.state_path}; run '{run_line(step)}' first")
            value = value[k]
        return value

    def done(self, **info: Any) -> None:
        """Record that this step ran (block, time, what it did) and save the state."""
        self.state["steps"][self.name] = {"block": self.w3.eth.block_number, "time": int(time.time()), **info}
        self.save()

    def save(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True, default=str) + "\n")
        os.replace(tmp, self.state_path)

    # --- participants -------------------------------------------------------------------------
    @property
    def identity_root(self) -> Path:
        return self.settings.home / "identities"

    def identity(self, name: str) -> Identity:
        """A participant's identity, decrypted from its keystore (``identities`` made it)."""
        if name not in self._identities:
            self.need("identities", "participants", name)
            self._identities[name] = Identity.load(self.identity_root, name, passphrase())
        return self._identities[name]

    def member(self, name: str) -> Member:
        ident = self.identity(name)
        return Member(name, ident.account, ident.did)

    def address(self, name: str) -> str:
        return self.need("identities", "participants", name, "address")

    # --- data ---------------------------------------------------------------------------------
    def plaintext(self, dataset: str):
        """The provider's own cleaned table (plaintext never leaves the provider's machine)."""
        info = self.need("register", "assets", dataset)
        _owner, schema, rules = DATASETS[dataset]
        table, _log = clean(read_table(Path(info["file"]), schema), rules())
        return table

    def say(self, text: str) -> None:
        print(text, flush=True)


def dev_account_for(name: str):
    """The funded anvil key of ``name`` on a development network, checked against Brownie's accounts."""
    index = CAST[name]
    acct = dev_account(index)
    if len(accounts) > index and accounts[index].address != acct.address:
        fail(f"Brownie's accounts[{index}] is {accounts[index].address}, not the anvil dev key {acct.address}; "
             f"this network does not use anvil's default mnemonic")
    return acct


def signer_from_identity(name: str, default: Any = None) -> Any:
    """A Brownie account holding the Ethereum key of the local identity ``name`` (non-development
    networks, where Brownie has no unlocked accounts); ``default`` if there is no such identity."""
    from did.errors import IdentityNotFound

    settings = load_settings()
    try:
        ident = Identity.load(settings.home / "identities", name, passphrase())
    except IdentityNotFound:
        if default is not None:
            return default
        fail(f"no identity {name!r} under {settings.home / 'identities'}; create it with "
             f"'tds id new {name} --private-key-env VAR' (a funded key on this chain)")
    return accounts.add(ident.account.key)


def tx_hash(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()
