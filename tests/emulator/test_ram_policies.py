"""RAM in the emulator: the policy language (grammar, wildcards, Deny over Allow, default deny, conditions), and
its decisions on every IMM and OSS request made with a key that has policies or with STS credentials issued under
a session policy; a malformed or oversized session policy refused as STS refuses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.ram import (
    Policy,
    PolicyError,
    PolicySizeError,
    Principal,
    parse_policy,
    ram_from_document,
)
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.auth.oss_signing import presign_url
from imm_faces.runtime.auth.signing import RpcV2Auth, encode_query
from imm_faces.runtime.auth.sts import STS_VERSION
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import datasets, projects
from imm_faces.runtime.rules import SESSION_POLICY_MAX_CHARS
from tests import oidc_kit as kit

IMM = "acs:imm:cn-hangzhou:1000000000000001"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# ------------------------------------------------------------------------------------------------ the grammar

MALFORMED = [
    ("{not json", "not JSON"),
    ("[]", "must be a JSON object"),
    (json.dumps({"Version": "2", "Statement": [allow("imm:*")]}), 'Version must be "1"'),
    (json.dumps({"Version": "1"}), "Statement must be a non-empty list"),
    (json.dumps(policy()), "Statement must be a non-empty list"),
    (json.dumps(policy("imm:*")), "Statement[0] must be an object"),  # type: ignore[arg-type]
    (json.dumps(policy({**allow("imm:*"), "Effect": "allow"})), "Effect must be Allow or Deny"),
    (json.dumps(policy({**allow("imm:*"), "NotAction": "oss:*"})), "exactly one of Action and NotAction"),
    (json.dumps(policy(allow("imm"))), "'imm' is not an action"),
    (json.dumps(policy(allow([]))), "Action must be a non-empty string"),
    (json.dumps(policy(allow("imm:Get Project"))), "is not an action"),
    (json.dumps(policy({"Effect": "Allow", "Action": "imm:*"})), "exactly one of Resource and NotResource"),
    (json.dumps(policy(allow("imm:*", [""]))), "Resource must be a non-empty string"),
    (json.dumps(policy(allow("imm:*", Principal={"RAM": "*"}))), "Principal belongs in a trust policy only"),
    (json.dumps(policy(allow("imm:*", Sid="x"))), "unknown element 'Sid'"),
    (json.dumps({**policy(allow("imm:*")), "Id": "x"}), "unknown element 'Id'"),
    (
        json.dumps(policy(allow("imm:*", Condition={"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}))),
        "'IpAddress' is not one the emulator evaluates",
    ),
    (json.dumps(policy(allow("imm:*", Condition={"StringEquals": {"oss:Prefix": 5}}))), "must be a string"),
    (json.dumps(policy(allow("imm:*", Condition={"StringEquals": {"Prefix": "a"}}))), "is not a condition key"),
    ('{"Version": "1", "Version": "1", "Statement": []}', "gives 'Version' twice"),
    ('{"Version": NaN}', "holds NaN, which is not JSON"),
    ('{"Version": "1", "Statement": [[[[[[[[[[]]]]]]]]]]}', "nests deeper than 8 levels"),
]


@pytest.mark.parametrize(("text", "reason"), MALFORMED)
def test_malformed_policies_are_refused_naming_why(text: str, reason: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text)
    assert reason in str(exc.value)


def test_a_trust_policy_names_principals_not_resources() -> None:
    with pytest.raises(PolicyError, match="a trust policy names a Principal, not a Resource"):
        parse_policy(policy(allow("sts:AssumeRole", Principal={"RAM": "*"})), trust=True)
    with pytest.raises(PolicyError, match=r"Principal must be an object of RAM, Service, Federated"):
        parse_policy(policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "*"}}), trust=True)


def test_the_size_limit_is_exact() -> None:
    """STS's session policy: 2,048 characters pass, 2,049 do not (the padding is a resource of the right length)."""
    frame = json.dumps(policy(allow("imm:GetProject", "")), separators=(",", ":"))
    fill = SESSION_POLICY_MAX_CHARS - len(frame)
    at_limit = frame.replace('"Resource":""', '"Resource":"' + "a" * fill + '"')
    assert len(at_limit) == SESSION_POLICY_MAX_CHARS
    parse_policy(at_limit, limit=SESSION_POLICY_MAX_CHARS)
    over = at_limit.replace('"a', '"aa', 1)
    with pytest.raises(PolicySizeError, match="2049 characters; at most 2048"):
        parse_policy(over, limit=SESSION_POLICY_MAX_CHARS)


# ------------------------------------------------------------------------------------------------ decisions


def decide(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, Any] | None = None) -> Any:
    return parse_policy(policy(*statements)).decide(action, resource, context or {})


P = f"{IMM}:project/p"
DECISIONS = [
    # actions: wildcards, without case
    ([allow("imm:*")], "imm:GetProject", P, "Allow"),
    ([allow("imm:*")], "oss:GetObject", P, None),
    ([allow("oss:Get*")], "oss:GetObject", "x", "Allow"),
    ([allow("oss:Get*")], "OSS:getobject", "x", "Allow"),
    ([allow("oss:Get*")], "oss:ListObjects", "x", None),
    ([allow("imm:Get?roject")], "imm:GetProject", P, "Allow"),
    ([allow("*")], "mns:PublishMessage", "x", "Allow"),
    # resources: wildcards, with case
    ([allow("imm:*", "acs:imm:*:*:project/p")], "imm:GetProject", P, "Allow"),
    ([allow("imm:*", "acs:imm:*:*:project/p")], "imm:GetProject", P + "2", None),
    ([allow("imm:*", "acs:imm:*:*:project/p")], "imm:GetDataset", P + "/dataset/d", None),
    ([allow("imm:*", "acs:imm:*:*:project/p/*")], "imm:GetDataset", P + "/dataset/d", "Allow"),
    ([allow("imm:*", "acs:imm:*:*:project/P")], "imm:GetProject", P, None),
    ([allow("imm:*", ["acs:imm:*:*:project/q", "acs:imm:*:*:project/p"])], "imm:GetProject", P, "Allow"),
    # Deny wins, in any order
    ([allow("imm:*"), deny("imm:Delete*")], "imm:DeleteProject", P, "Deny"),
    ([deny("imm:Delete*"), allow("imm:*")], "imm:DeleteProject", P, "Deny"),
    ([deny("imm:Delete*"), allow("imm:*")], "imm:GetProject", P, "Allow"),
    # NotAction, NotResource
    ([{"Effect": "Allow", "NotAction": "imm:Delete*", "Resource": "*"}], "imm:GetProject", P, "Allow"),
    ([{"Effect": "Allow", "NotAction": "imm:Delete*", "Resource": "*"}], "imm:DeleteProject", P, None),
    ([{"Effect": "Allow", "Action": "imm:*", "NotResource": "acs:imm:*:*:project/p"}], "imm:GetProject", P, None),
    (
        [{"Effect": "Allow", "Action": "imm:*", "NotResource": "acs:imm:*:*:project/p"}],
        "imm:GetProject",
        P + "2",
        "Allow",
    ),
]


@pytest.mark.parametrize(("statements", "action", "resource", "expected"), DECISIONS)
def test_decisions(statements: list[dict[str, Any]], action: str, resource: str, expected: str | None) -> None:
    assert decide(statements, action, resource) == expected


LISTING = allow("oss:ListObjects", "acs:oss:*:*:bucket", Condition={"StringLike": {"oss:Prefix": ["photos/*"]}})
PHOTOS = {"oss:prefix": ["photos/"]}
CONDITIONS = [
    ([LISTING], {"oss:prefix": ["photos/2024/"]}, "Allow"),
    ([LISTING], {"oss:prefix": ["private/"]}, None),
    ([LISTING], {}, None),  # a key the request does not carry: a positive operator is false
    ([allow("oss:*", "*", Condition={"StringNotEquals": {"oss:Prefix": "x"}})], {}, "Allow"),  # a negated one true
    ([allow("oss:*", "*", Condition={"StringEqualsIgnoreCase": {"OSS:Prefix": "PHOTOS/"}})], PHOTOS, "Allow"),
    ([allow("oss:*", "*", Condition={"StringEquals": {"oss:Prefix": "PHOTOS/"}})], PHOTOS, None),
    (
        [allow("oss:*", "*", Condition={"Bool": {"acs:SecureTransport": True}})],
        {"acs:securetransport": ["true"]},
        "Allow",
    ),
]


@pytest.mark.parametrize(("statements", "context", "expected"), CONDITIONS)
def test_conditions(statements: list[dict[str, Any]], context: dict[str, Any], expected: str | None) -> None:
    assert decide(statements, "oss:ListObjects", "acs:oss:cn-hangzhou:1:bucket", context) == expected


def test_every_policy_set_must_allow_and_any_deny_wins() -> None:
    everything = parse_policy(policy(allow(["imm:*", "oss:*"])))
    reads = parse_policy(policy(allow("imm:Get*")))
    no_deletes = parse_policy(policy(allow("*"), deny("imm:Delete*")))

    def allowed(who: Principal, action: str) -> bool:
        try:
            who.authorize(action, P)
        except Exception:
            return False
        return True

    owner = Principal("acs:ram::1:root", "1")
    assert allowed(owner, "imm:DeleteProject")  # no policy set applies: the account itself
    assert not allowed(Principal("u", "1", ()), "imm:GetProject")  # a set that allows nothing
    session = Principal("r", "1", (everything,), reads)
    assert allowed(session, "imm:GetProject") and not allowed(session, "imm:DeleteProject")
    assert not allowed(Principal("r", "1", (reads,), everything), "oss:GetObject")  # the session cannot widen
    assert not allowed(Principal("r", "1", None, no_deletes), "imm:DeleteProject")
    assert not allowed(Principal("r", "1", (everything, no_deletes)), "imm:DeleteDataset")  # one set, a Deny in it
    assert allowed(Principal("r", "1", (reads, everything)), "oss:GetObject")  # one set: any policy allows
    assert isinstance(reads, Policy)


# ------------------------------------------------------------------------------------------------ on the wire

READER = Credentials("reader-key", "reader-secret")
READER_POLICY = policy(
    allow(["imm:Get*", "imm:List*"], ["acs:imm:*:*:project/p", "acs:imm:*:*:project/p/*"]),
    allow("oss:GetObject", "acs:oss:*:*:photos/public/*"),
)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("ram")
    for folder in ("public", "private"):
        (root / "oss" / "photos" / folder).mkdir(parents=True)
        (root / "oss" / "photos" / folder / "a.jpg").write_bytes(b"jpeg bytes")
    ram = kit.ram(access_keys={READER.access_key_id: {"policies": [READER_POLICY]}})
    ram.roles = None  # no roles: AssumeRole of any role, whose rights are then the session policy's alone
    with Emulator(oss_root=root / "oss", access_keys=[DEFAULT_ACCESS_KEY, READER], ram=ram) as e:
        with ImmClient(endpoint=e.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
            for name in ("p", "q"):
                imm.call(projects.CreateProject, project_name=name)
                imm.call(datasets.CreateDataset, project_name=name, dataset_name="d")
        yield e


def assume_role(emu: Emulator, signer: Credentials, **params: str) -> tuple[int, dict[str, Any]]:
    query = {"RoleArn": kit.ROLE, "RoleSessionName": "s1", **params}
    url = httpx.URL(emu.endpoint + "/").copy_with(query=encode_query(query).encode())
    headers = {"x-acs-action": "AssumeRole", "x-acs-version": STS_VERSION, "accept": "application/json"}
    with httpx.Client(trust_env=False) as http:
        response = http.send(httpx.Request("POST", url, headers=headers), auth=RpcV2Auth(signer))
    return response.status_code, response.json()


def session(emu: Emulator, document: dict[str, Any]) -> Credentials:
    status, body = assume_role(emu, DEFAULT_ACCESS_KEY, Policy=json.dumps(document))
    assert status == 200, body
    c = body["Credentials"]
    return Credentials(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"])


def imm_code(emu: Emulator, creds: Credentials, op: Any, **params: str) -> str:
    """The answer's code ("" for a success)."""
    with ImmClient(endpoint=emu.endpoint, credentials=creds, retry=None) as imm:
        try:
            imm.call(op, **params)
        except ImmError as exc:
            if exc.code == "Forbidden.RAM":
                assert exc.status == 403 and exc.action == op.name
            return exc.code
    return ""


def oss_status(emu: Emulator, creds: Credentials, key: str) -> int:
    url = presign_url(f"{emu.endpoint}/photos/{key}", creds, bucket="photos", key=key, region="cn-hangzhou", expires=60)
    return httpx.get(url, trust_env=False).status_code


def test_a_deny_all_session_policy_denies_everything(emu: Emulator) -> None:
    """Issue 25: credentials issued under a Deny-all Policy still ran DeleteProject."""
    creds = session(emu, policy(deny("*")))
    assert imm_code(emu, creds, projects.DeleteProject, project_name="q") == "Forbidden.RAM"
    assert imm_code(emu, creds, projects.ListProjects) == "Forbidden.RAM"
    assert oss_status(emu, creds, "public/a.jpg") == 403
    assert imm_code(emu, DEFAULT_ACCESS_KEY, projects.GetProject, project_name="q") == ""  # q is still there


def test_a_read_only_session_policy_reads_and_nothing_else(emu: Emulator) -> None:
    creds = session(emu, policy(allow(["imm:Get*", "imm:List*"]), allow("oss:GetObject", "acs:oss:*:*:photos/*")))
    assert imm_code(emu, creds, projects.ListProjects) == ""
    assert imm_code(emu, creds, datasets.GetDataset, project_name="q", dataset_name="d") == ""
    assert imm_code(emu, creds, datasets.DeleteDataset, project_name="q", dataset_name="d") == "Forbidden.RAM"
    assert imm_code(emu, creds, projects.UpdateProject, project_name="q") == "Forbidden.RAM"
    assert oss_status(emu, creds, "private/a.jpg") == 200


def test_policies_attached_to_a_key_decide_its_requests(emu: Emulator) -> None:
    assert imm_code(emu, READER, projects.GetProject, project_name="p") == ""
    assert imm_code(emu, READER, datasets.GetDataset, project_name="p", dataset_name="d") == ""
    assert imm_code(emu, READER, projects.GetProject, project_name="q") == "Forbidden.RAM"  # another project
    assert imm_code(emu, READER, projects.GetProject, project_name="nope") == "Forbidden.RAM"  # before existence
    assert imm_code(emu, READER, projects.ListProjects) == "Forbidden.RAM"  # its resource is the region's, *
    assert imm_code(emu, READER, datasets.DeleteDataset, project_name="p", dataset_name="d") == "Forbidden.RAM"
    assert oss_status(emu, READER, "public/a.jpg") == 200
    assert oss_status(emu, READER, "private/a.jpg") == 403
    assert oss_status(emu, READER, "public/none.jpg") == 404  # allowed, and absent
    assert oss_status(emu, READER, "private/none.jpg") == 403  # refused before existence is known
    with httpx.Client(trust_env=False) as http:  # who it is needs no permission
        url = f"{emu.endpoint}/?Version={STS_VERSION}"
        headers = {"x-acs-action": "GetCallerIdentity", "x-acs-version": STS_VERSION}
        who = http.send(httpx.Request("POST", url, headers=headers), auth=RpcV2Auth(READER)).json()
    assert (who["IdentityType"], who["Arn"]) == ("RAMUser", "acs:ram::1000000000000001:user/reader-key"), who
    # and no sts:AssumeRole in its policies
    status, body = assume_role(emu, READER)
    assert (status, body["Code"]) == (403, "NoPermission")
    assert "sts:AssumeRole on " + kit.ROLE in body["Message"]


SESSION_POLICIES = [
    ("{not json", 400, "InvalidParameter.PolicyGrammar"),
    (json.dumps(policy(allow("imm:*", Effect="Maybe"))), 400, "InvalidParameter.PolicyGrammar"),
    ("[" * 2000 + "]" * 2000, 400, "InvalidParameter.PolicySize"),
    (json.dumps(policy(allow("imm:*", "x" * 8192))), 400, "InvalidParameter.PolicySize"),
]


@pytest.mark.parametrize(("text", "status", "code"), SESSION_POLICIES)
def test_session_policies_sts_refuses(emu: Emulator, text: str, status: int, code: str) -> None:
    got_status, body = assume_role(emu, DEFAULT_ACCESS_KEY, Policy=text)
    assert (got_status, body["Code"]) == (status, code), body
    oidc = httpx.post(
        f"{emu.endpoint}/?Action=AssumeRoleWithOIDC&Version={STS_VERSION}",
        trust_env=False,
        data={
            "RoleArn": kit.ROLE,
            "OIDCProviderArn": kit.PROVIDER,
            "RoleSessionName": "pod",
            "OIDCToken": kit.mint(),
            "Policy": text,
        },
    )
    assert (oidc.status_code, oidc.json()["Code"]) == (status, code)


def test_oidc_credentials_get_the_role_and_the_session_policy(tmp_path: Path) -> None:
    """The role's policies and the session policy both apply to credentials from AssumeRoleWithOIDC."""
    doc = kit.ram_document()
    doc["roles"][0]["policies"] = [policy(allow("imm:*", "acs:imm:*:*:project/p*"))]
    with Emulator(oss_root=tmp_path / "oss", ram=ram_from_document(doc, tmp_path)) as emu:
        with ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
            for name in ("p", "q"):
                imm.call(projects.CreateProject, project_name=name)
        for session_policy, project, code in (
            (None, "p", ""),
            (None, "q", "Forbidden.RAM"),
            (policy(allow("imm:Get*")), "p", ""),
            (policy(deny("imm:GetProject")), "p", "Forbidden.RAM"),
        ):
            form = {
                "RoleArn": kit.ROLE,
                "OIDCProviderArn": kit.PROVIDER,
                "RoleSessionName": "pod",
                "OIDCToken": kit.mint(),
            }
            if session_policy:
                form["Policy"] = json.dumps(session_policy)
            answer = httpx.post(
                f"{emu.endpoint}/?Action=AssumeRoleWithOIDC&Version={STS_VERSION}", data=form, trust_env=False
            ).json()
            c = answer["Credentials"]
            creds = Credentials(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"])
            assert imm_code(emu, creds, projects.GetProject, project_name=project) == code, (session_policy, project)
