"""A participant's identity: name, DID (Ed25519), X25519 key-agreement key, Ethereum account
(under ``TDS_CRYPTO_PROFILE=sm``: SM2 keys, :class:`did.sm2_identity.Sm2Participant`; made by
:func:`create_identity`, and :meth:`Identity.load` returns whichever a folder holds).

Stored as a folder ``<root>/<name>/``:

* ``ethereum-keystore.json`` — keystore v3 (import it into a wallet as is);
* ``did-keys.json`` — Ed25519 + X25519 private keys, scrypt + AES-256-GCM;
* ``public.json`` — DID, address, DID document, binding proof (no secrets).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.crypto_profile import DEFAULT, SM, configured_profile, get_profile
from did.binding import make_binding_proof
from did.document import PublishedDocument, build_document
from did.errors import IdentityExists, IdentityNotFound, KeystoreCorrupt
from did.keys import did_from_ed25519, ed25519_jwk, raw_private, raw_public, verification_method_id
from did.keystore import decrypt_eth_key, decrypt_secrets, encrypt_eth_key, encrypt_secrets

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ETH_FILE, KEYS_FILE, PUBLIC_FILE = "ethereum-keystore.json", "did-keys.json", "public.json"


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise IdentityNotFound(f"identity name {name!r} is invalid: use letters, digits, '.', '_' or '-'")
    return name


@dataclass
class Identity(PublishedDocument):
    """Everything a participant signs, decrypts and transacts with."""

    name: str
    ed25519: Ed25519PrivateKey
    x25519: X25519PrivateKey
    account: LocalAccount
    binding: dict[str, Any] | None = field(default=None, repr=False)
    profile: str = field(default=DEFAULT, init=False)

    @classmethod
    def create(cls, name: str, account: LocalAccount | None = None) -> "Identity":
        """Fresh DID and key-agreement keys; a fresh Ethereum account unless one is given."""
        return cls(check_name(name), Ed25519PrivateKey.generate(), X25519PrivateKey.generate(),
                   account or Account.create())

    # --- public views ---------------------------------------------------------------------------
    @property
    def did(self) -> str:
        return did_from_ed25519(self.ed25519.public_key())

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def verification_method(self) -> str:
        return verification_method_id(self.did)

    @property
    def jwk(self) -> str:
        """Private JWK for didkit (keep in memory only)."""
        return ed25519_jwk(self.ed25519)

    @property
    def x25519_public(self) -> bytes:
        return raw_public(self.x25519.public_key())

    @property
    def key_agreement_key(self) -> bytes:
        """The 32-byte key the IdentityRegistry records (the X25519 public key)."""
        return self.x25519_public

    @property
    def document(self) -> dict[str, Any]:
        return build_document(self.did, self.x25519_public)

    def binding_proof(self, chain_id: int) -> dict[str, Any]:
        """The two-way binding proof for ``chain_id`` (made once, then reused)."""
        if self.binding is None or self.binding["statement"]["chainId"] != chain_id:
            self.binding = make_binding_proof(self.ed25519, self.account, chain_id)
        return self.binding

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "did": self.did, "address": self.address, "documentCid": self.document_cid,
                "documentDigest": "0x" + self.document_digest.hex(), "keyAgreementKey": "0x" + self.x25519_public.hex(),
                "document": self.document, "binding": self.binding}

    # --- storage --------------------------------------------------------------------------------
    def save(self, root: Path, password: str, *, overwrite: bool = False, scrypt_n: int | None = None) -> Path:
        folder = prepare_folder(root, self.name, overwrite)
        secrets = {"ed25519": raw_private(self.ed25519), "x25519": raw_private(self.x25519)}
        write_json(folder / ETH_FILE, encrypt_eth_key(self.account, password, scrypt_n))
        write_json(folder / KEYS_FILE, encrypt_secrets(secrets, password, label=self.did, scrypt_n=scrypt_n))
        self.save_public(root)
        return folder

    def save_public(self, root: Path) -> None:
        write_json(Path(root) / self.name / PUBLIC_FILE, self.public(), private=False)

    @classmethod
    def load(cls, root: Path, name: str, password: str) -> "Identity":
        """The identity stored under ``root/name`` — an :class:`~did.sm2_identity.Sm2Participant`
        when its ``public.json`` says ``"profile": "sm"``."""
        folder = Path(root) / check_name(name)
        pub = read_public(root, name)
        if get_profile(pub.get("profile")).name == SM:
            from did.sm2_identity import Sm2Participant
            return Sm2Participant.load(root, name, password)  # type: ignore[return-value]
        try:
            eth = json.loads((folder / ETH_FILE).read_text())
            blob = json.loads((folder / KEYS_FILE).read_text())
        except FileNotFoundError as exc:
            raise KeystoreCorrupt(f"identity {name!r} is missing {Path(exc.filename).name}") from None
        except ValueError as exc:
            raise KeystoreCorrupt(f"identity {name!r} has a malformed key file: {exc}") from None
        account = decrypt_eth_key(eth, password)
        secrets = decrypt_secrets(blob, password)
        ident = cls(name, Ed25519PrivateKey.from_private_bytes(secrets["ed25519"]),
                    X25519PrivateKey.from_private_bytes(secrets["x25519"]), account, pub.get("binding"))
        if ident.did != pub.get("did") or ident.address != pub.get("address") or blob.get("label") != ident.did:
            raise KeystoreCorrupt(f"identity {name!r}: keys do not match public.json (files mixed up?)")
        return ident


def create_identity(name: str, account: LocalAccount | None = None, profile: str | None = None) -> Any:
    """A fresh identity of ``profile`` (default: the one in force, ``TDS_CRYPTO_PROFILE``):
    Ed25519/X25519 (:class:`Identity`) or SM2 (:class:`~did.sm2_identity.Sm2Participant`)."""
    if (get_profile(profile) if profile is not None else configured_profile()).name == SM:
        from did.sm2_identity import Sm2Participant
        return Sm2Participant.create(name, account)
    return Identity.create(name, account)


def prepare_folder(root: Path, name: str, overwrite: bool) -> Path:
    """``root/name`` made private (0700); :class:`IdentityExists` unless ``overwrite``."""
    folder = Path(root) / check_name(name)
    if folder.exists() and not overwrite:
        raise IdentityExists(f"identity {name!r} already exists in {folder}; choose another name")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def read_public(root: Path, name: str) -> dict[str, Any]:
    path = Path(root) / check_name(name) / PUBLIC_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise IdentityNotFound(f"no identity named {name!r} under {root}; create it with 'tds id new {name}'") from None
    except ValueError as exc:
        raise KeystoreCorrupt(f"{path} is not valid JSON: {exc}") from None


def list_identities(root: Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if (p / PUBLIC_FILE).exists()) if root.exists() else []


def write_json(path: Path, obj: Any, private: bool = True) -> None:
    """Write ``obj`` as JSON atomically (0600 unless ``private`` is False)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
