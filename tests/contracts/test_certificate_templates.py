"""CertificateTemplates: operator-published rights scope, operations and default split."""
from conftest import H, SPLIT, reverts


def publish(system, sender=None, **over):
    args = dict(name="research", cid=b"\x12\x20" + b"\x55" * 32, terms=H("t"), rights=1, ops=4 | 8, split=SPLIT)
    args.update(over)
    return system.templates.publish(args["name"], args["cid"], args["terms"], args["rights"], args["ops"],
                                    args["split"], {"from": sender or system.cast.operator})


def test_publish_stores_terms_and_emits(system):
    tx = publish(system)
    tid = tx.return_value
    t = system.templates.templateOf(tid)
    assert t[0] == 1 and t[1] == 12 and t[3] is True and t[5] == H("t")
    assert system.templates.mintTerms(tid)[3] == 7000 | 1000 << 16 | 1500 << 32 | 500 << 48
    ev = tx.events["TemplatePublished"]
    assert ev["templateId"] == tid and [int(x) for x in ev["splitBps"]] == SPLIT and ev["name"] == "research"
    assert system.templates.templateCount() == tid


def test_publish_refuses_non_operator(system):
    with reverts("AccessControlUnauthorizedAccount"):
        publish(system, sender=system.cast.provider)


def test_publish_refuses_bad_split_ops_rights_name(system):
    with reverts("InvalidSplit", 9999):
        publish(system, split=[7000, 1000, 1500, 499])
    with reverts("InvalidOperationSet", 128):  # bits above PSI (64) are undefined
        publish(system, ops=128)
    with reverts("InvalidOperationSet", 0):
        publish(system, ops=0)
    with reverts("InvalidRights", 2):
        publish(system, rights=2)
    with reverts("EmptyTemplateName"):
        publish(system, name="")


def test_retire_blocks_new_certificates(system):
    tid = publish(system).return_value
    system.templates.retire(tid, {"from": system.cast.operator})
    assert system.templates.templateOf(tid)[3] is False
    with reverts("TemplateNotActive", tid):
        system.templates.retire(tid, {"from": system.cast.operator})
    with reverts("UnknownTemplate", 99):
        system.templates.templateOf(99)
