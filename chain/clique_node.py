"""A second, independent EVM client: an ethereumjs (npm ``@ethereumjs/client`` 0.10.2) Clique
proof-of-authority chain on loopback with real block times, for tests and for users who want
to check that nothing depends on anvil (``python -m chain.clique_node``; docs/evm-clients.md).

The chain is described once as a geth-style genesis (:func:`geth_genesis`: chain id, clique
period, the signer in ``extraData``, Shanghai and Cancun from block 0, anvil's ten dev accounts
prefunded so the same dev keys work). ethereumjs seals Clique blocks only while it believes the
merge has not happened: handed that genesis with ``--gethGenesis`` it inserts the merge before
Shanghai, logs "Post-merge 🐼 client mode: run with CL client." and never mines.
:func:`ethereumjs_chain` therefore hands it over in the client's own chain format with Shanghai
and Cancun listed as block-0 forks and no merge fork — the contracts (compiled for ``cancun``:
PUSH0, MCOPY, transient storage) then run under Clique.

Why 0.10.2 and not 0.10.5: 0.10.5's Clique sealer includes no transaction at all — every one
is skipped with "extraData must be 97 bytes on non-epoch transition blocks, received 0 bytes"
(its block builder no longer honours the signer key) — so it only ever seals empty blocks.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chain.accounts import dev_account
from chain.config import PROJECT_ROOT
from chain.errors import NodeError
from chain.node import LOOPBACK, free_port
from chain.tools import ethereumjs_executable, node_executable

CLIQUE_CHAIN_ID = 31338  # anvil's 31337 + 1: deployments/<chain id>.json never collide
SIGNER_INDEX = 19  # the sealer's key: m/44'/60'/0'/0/19 of the dev mnemonic, never a participant
PRE_MERGE_FORKS = ("chainstart", "homestead", "tangerineWhistle", "spuriousDragon", "byzantium",
                   "constantinople", "petersburg", "istanbul", "muirGlacier", "berlin", "london",
                   "arrowGlacier", "grayGlacier")
POST_MERGE_FORKS = {"shanghaiTime": "shanghai", "cancunTime": "cancun"}  # listed at block 0, no merge
_GETH_FORK_BLOCKS = ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
                     "constantinopleBlock", "petersburgBlock", "istanbulBlock", "muirGlacierBlock",
                     "berlinBlock", "londonBlock", "arrowGlacierBlock", "grayGlacierBlock")


class CliqueNodeError(NodeError):
    """The ethereumjs Clique node could not be started, reached or stopped (see its log)."""


@dataclass(frozen=True)
class CliqueSpec:
    """What the chain is: id, seconds between blocks, block gas limit, prefunded dev accounts."""

    chain_id: int = CLIQUE_CHAIN_ID
    period: int = 1
    gas_limit: int = 30_000_000
    accounts: int = 10
    balance_wei: int = 10_000 * 10**18


def signer_address() -> str:
    """The address that seals every block."""
    return dev_account(SIGNER_INDEX).address


def geth_genesis(spec: CliqueSpec) -> dict[str, Any]:
    """A geth-style genesis for the chain: every fork through Cancun at genesis, one Clique signer."""
    signer = signer_address()[2:].lower()
    config: dict[str, Any] = {"chainId": spec.chain_id, **{k: 0 for k in _GETH_FORK_BLOCKS},
                              **{k: 0 for k in POST_MERGE_FORKS}, "clique": {"period": spec.period, "epoch": 30000}}
    return {
        "config": config,
        "nonce": "0x0000000000000000", "timestamp": "0x0", "gasLimit": hex(spec.gas_limit), "difficulty": "0x1",
        "extraData": "0x" + "00" * 32 + signer + "00" * 65,  # vanity, the one signer, empty seal
        "mixHash": "0x" + "00" * 32, "coinbase": "0x" + "00" * 20, "baseFeePerGas": "0x0",
        "alloc": {dev_account(i).address[2:].lower(): {"balance": hex(spec.balance_wei)}
                  for i in range(spec.accounts)},
    }


def ethereumjs_chain(genesis: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The genesis in ethereumjs's ``--customChain`` / ``--customGenesisState`` formats: every
    fork at block 0, Shanghai and Cancun included but no merge fork, so the client keeps sealing
    Clique blocks. Refuses what ethereumjs could not seal (a merge, forks after genesis)."""
    config = genesis["config"]
    merge = [k for k in ("terminalTotalDifficulty", "mergeNetsplitBlock", "pragueTime") if k in config]
    late = [k for k in (*_GETH_FORK_BLOCKS, *POST_MERGE_FORKS) if config.get(k, 0) != 0]
    if merge or late:
        raise CliqueNodeError(f"the genesis sets {', '.join(merge + late)}: the ethereumjs Clique chain needs every "
                              "fork through Cancun at block 0 and no merge; use geth_genesis()")
    clique = config["clique"]
    params = {
        "name": "tds-clique", "chainId": config["chainId"], "defaultHardfork": "cancun",
        "consensus": {"type": "poa", "algorithm": "clique",
                      "clique": {"period": clique["period"], "epoch": clique["epoch"]}},
        "genesis": {k: genesis[k] for k in ("gasLimit", "difficulty", "nonce", "extraData", "timestamp",
                                            "baseFeePerGas")},
        "hardforks": [{"name": name, "block": 0} for name in PRE_MERGE_FORKS]
        + [{"name": name, "block": 0} for key, name in POST_MERGE_FORKS.items() if key in config],
        "bootstrapNodes": [], "dnsNetworks": [],
    }
    params["genesis"]["gasLimit"] = int(params["genesis"]["gasLimit"], 16)
    params["genesis"]["difficulty"] = int(params["genesis"]["difficulty"], 16)
    state = {"0x" + addr: entry["balance"] for addr, entry in genesis["alloc"].items()}
    return params, state


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    """One JSON-RPC call over HTTP; raises ``OSError`` when the node is unreachable."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise CliqueNodeError(f"{method} failed on {url}: {answer['error']}")
    return answer["result"]


class CliqueNode:
    """One ethereumjs process: the signer (``mine=True``) or a follower syncing from ``bootnodes``.

    Everything lives in ``workdir``: the genesis files, the signer key (mode 0600), the chain
    data (kept across :meth:`stop`/:meth:`start`, so a restart resumes the chain) and
    ``node.log``. RPC listens on 127.0.0.1 only; the client's devp2p port (used only between
    nodes) binds all interfaces — ethereumjs 0.10.5 has no option to narrow it."""

    def __init__(self, workdir: Path, spec: CliqueSpec = CliqueSpec(), *, node_modules: Path | None = None,
                 mine: bool = True, bootnodes: Sequence[str] = (), log_level: str = "info"):
        self.dir = Path(workdir)
        self.spec = spec
        self.node_modules = node_modules or PROJECT_ROOT / "node_modules"
        self.mine = mine
        self.bootnodes = tuple(bootnodes)
        self.log_level = log_level
        self.log_file = self.dir / "node.log"
        self.rpc_port: int | None = None
        self.p2p_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.rpc_port is None:
            raise CliqueNodeError(f"the node in {self.dir} was never started: call start() first")
        return f"http://{LOOPBACK}:{self.rpc_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_files(self) -> list[str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        genesis = geth_genesis(self.spec)
        params, state = ethereumjs_chain(genesis)
        (self.dir / "genesis.json").write_text(json.dumps(genesis, indent=1) + "\n")
        (self.dir / "ethereumjs-chain.json").write_text(json.dumps(params, indent=1) + "\n")
        (self.dir / "ethereumjs-state.json").write_text(json.dumps(state, indent=1) + "\n")
        args = ["--customChain", str(self.dir / "ethereumjs-chain.json"),
                "--customGenesisState", str(self.dir / "ethereumjs-state.json")]
        if self.mine:
            key = self.dir / "signer.key"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(dev_account(SIGNER_INDEX).key.hex().removeprefix("0x"))
            args += ["--mine", "--unlock", str(key)]
        return args

    def start(self, *, rpc_port: int | None = None, p2p_port: int | None = None, timeout: float = 90.0) -> str:
        """Start the client (ports kept across restarts when free) and wait until it answers
        ``eth_chainId`` with the spec's id — and, for the signer, has sealed a block. Returns the URL."""
        if self.running:
            return self.url
        args = self._write_files()
        self.rpc_port = free_port(rpc_port or self.rpc_port)
        self.p2p_port = free_port(p2p_port or self.p2p_port)
        cmd = [node_executable(), ethereumjs_executable(self.node_modules), *args,
               "--dataDir", str(self.dir / "data"), "--port", str(self.p2p_port),
               "--rpc", "--rpcAddr", LOOPBACK, "--rpcPort", str(self.rpc_port),
               "--discDns", "false", "--discV4", "false", "--logLevel", self.log_level]
        if self.bootnodes:
            cmd += ["--bootnodes", ",".join(self.bootnodes)]
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            # cwd: the client writes its rotating log files (and their audit JSON) into the working
            # folder; keep them in the node's own folder, never in the caller's
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, cwd=self.dir)
        try:
            self._wait_ready(timeout, log_start)
        except BaseException:
            self.stop(timeout=5)
            raise
        return self.url

    def _log_since(self, offset: int) -> str:
        with open(self.log_file, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def _wait_ready(self, timeout: float, log_start: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            log = self._log_since(log_start)
            # on "Error starting client" ethereumjs may stay alive and serve nothing
            if self._proc.poll() is not None or "Error starting client" in log:
                errors = [ln.strip() for ln in log.splitlines() if " ERROR " in ln or "Error" in ln]
                raise CliqueNodeError(f"ethereumjs did not start: {errors[0] if errors else 'exited'} "
                                      f"(see {self.log_file})")
            try:
                chain_id = int(rpc_call(self.url, "eth_chainId", timeout=1.0), 16)
                height = int(rpc_call(self.url, "eth_blockNumber", timeout=1.0), 16)
            except (OSError, CliqueNodeError, ValueError):
                time.sleep(0.25)
                continue
            if chain_id != self.spec.chain_id:
                raise CliqueNodeError(f"the node on {self.url} reports chain id {chain_id}, not {self.spec.chain_id}: "
                                      "another program holds that port")
            if not self.mine or height >= 1:
                return
            time.sleep(0.25)
        raise CliqueNodeError(f"ethereumjs did not {'seal a block' if self.mine else 'answer'} on {self.url} "
                              f"within {timeout:.0f} s; see {self.log_file}")

    def enode(self) -> str:
        """This node's devp2p address (for a follower's ``bootnodes``), read from its log."""
        for line in reversed(self._log_since(0).splitlines()):
            if "transport=rlpx url=enode://" in line:
                enode = line.split("url=", 1)[1].split()[0]
                return enode.replace("@0.0.0.0:", f"@{LOOPBACK}:")
        raise CliqueNodeError(f"no enode in {self.log_file}: start the node first")

    def block_number(self) -> int:
        return int(rpc_call(self.url, "eth_blockNumber"), 16)

    def wait_for_block(self, number: int, timeout: float = 60.0) -> int:
        """Wait until the node's head reaches ``number``; return the head."""
        deadline = time.monotonic() + timeout
        while True:
            head = self.block_number()
            if head >= number:
                return head
            if time.monotonic() >= deadline:
                raise CliqueNodeError(f"{self.url} is at block {head}, not {number}, after {timeout:.0f} s; "
                                      f"see {self.log_file}")
            time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop the process (SIGTERM: the client closes its database; SIGKILL after ``timeout``).
        Returns its exit code, or None if it was not running. The chain data stays."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def __enter__(self) -> "CliqueNode":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chain.clique_node``: run the chain in the foreground until Ctrl-C."""
    ap = argparse.ArgumentParser(prog="python -m chain.clique_node", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=PROJECT_ROOT / ".tds" / "clique", help="data and log folder")
    ap.add_argument("--port", type=int, default=8545, help="RPC port on 127.0.0.1 (another if taken)")
    ap.add_argument("--period", type=int, default=2, help="seconds between blocks")
    ap.add_argument("--chain-id", type=int, default=CLIQUE_CHAIN_ID)
    opts = ap.parse_args(argv)
    node = CliqueNode(opts.dir, CliqueSpec(chain_id=opts.chain_id, period=opts.period))
    url = node.start(rpc_port=opts.port)
    print(f"export TDS_RPC_URL={url} TDS_CHAIN_ID={opts.chain_id}   # log: {node.log_file}", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop and node.running:
        time.sleep(0.5)
    node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
