"""A participant's identity under the ``sm`` profile: an SM2 did:key, an SM2 key-agreement key and
an Ethereum account — the SM2 twin of :class:`did.identity.Identity`, stored the same way
(``<root>/<name>/``: ``ethereum-keystore.json``, ``did-keys.json`` with the two SM2 secrets under
scrypt + AES-256-GCM, ``public.json`` with ``"profile": "sm"``); :meth:`Identity.load
<did.identity.Identity.load>` returns one for such a folder.

On chain the IdentityRegistry keeps a 32-byte ``keyAgreementKey``: an SM2 point does not fit,
so the key-agreement key is made with an even ``y`` (``d`` or ``n − d``, as BIP-340 does for
x-only keys) and the chain records its ``x``; :func:`agreement_point` restores ``02 ‖ x``. The
DID document (its digest recorded on chain as for Ed25519) names both SM2 keys in full."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.crypto_profile import SM
from chain.sm2 import N, Sm2Error, Sm2PrivateKey
from did.document import DID_CONTEXT, PublishedDocument
from did.errors import InvalidDocument, KeystoreCorrupt
from did.keys import b58encode, verification_method_id
from did.keystore import decrypt_eth_key, decrypt_secrets, encrypt_eth_key, encrypt_secrets
from did.sm2 import SM2_CODEC, Sm2Identity, compress, decompress, did_from_sm2, sm2_from_did

SM2_VM_TYPE = "Sm2VerificationKey"
SM2_KA_TYPE = "Sm2KeyAgreementKey"
__all__ = ["Sm2Participant", "agreement_point", "even_y_key", "build_sm2_document", "verify_sm2_document"]


def even_y_key() -> Sm2PrivateKey:
    """A fresh SM2 key whose public point has an even ``y`` (so its ``x`` alone names it)."""
    while True:
        key = Sm2PrivateKey.generate()
        if key.public[-1] & 1 == 0:
            return key
        d = int.from_bytes(key.secret, "big")
        if d >= 2:                                      # n − d must stay within [1, n − 2]
            return Sm2PrivateKey((N - d).to_bytes(32, "big"))


def agreement_point(key: bytes) -> bytes:
    """The 65-byte SM2 key-agreement point of an on-chain 32-byte key (``x``, even ``y``) or of a
    33/65-byte point given whole."""
    key = bytes(key)
    if len(key) == 32:
        return decompress(b"\x02" + key)
    point = decompress(key if len(key) == 33 else compress(key))
    if len(key) == 65 and point != key:
        raise Sm2Error("the SM2 key-agreement point is not on the curve")
    return point


def _multibase(public: bytes) -> str:
    return "z" + b58encode(SM2_CODEC + compress(public))


def build_sm2_document(did: str, agreement_public: bytes) -> dict[str, Any]:
    """The DID document of an SM2 ``did`` with its SM2 key-agreement key."""
    sign_id, ka_mb = verification_method_id(did), _multibase(agreement_public)
    ka_id = f"{did}#{ka_mb}"
    return {"@context": [DID_CONTEXT], "id": did,
            "verificationMethod": [
                {"id": sign_id, "type": SM2_VM_TYPE, "controller": did,
                 "publicKeyMultibase": _multibase(sm2_from_did(did))},
                {"id": ka_id, "type": SM2_KA_TYPE, "controller": did, "publicKeyMultibase": ka_mb}],
            "authentication": [sign_id], "assertionMethod": [sign_id], "keyAgreement": [ka_id]}


def verify_sm2_document(doc: dict[str, Any], did: str | None = None) -> bytes:
    """Check an SM2 DID document belongs to its DID (and to ``did``); return the 32-byte on-chain
    form (``x``) of its key-agreement key."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise InvalidDocument("DID document must be a JSON object with an 'id'")
    if did is not None and doc["id"] != did:
        raise InvalidDocument(f"DID document is for {doc['id']}, not {did}")
    try:
        ref = doc["keyAgreement"][0]
        vm = next(v for v in doc["verificationMethod"] if v["id"] == ref)
        public = sm2_from_did("did:key:" + vm["publicKeyMultibase"])
    except Exception as exc:  # noqa: BLE001 - any shape error is the same refusal
        raise InvalidDocument(f"DID document has no usable SM2 keyAgreement key ({exc!r})") from None
    if doc != build_sm2_document(doc["id"], public) or public[-1] & 1:
        raise InvalidDocument(f"DID document of {doc['id']} does not match the SM2 keys it should name")
    return public[1:33]


@dataclass
class Sm2Participant(PublishedDocument):
    """Everything an ``sm`` participant signs, decrypts and transacts with."""

    name: str
    signing: Sm2PrivateKey
    agreement: Sm2PrivateKey
    account: LocalAccount
    binding: dict[str, Any] | None = field(default=None, repr=False)
    profile: str = SM

    @classmethod
    def create(cls, name: str, account: LocalAccount | None = None) -> "Sm2Participant":
        """Fresh SM2 DID and key-agreement keys; a fresh Ethereum account unless one is given."""
        from did.identity import check_name
        return cls(check_name(name), Sm2PrivateKey.generate(), even_y_key(), account or Account.create())

    @property
    def did(self) -> str:
        return did_from_sm2(self.signing.public)

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def verification_method(self) -> str:
        return verification_method_id(self.did)

    @property
    def agreement_public(self) -> bytes:
        return self.agreement.public

    @property
    def key_agreement_key(self) -> bytes:
        """The 32-byte key the IdentityRegistry records (``x`` of the even-``y`` agreement point)."""
        return self.agreement.public[1:33]

    @property
    def sm2(self) -> Sm2Identity:
        """The keys as :mod:`did.sm2` seals and opens envelopes with them."""
        return Sm2Identity(self.name, self.signing, self.agreement)

    @property
    def document(self) -> dict[str, Any]:
        return build_sm2_document(self.did, self.agreement_public)

    def binding_proof(self, chain_id: int) -> dict[str, Any]:
        """The two-way binding proof for ``chain_id`` (the DID side signed with SM2)."""
        from did.binding import make_binding_proof
        if self.binding is None or self.binding["statement"]["chainId"] != chain_id:
            self.binding = make_binding_proof(self.signing, self.account, chain_id)
        return self.binding

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "did": self.did, "address": self.address, "profile": SM,
                "documentCid": self.document_cid, "documentDigest": "0x" + self.document_digest.hex(),
                "keyAgreementKey": "0x" + self.key_agreement_key.hex(), "document": self.document,
                "binding": self.binding}

    def save(self, root: Path, password: str, *, overwrite: bool = False, scrypt_n: int | None = None) -> Path:
        """Store the keys encrypted (the layout of :meth:`did.identity.Identity.save`)."""
        from did.identity import ETH_FILE, KEYS_FILE, prepare_folder, write_json
        folder = prepare_folder(root, self.name, overwrite)
        secrets = {"sm2": self.signing.secret, "sm2-agreement": self.agreement.secret}
        write_json(folder / ETH_FILE, encrypt_eth_key(self.account, password, scrypt_n))
        write_json(folder / KEYS_FILE, encrypt_secrets(secrets, password, label=self.did, scrypt_n=scrypt_n))
        self.save_public(root)
        return folder

    def save_public(self, root: Path) -> None:
        from did.identity import PUBLIC_FILE, write_json
        write_json(Path(root) / self.name / PUBLIC_FILE, self.public(), private=False)

    @classmethod
    def load(cls, root: Path, name: str, password: str) -> "Sm2Participant":
        """The identity stored under ``root/name`` (its ``public.json`` says ``"profile": "sm"``)."""
        from did.identity import ETH_FILE, KEYS_FILE, check_name, read_public
        folder = Path(root) / check_name(name)
        pub = read_public(root, name)
        try:
            eth = json.loads((folder / ETH_FILE).read_text())
            blob = json.loads((folder / KEYS_FILE).read_text())
        except FileNotFoundError as exc:
            raise KeystoreCorrupt(f"identity {name!r} is missing {Path(exc.filename).name}") from None
        except ValueError as exc:
            raise KeystoreCorrupt(f"identity {name!r} has a malformed key file: {exc}") from None
        account = decrypt_eth_key(eth, password)
        secrets = decrypt_secrets(blob, password)
        try:
            ident = cls(name, Sm2PrivateKey(secrets["sm2"]), Sm2PrivateKey(secrets["sm2-agreement"]), account,
                        pub.get("binding"))
        except KeyError as exc:
            raise KeystoreCorrupt(f"identity {name!r}: its key file has no {exc} key (not an SM2 identity)") from None
        if ident.did != pub.get("did") or ident.address != pub.get("address") or blob.get("label") != ident.did:
            raise KeystoreCorrupt(f"identity {name!r}: keys do not match public.json (files mixed up?)")
        return ident
