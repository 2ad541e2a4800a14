"""RAM policy documents as RAM reads them: policy language Version "1", and any account unless one is named."""

from __future__ import annotations

from imm_faces.components.policies import checker_policy, service_policy, trust_policy


def test_every_document_is_policy_language_version_1() -> None:
    for document in (
        trust_policy(),
        service_policy(["oss://photos/p/"], "t", "cn-hangzhou"),
        checker_policy("p", "d", "cn-hangzhou"),
    ):
        assert document["Version"] == "1"
        assert set(document) == {"Version", "Statement"}


def test_resources_default_to_any_account() -> None:
    (*_, publish) = service_policy(["oss://photos/"], "done", "cn-hangzhou")["Statement"]
    assert publish["Resource"] == ["acs:mns:cn-hangzhou:*:/topics/done/messages"]
    arns = sorted(s["Resource"][0] for s in checker_policy("p", "d", "cn-hangzhou")["Statement"])
    assert arns == ["acs:imm:cn-hangzhou:*:project/p", "acs:imm:cn-hangzhou:*:project/p/dataset/d"]
