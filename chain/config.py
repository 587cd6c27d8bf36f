"""All configuration in one place: environment variables over defaults that run locally.

| variable          | meaning                                                   | default                    |
|-------------------|-----------------------------------------------------------|----------------------------|
| TDS_PROJECT_ROOT  | project checkout (contracts/, node_modules/, artifacts/)   | this package's checkout    |
| TDS_HOME          | state folder (node pid/log/state, keystores, journals)    | <project>/.tds             |
| TDS_RPC_URL       | an external EVM node (consortium chain); unset = embedded | unset                      |
| TDS_CHAIN_ID      | chain id the external node must report                    | unset (not checked)        |
| TDS_CHAIN_PORT    | preferred loopback port for the embedded anvil            | 18545                      |
| TDS_IPFS_API      | a Kubo RPC API (multiaddr or URL); unset = embedded store | unset                      |
| TDS_DEPLOYMENT    | deployment file (addresses, ABIs, chain id, block)        | <project>/deployments/<chain id>.json |
| TDS_KEYSTORE_PASSWORD | password of every keystore (wallets, identities, data keys) | prompted                |
| TDS_INDEX_URL     | event index database (SQLAlchemy URL: sqlite, postgresql) | sqlite:///<home>/index/events.sqlite |
| TDS_MIN_QUALITY   | overall quality score a dataset needs to be registered    | 0.8                        |
| TDS_SOURCES_DIR   | live sources' state, quarantine, version history, alerts  | <home>/sources             |
| TDS_SOURCE_<NAME>_TOKEN / _PASSWORD | a REST source's bearer token / basic-auth password | unset          |
| TDS_CRYPTO_PROFILE | off-chain cryptography: default (AES, SHA-256) or sm (SM4, SM3, SM2) | default |

``TDS_KEYSTORE_PASSPHRASE`` (the data keystores' former name) still works, with a deprecation
warning, when ``TDS_KEYSTORE_PASSWORD`` is unset.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOLC_VERSION = "0.8.37"
DEFAULT_CHAIN_PORT = 18545
EMBEDDED_CHAIN_ID = 31337
KEYSTORE_PASSWORD_ENV = "TDS_KEYSTORE_PASSWORD"
_DEPRECATED_PASSWORD_ENV = "TDS_KEYSTORE_PASSPHRASE"
CRYPTO_PROFILE_ENV = "TDS_CRYPTO_PROFILE"
CRYPTO_PROFILES = ("default", "sm")


def _optional_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw, 0)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer; set it to a number such as 31337") from exc


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`load_settings`; override fields in tests."""

    project_root: Path = PROJECT_ROOT
    home: Path = field(default_factory=lambda: PROJECT_ROOT / ".tds")
    rpc_url: str | None = None
    chain_id: int | None = None
    chain_port: int = DEFAULT_CHAIN_PORT
    ipfs_api: str | None = None
    deployment_file: Path | None = None
    index_url: str | None = None
    min_quality: str = "0.8"
    sources_home: Path | None = None
    crypto_profile: str = "default"

    @property
    def chain_dir(self) -> Path:
        """Where the embedded node keeps its pid file, log and state."""
        return self.home / "chain"

    @property
    def node_modules(self) -> Path:
        return self.project_root / "node_modules"

    @property
    def artifacts_dir(self) -> Path:
        return self.project_root / "artifacts"

    @property
    def contracts_dir(self) -> Path:
        return self.project_root / "contracts"

    @property
    def index_database_url(self) -> str:
        """The event index's SQLAlchemy URL (TDS_INDEX_URL, else a SQLite file under TDS_HOME)."""
        return self.index_url or f"sqlite:///{self.home / 'index' / 'events.sqlite'}"

    @property
    def sources_dir(self) -> Path:
        """Live sources: state file, version histories, alerts (TDS_SOURCES_DIR overrides)."""
        return self.sources_home or self.home / "sources"

    def deployment_path(self, chain_id: int) -> Path:
        """The deployment file for ``chain_id`` (TDS_DEPLOYMENT overrides)."""
        if self.deployment_file is not None:
            return self.deployment_file
        return self.project_root / "deployments" / f"{chain_id}.json"


def load_settings() -> Settings:
    """Read the environment once; defaults run on a laptop with no configuration."""
    root_env = os.environ.get("TDS_PROJECT_ROOT")
    root = Path(root_env).expanduser().resolve() if root_env else PROJECT_ROOT
    home = os.environ.get("TDS_HOME")
    deployment = os.environ.get("TDS_DEPLOYMENT")
    return Settings(
        project_root=root,
        home=Path(home).expanduser().resolve() if home else root / ".tds",
        rpc_url=os.environ.get("TDS_RPC_URL") or None,
        chain_id=_optional_int("TDS_CHAIN_ID"),
        chain_port=_optional_int("TDS_CHAIN_PORT") or DEFAULT_CHAIN_PORT,
        ipfs_api=os.environ.get("TDS_IPFS_API") or None,
        deployment_file=Path(deployment).expanduser().resolve() if deployment else None,
        index_url=os.environ.get("TDS_INDEX_URL") or None,
        min_quality=_quality(os.environ.get("TDS_MIN_QUALITY") or "0.8"),
        sources_home=Path(os.environ["TDS_SOURCES_DIR"]).expanduser().resolve()
        if os.environ.get("TDS_SOURCES_DIR") else None,
        crypto_profile=crypto_profile_name(),
    )


def _quality(raw: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not 0 <= value <= 1:
        raise ValueError(f"TDS_MIN_QUALITY={raw!r} must be a number between 0 and 1, such as 0.8")
    return raw


def source_secret_env(source: str, kind: str) -> str:
    """The variable holding a source's secret: ``TDS_SOURCE_<NAME>_TOKEN`` / ``_PASSWORD``."""
    name = "".join(ch if ch.isalnum() else "_" for ch in source).upper()
    return f"TDS_SOURCE_{name}_{kind.upper()}"


def source_secret(source: str, kind: str) -> str | None:
    """A live source's credential (``kind`` = token | password) from the environment."""
    return os.environ.get(source_secret_env(source, kind)) or None


def keystore_password() -> str | None:
    """The keystore password from the environment (``TDS_KEYSTORE_PASSWORD``), or None.

    The former name ``TDS_KEYSTORE_PASSPHRASE`` is read when the new one is unset, with a
    :class:`DeprecationWarning` that names the replacement."""
    value = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if value is not None:
        return value
    old = os.environ.get(_DEPRECATED_PASSWORD_ENV)
    if old is not None:
        warnings.warn(f"{_DEPRECATED_PASSWORD_ENV} is deprecated; set {KEYSTORE_PASSWORD_ENV} instead",
                      DeprecationWarning, stacklevel=2)
    return old


def crypto_profile_name() -> str:
    """The configured cryptography profile (``TDS_CRYPTO_PROFILE``): ``default`` or ``sm``.

    Read at each call, like the keystore password, so a test can switch it with monkeypatch;
    an unknown name is refused with the accepted ones."""
    raw = (os.environ.get(CRYPTO_PROFILE_ENV) or "default").strip().lower()
    if raw not in CRYPTO_PROFILES:
        raise ValueError(f"{CRYPTO_PROFILE_ENV}={raw!r} is not a cryptography profile; "
                         f"set it to one of {', '.join(CRYPTO_PROFILES)}")
    return raw
