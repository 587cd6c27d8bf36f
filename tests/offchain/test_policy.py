from offchain.errors import PolicyError
from offchain.ingest.classification import classify
from offchain.ingest.schema import Field, Schema
from offchain.onion.policy import ReleaseRules, default_policy, exposure

import pytest

S = Schema((Field("customer_id", "identifier"), Field("salary", "decimal"), Field("id_card", "string"),
            Field("amount", "decimal"), Field("qty", "integer"), Field("day", "date")))


def test_default_policy_confidential_gets_hom_only():
    p = default_policy(S, classify(S))
    assert p.onions("salary") == ("hom",)
    assert p.onions("id_card") == ("blob",)
    assert p.onions("customer_id") == ("eq",)
    assert p.onions("amount") == ("ord", "hom")          # sensitive: no DET
    assert p.onions("qty") == ("eq", "ord", "hom")
    with pytest.raises(PolicyError) as e:
        p.require("salary", "range")
    assert e.value.column == "salary" and e.value.operation == "range"


def test_exposure_shown_before_signing():
    c = classify(S)
    p = default_policy(S, c)
    ex = exposure(p, c, [("sum", "salary"), ("range", "amount"), ("range", "salary"), ("equality", "customer_id")],
                  consumer="did:c", price=10, rules=ReleaseRules(min_price_leaky=100))
    by = {(e.operation, e.column): e for e in ex}
    assert by[("sum", "salary")].allowed and by[("sum", "salary")].severity == "low"
    assert not by[("range", "amount")].allowed and "order" in by[("range", "amount")].leaks
    assert not by[("range", "salary")].allowed and "no 'ord' onion" in by[("range", "salary")].reason
    assert by[("equality", "customer_id")].allowed
    trusted = exposure(p, c, [("range", "amount")], consumer="did:t",
                       rules=ReleaseRules(trusted_consumers=frozenset({"did:t"}), min_price_leaky=100))
    assert trusted[0].allowed


def test_overrides_validated():
    with pytest.raises(PolicyError):
        default_policy(S, classify(S), overrides={"customer_id": ["hom"]})
