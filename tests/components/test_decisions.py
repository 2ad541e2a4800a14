"""The component's decisions as pure functions, table by table: names, validation, RAM documents, diffs."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.output import Unknown

from imm_faces.components.args import ArgsError, FaceClusteringArgs, NameScope, derived_name
from imm_faces.components.policies import service_policy, to_json, trust_policy
from imm_faces.components.providers.base import plan_diff
from imm_faces.components.providers.core import UNKNOWN


@pytest.mark.parametrize(
    ("component", "suffix", "limit", "expected"),
    [
        ("faces", "project", 128, "faces-project"),
        ("my faces/prod", "faces", 128, "my-faces-prod-faces"),
        ("2026-photos", "project", 128, "f-2026-photos-project"),
        ("___", "project", 128, "faces-project"),
    ],
)
def test_derived_names(component: str, suffix: str, limit: int, expected: str) -> None:
    assert derived_name(component, suffix, limit=limit) == expected


def test_default_names_are_qualified_by_project_and_stack() -> None:
    """Two stacks (or two Pulumi projects) in one account never pick the same physical name by default."""
    names = {
        (scope, suffix): derived_name("faces", suffix, scope=scope, limit=64)
        for scope in (NameScope("imm-faces", "dev"), NameScope("imm-faces", "prod"), NameScope("other", "dev"))
        for suffix in ("project", "faces", "imm-role", "imm-policy")
    }
    assert names[(NameScope("imm-faces", "dev"), "imm-role")] == "imm-faces-dev-faces-imm-role"
    assert len(set(names.values())) == len(names)


def test_long_names_keep_their_difference_within_the_limit() -> None:
    """Truncation must not make two long names equal: the end is a hash of the whole name."""
    a = derived_name("x" * 70 + "a", "imm-role", limit=64)
    b = derived_name("x" * 70 + "b", "imm-role", limit=64)
    assert len(a) == len(b) == 64 and a != b and a.startswith("x" * 40)
    scoped = derived_name("faces", "imm-role", scope=NameScope("p" * 40, "s" * 40), limit=64)
    assert len(scoped) <= 64 and scoped != derived_name("faces", "imm-role", scope=NameScope("p" * 40, "s" * 41))


OK: dict[str, Any] = {"region": "cn-hangzhou"}


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"region": "mars-1"}, "region", "must be an IMM region"),
        ({"project_name": "9lives"}, "project_name", "starting with a letter or '_'"),
        ({"dataset_name": "a" * 129}, "dataset_name", "1-128 characters"),
        ({"description": ""}, "description", "must be 1-256 characters"),
        ({"quotas": {"DatasetMaxBindCount": 11}}, "quotas['DatasetMaxBindCount']", "between 1 and 10"),
        ({"quotas": {"Nope": 1}}, "quotas['Nope']", "not an IMM quota"),
        ({"quotas": {"DatasetMaxFileCount": "10"}}, "quotas['DatasetMaxFileCount']", "must be an integer"),
        ({"oss_locations": ["s3://x/y"]}, "oss_locations[0]", "oss://<bucket>"),
        ({"oss_locations": ["oss://bkt/a/", "oss://bkt/a/"]}, "oss_locations[1]", "listed twice"),
        (
            {"oss_locations": [f"oss://bkt/{i}/" for i in range(3)], "quotas": {"DatasetMaxBindCount": 2}},
            "oss_locations",
            "at most DatasetMaxBindCount=2",
        ),
        ({"notification_topic": "bad topic!"}, "notification_topic", "letters, digits and '-'"),
        ({"service_role": "role with spaces"}, "service_role", "1-64 characters"),
        ({"account_id": "12ab"}, "account_id", "must be 1-32 ASCII digits"),
        ({"account_id": "\u0661\u0662\u0663"}, "account_id", "must be 1-32 ASCII digits"),  # Arabic-Indic digits
        ({"account_id": "1" * 33}, "account_id", "must be 1-32 ASCII digits"),
        ({"clustering_timeout": 0}, "clustering_timeout", "positive number of seconds"),
        ({"clustering_triggers": {"k": 1}}, "clustering_triggers", "must be strings"),
        ({"endpoint": "127.0.0.1:8080"}, "endpoint", "http(s) URL"),
        ({"manage_project": False, "service_role": "r"}, "service_role", "only a managed project"),
        ({"role_name": "role/x"}, "role_name", "1-64 characters"),
        ({"policy_name": "p.x"}, "policy_name", "1-128 characters: letters, digits and '-'"),
        ({"scan_timeout": -1}, "scan_timeout", "positive number of seconds"),
        ({"adopt_existing": "yes"}, "adopt_existing", "true or false"),
    ],
)
def test_every_rule_names_its_field(changes: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ArgsError) as err:
        FaceClusteringArgs(**{**OK, **changes}).resolved("faces")
    assert err.value.field == field
    assert rule in err.value.rule
    assert str(err.value).startswith(f"FaceClusteringArgs.{field}: ")


def test_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(ArgsError, match="unknown argument"):
        FaceClusteringArgs.from_config({"region": "cn-hangzhou", "bucket": "x"})


def test_defaults_and_quota_routing() -> None:
    resolved = FaceClusteringArgs(
        region="cn-shanghai", quotas={"ProjectMaxDatasetCount": 3, "DatasetMaxFileCount": 1000}
    ).resolved("team photos", NameScope("acme", "prod"))
    assert (resolved.project_name, resolved.dataset_name) == (
        "acme-prod-team-photos-project",
        "acme-prod-team-photos-faces",
    )
    assert resolved.project_quotas == {"ProjectMaxDatasetCount": 3}
    assert resolved.dataset_quotas == {"DatasetMaxFileCount": 1000}
    assert (resolved.role_name, resolved.policy_name) == (
        "acme-prod-team-photos-imm-role",
        "acme-prod-team-photos-imm-policy",
    )
    assert resolved.account_id == "*" and not resolved.adopt_existing and not resolved.delete_adopted
    explicit = FaceClusteringArgs(region="cn-shanghai", role_name="r1", policy_name="p1").resolved("x")
    assert (explicit.role_name, explicit.policy_name) == ("r1", "p1")


def test_trust_policy_trusts_only_imm() -> None:
    (statement,) = trust_policy()["Statement"]
    assert statement == {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["imm.aliyuncs.com"]}}


@pytest.mark.parametrize(
    ("locations", "topic", "expected_resources"),
    [
        ([], None, []),
        (["oss://photos"], None, [["acs:oss:*:*:photos/*"], ["acs:oss:*:*:photos"]]),
        (
            ["oss://photos/family/", "oss://archive/2020/"],
            "faces-done",
            [
                ["acs:oss:*:*:photos/family/*"],
                ["acs:oss:*:*:photos"],
                ["acs:oss:*:*:archive/2020/*"],
                ["acs:oss:*:*:archive"],
                ["acs:mns:cn-hangzhou:123:/topics/faces-done/messages"],
            ],
        ),
    ],
)
def test_service_policy_is_least_privilege(
    locations: list[str], topic: str | None, expected_resources: list[list[str]]
) -> None:
    doc = service_policy(locations, topic, "cn-hangzhou", "123")
    assert [s["Resource"] for s in doc["Statement"]] == expected_resources
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), statement  # no wildcard action
        assert set(statement["Action"]) <= {
            "oss:GetObject",
            "oss:GetObjectMeta",
            "oss:ListObjects",
            "mns:PublishMessage",
        }
    listings = [s for s in doc["Statement"] if s["Action"] == ["oss:ListObjects"]]
    for listing, uri in zip(listings, locations, strict=True):
        prefix = uri.removeprefix("oss://").partition("/")[2]
        assert listing.get("Condition", {}).get("StringLike", {}).get("oss:Prefix") == (
            [f"{prefix}*"] if prefix else None
        )


def test_policy_json_is_canonical() -> None:
    """The same document in any key order gives the same text (else every `up` would show a policy diff)."""
    assert to_json({"b": 1, "a": {"d": [2, 1], "c": "x"}}) == '{"a":{"c":"x","d":[2,1]},"b":1}'
    doc = service_policy(["oss://bkt/p/"], "t", "cn-hangzhou")
    reordered = {k: doc[k] for k in reversed(list(doc))}
    reordered["Statement"] = [{k: s[k] for k in reversed(list(s))} for s in doc["Statement"]]
    assert to_json(reordered) == to_json(doc) and " " not in to_json(doc)


BASE = {"region": "cn-hangzhou", "endpoint": None, "project_name": "p", "description": "a"}


@pytest.mark.parametrize(
    ("news", "changes", "replaces", "delete_first"),
    [
        ({}, False, [], False),
        ({"description": "b"}, True, [], False),
        ({"project_name": "q"}, True, ["project_name"], False),  # a new name can exist beside the old one
        ({"region": "cn-shanghai"}, True, ["region"], True),  # same name: the old one must go first
        ({"endpoint": "http://127.0.0.1:1"}, True, ["endpoint"], True),
    ],
)
def test_plan_diff(news: dict[str, Any], changes: bool, replaces: list[str], delete_first: bool) -> None:
    plan = plan_diff(
        BASE,
        {**BASE, **news},
        replace_on=("region", "endpoint", "project_name"),
        update_on=("description",),
        unique=("project_name",),
    )
    assert (plan.changes, plan.replaces, plan.delete_before_replace) == (changes, replaces, delete_first)


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        (False, Unknown(), False),  # a preview while the dataset is updated (the dynamic host's Unknown); `up`
        (True, Unknown(), False),  # diffs again with the value
        (False, UNKNOWN, False),  # the plugin's sentinel
        (False, True, True),  # known and changed: an update
        (True, False, True),
    ],
)
def test_binding_unknown_on_delete_input_is_no_change_yet(old: bool, new: object, changes: bool) -> None:
    from imm_faces.components.providers import BindingProvider

    olds = {
        "region": "cn-hangzhou",
        "project_name": "p",
        "dataset_name": "d",
        "uri": "oss://b/",
        "adopt": False,
        "delete_adopted": False,
        "unindex_on_delete": old,
    }
    plan = BindingProvider().diff("p/d/oss://b/", olds, {**olds, "unindex_on_delete": new})
    assert (plan.changes, plan.replaces) == (changes, [])


def test_quota_arguments_reach_provider_settings() -> None:
    """Every quota the args accept maps to a setting the receiving provider sends to IMM."""
    from imm_faces.components.args import DATASET_QUOTAS, PROJECT_QUOTAS
    from imm_faces.components.providers import DatasetProvider, ProjectProvider
    from imm_faces.runtime.models.base import snake_name
    from imm_faces.runtime.rules import QUOTAS

    assert set(PROJECT_QUOTAS) | set(DATASET_QUOTAS) == set(QUOTAS)
    assert {snake_name(q) for q in PROJECT_QUOTAS} <= set(ProjectProvider.update_on)
    assert {snake_name(q) for q in DATASET_QUOTAS} <= set(DatasetProvider.update_on)


def test_outputs_before_the_object_is_readable() -> None:
    """Right after a create, IMM may not show the object yet: outputs keep the stack's properties."""
    from imm_faces.components.providers import BindingProvider, ProjectProvider

    props = {"region": "cn-hangzhou", "project_name": "p", "tags": {"k": "v"}}
    assert ProjectProvider().outputs(props, None) == {**props, "create_time": None, "update_time": None}
    assert BindingProvider().outputs(props, None)["state"] is None
