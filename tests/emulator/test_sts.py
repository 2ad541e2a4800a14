"""The emulator's STS: signed and checked like IMM, answering STS's error codes, and compatible with Alibaba's own
``alibabacloud-credentials`` library (its requests are accepted, its parsers read our answers)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.metadata import MetadataStandIn
from imm_faces.emulator.server import Emulator
from imm_faces.emulator.sts import EMULATOR_ACCOUNT_ID
from imm_faces.runtime.auth.signing import AcsV3Auth, RpcV2Auth, encode_query
from imm_faces.runtime.auth.sts import STS_VERSION
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations.projects import ListProjects
from tests import oidc_kit
from tests.oidc_kit import ROLE


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("sts")
    with Emulator(db=root / "imm.db", oss_root=root / "oss", ram=oidc_kit.ram()) as e:
        yield e


def send(
    emu: Emulator, action: str, params: dict[str, str], auth: httpx.Auth | None = None, method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    headers = {"x-acs-action": action, "x-acs-version": STS_VERSION, "accept": "application/json"}
    if auth is None:
        params = {**params, "Action": action, "Version": STS_VERSION}
    url = httpx.URL(emu.endpoint + "/").copy_with(query=encode_query(params).encode())
    with httpx.Client(trust_env=False) as http:
        response = http.send(httpx.Request(method, url, headers=headers), auth=auth)
    return response.status_code, response.json()


def test_assume_role_v2_and_v3_signatures_and_the_tokens_work_on_imm(emu: Emulator) -> None:
    params = {"RoleArn": ROLE, "RoleSessionName": "s1", "DurationSeconds": "900"}
    for auth in (RpcV2Auth(DEFAULT_ACCESS_KEY), AcsV3Auth(DEFAULT_ACCESS_KEY)):
        status, body = send(emu, "AssumeRole", params, auth)
        assert status == 200, body
        creds = body["Credentials"]
        assert creds["AccessKeyId"].startswith("STS.") and creds["SecurityToken"] and body["RequestId"]
        assert body["AssumedRoleUser"]["Arn"] == "acs:ram::1234567890123456:assumed-role/deployer/s1"
        lifetime = calendar.timegm(time.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()
        assert 890 <= lifetime <= 901  # whole seconds; the wall clock may be stepped by a second meanwhile (seen once)
        temporary = Credentials(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"])
        with ImmClient(endpoint=emu.endpoint, credentials=temporary) as imm:
            imm.call(ListProjects)
        status, who = send(emu, "GetCallerIdentity", {}, RpcV2Auth(temporary))
        assert status == 200 and who["IdentityType"] == "AssumedRoleUser" and who["AccountId"] == "1234567890123456"
    status, who = send(emu, "GetCallerIdentity", {}, AcsV3Auth(DEFAULT_ACCESS_KEY))
    assert (status, who["AccountId"], who["IdentityType"]) == (200, EMULATOR_ACCOUNT_ID, "Account")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"RoleArn": "arn:aws:iam::1:role/x", "RoleSessionName": "s1"}, "InvalidParameter.RoleArn"),
        ({"RoleArn": ROLE, "RoleSessionName": "bad name!"}, "InvalidParameter.RoleSessionName"),
        ({"RoleArn": ROLE, "RoleSessionName": "ok", "DurationSeconds": "60"}, "InvalidParameter.DurationSeconds"),
        ({"RoleArn": ROLE, "RoleSessionName": "ok", "DurationSeconds": "43201"}, "InvalidParameter.DurationSeconds"),
        ({"RoleSessionName": "ok"}, "MissingParameter"),
    ],
)
def test_assume_role_parameter_errors(emu: Emulator, params: dict[str, str], code: str) -> None:
    status, body = send(emu, "AssumeRole", params, RpcV2Auth(DEFAULT_ACCESS_KEY))
    assert (status, body["Code"]) == (400, code) and body["RequestId"] and body["Message"]


def test_sts_requests_are_authenticated_like_imm(emu: Emulator) -> None:
    params = {"RoleArn": ROLE, "RoleSessionName": "s1"}
    status, body = send(emu, "AssumeRole", params)  # no signature at all
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    status, body = send(emu, "AssumeRole", params, RpcV2Auth(Credentials("nobody", "x")))
    assert (status, body["Code"]) == (404, "InvalidAccessKeyId.NotFound")
    status, body = send(emu, "AssumeRole", params, RpcV2Auth(Credentials(DEFAULT_ACCESS_KEY.access_key_id, "wrong")))
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    fixed = RpcV2Auth(DEFAULT_ACCESS_KEY, nonce=lambda: "the-same-nonce-every-time")
    assert send(emu, "AssumeRole", params, fixed)[0] == 200
    status, body = send(emu, "AssumeRole", params, fixed)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    status, body = send(emu, "AssumeRoleWithPassword", params, RpcV2Auth(DEFAULT_ACCESS_KEY))
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")


def test_external_id_required_by_a_role(emu: Emulator) -> None:
    emu.sts.external_ids[ROLE] = "ext"
    try:
        base = {"RoleArn": ROLE, "RoleSessionName": "s1"}
        assert send(emu, "AssumeRole", base, RpcV2Auth(DEFAULT_ACCESS_KEY))[1]["Code"] == "NoPermission"
        status, _ = send(emu, "AssumeRole", {**base, "ExternalId": "ext"}, RpcV2Auth(DEFAULT_ACCESS_KEY))
        assert status == 200
    finally:
        emu.sts.external_ids.clear()


def test_requests_of_other_versions_still_reach_imm(emu: Emulator) -> None:
    with ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY, signature_version="v2") as imm:
        imm.call(ListProjects)
    # An IMM action addressed to STS's version is STS's to answer: it has no such action.
    status, body = send(emu, "ListProjects", {}, RpcV2Auth(DEFAULT_ACCESS_KEY))
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")


def test_alibaba_credentials_library_against_the_emulator(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alibaba's own providers: RamRoleArn (its request, sent over http instead of the https it hard-codes)
    and the credentials URI (against the metadata stand-in)."""
    from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider, URLCredentialsProvider
    from Tea.core import TeaCore

    real = TeaCore.do_action

    def over_http(request: Any, runtime: Any = None) -> Any:
        request.protocol = "http"  # the library hard-codes https for STS; nothing else is changed
        return real(request, runtime)

    monkeypatch.setattr(TeaCore, "do_action", over_http)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    provider = RamRoleArnCredentialsProvider(
        access_key_id=DEFAULT_ACCESS_KEY.access_key_id,
        access_key_secret=DEFAULT_ACCESS_KEY.access_key_secret,
        role_arn=ROLE,
        role_session_name="official",
        external_id=None,
        sts_endpoint=emu.endpoint.split("//")[1],
    )
    got = provider.get_credentials()
    assert got.get_access_key_id().startswith("STS.") and got.get_expiration() > time.time() + 3000
    with ImmClient(
        endpoint=emu.endpoint,
        credentials=Credentials(got.get_access_key_id(), got.get_access_key_secret(), got.get_security_token()),
    ) as imm:
        imm.call(ListProjects)
    with MetadataStandIn(emu.sts) as md:
        from_uri = URLCredentialsProvider(uri=md.url + "/credentials").get_credentials()
        assert from_uri.get_access_key_id().startswith("STS.") and md.credential_requests == 1


def test_metadata_stand_in_refuses_imdsv1_when_disabled(emu: Emulator, tmp_path: Path) -> None:
    with MetadataStandIn(emu.sts, imdsv1=False) as md, httpx.Client(trust_env=False) as http:
        path = "/latest/meta-data/ram/security-credentials/"
        assert http.get(md.url + path).status_code == 401
        token = http.put(md.url + "/latest/api/token", headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"})
        got = http.get(md.url + path + md.role_name, headers={"X-aliyun-ecs-metadata-token": token.text})
        assert got.status_code == 200 and got.json()["Code"] == "Success"
        assert http.get(md.url + path, headers={"X-aliyun-ecs-metadata-token": "forged"}).status_code == 401


def test_the_signed_action_decides_and_an_unsigned_header_cannot_swap_it(emu: Emulator) -> None:
    """As for IMM: a V2 request signs its Action parameter; a header naming another action is refused."""
    params = {"RoleArn": ROLE, "RoleSessionName": "s1"}
    headers = {"x-acs-action": "AssumeRole", "x-acs-version": STS_VERSION, "accept": "application/json"}
    url = httpx.URL(emu.endpoint + "/").copy_with(query=encode_query(params).encode())
    signed = next(RpcV2Auth(DEFAULT_ACCESS_KEY).sync_auth_flow(httpx.Request("POST", url, headers=headers)))
    signed.headers["x-acs-action"] = "GetCallerIdentity"  # after signing: V2 does not cover headers
    with httpx.Client(trust_env=False) as http:
        response = http.send(signed)
    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")
