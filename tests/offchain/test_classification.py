from offchain.ingest.classification import classify
from offchain.ingest.schema import Field, Schema


def test_levels_by_name_and_declaration():
    s = Schema((Field("id_card", "string"), Field("phone", "string"), Field("city", "string"),
                Field("score", "integer", classification="public")))
    c = classify(s)
    assert c.fields == {"id_card": "confidential", "phone": "sensitive", "city": "internal", "score": "public"}
    assert c.dataset == "confidential"
    assert classify(Schema((Field("city", "string"),)), floor="sensitive").dataset == "sensitive"
