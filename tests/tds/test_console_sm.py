"""The console under the ``sm`` profile: the browser cannot do SM2, so the page is told the profile
(``/console/config``) and refuses to seal job parameters, and the gateway refuses a parameter block
of another profile than the one in force (``params-profile-mismatch``, naming CryptoProfileMismatch)."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from chain.params import seal_params
from did.sm2_identity import even_y_key
from tds.gateway.console import _static
from tests.tds.console_world import ConsoleWorld, console_world

HOM_AGG = 4


@pytest.fixture(scope="module")
def cw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(tmp_path_factory.mktemp("console-sm")) as w:
        yield w


def _post(client: TestClient, params: dict) -> tuple[int, dict]:
    r = client.post("/console/params", json={"params": params, "grantId": 1, "operation": HOM_AGG,
                                             "deadline": 2 ** 39, "value": 0})
    return r.status_code, r.json()


def test_the_console_refuses_parameters_of_another_profile(cw: ConsoleWorld, monkeypatch: pytest.MonkeyPatch):
    client = TestClient(cw.app)
    x25519 = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    browser_block = json.loads(seal_params({"dataset": "d", "aggregates": [["count"]]}, [x25519], profile="default"))
    sm_block = json.loads(seal_params({"dataset": "d", "aggregates": [["count"]]}, [even_y_key().public[1:33]],
                                      profile="sm"))
    assert client.get("/console/config").json()["cryptoProfile"] == "default"
    status, body = _post(client, sm_block)             # an sm block at a default gateway
    assert (status, body["error"]) == (400, "params-profile-mismatch") and "'sm'" in body["detail"]

    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")
    assert client.get("/console/config").json()["cryptoProfile"] == "sm"
    status, body = _post(client, browser_block)        # what the page would make: refused by name
    assert (status, body["error"]) == (400, "params-profile-mismatch")
    assert "CryptoProfileMismatch" in body["detail"] and "tds job request" in body["detail"]
    # the page itself checks the profile before sealing anything
    job_js = _static("job.js").decode()
    guard = job_js.index('ctx.config.cryptoProfile === "sm"')
    assert "UnsupportedInBrowser" in job_js[guard:guard + 400] and guard < job_js.index("await sealParams(")
