import json

import pytest

from did.document import (build_document, canonical_json, document_cid, document_digest, parse_document,
                          verify_document)
from did.errors import InvalidDocument


def test_document_has_both_keys(alice):
    doc = alice.document
    assert doc["id"] == alice.did
    assert verify_document(doc, alice.did) == alice.x25519_public
    assert doc["keyAgreement"][0].startswith(alice.did + "#z6LS")
    parsed, x = parse_document(alice.document_bytes, alice.did)
    assert parsed == doc and x == alice.x25519_public
    assert len(alice.document_digest) == 32 and alice.document_cid.startswith("Qm")


def test_digest_is_the_ipfs_cidv0_of_the_document(alice):
    unixfs = pytest.importorskip("offchain.store.unixfs")  # the project's own IPFS implementation
    assert document_cid(alice.document_bytes) == unixfs.file_cid(alice.document_bytes, 0)


def test_digest_known_answer():
    # `ipfs add` of the 12 bytes "hello world\n" is QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o
    assert document_cid(b"hello world\n") == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert document_digest(b"a") != document_digest(b"b")


def test_document_of_another_did_refused(alice, bob):
    with pytest.raises(InvalidDocument):
        verify_document(alice.document, bob.did)
    forged = build_document(alice.did, bob.x25519_public)
    forged["verificationMethod"][0]["publicKeyMultibase"] = bob.did.split(":")[-1]
    with pytest.raises(InvalidDocument):
        verify_document(forged)
    no_ka = dict(alice.document, keyAgreement=[])
    with pytest.raises(InvalidDocument):
        verify_document(no_ka)
    with pytest.raises(InvalidDocument):
        parse_document(json.dumps(alice.document).encode())  # not canonical
    with pytest.raises(InvalidDocument):
        parse_document(b"not json")
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
