"""Every credential flow end to end on loopback: the emulator's STS and ECS metadata stand-in issue temporary
credentials, and IMM (the same emulator) then accepts them, until they expire."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.metadata import MetadataStandIn
from imm_faces.emulator.ram import ram_from_document
from imm_faces.emulator.server import Emulator
from imm_faces.emulator.sts import EMULATOR_ACCOUNT_ID
from imm_faces.runtime.auth.sts import GET_CALLER_IDENTITY, GetCallerIdentityRequest, StsClient, StsError
from imm_faces.runtime.client import AsyncImmClient, ImmClient
from imm_faces.runtime.credentials import (
    CredentialSettings,
    CredentialsNotFoundError,
    RefreshingCredentials,
    resolve_provider,
)
from imm_faces.runtime.errors import ConfigError, ImmError
from imm_faces.runtime.operations.projects import ListProjects
from tests import oidc_kit

ROLE, OIDC_PROVIDER = oidc_kit.ROLE, oidc_kit.PROVIDER
TARGET = "acs:ram::2222222222222222:role/target"
AK = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY.access_key_id,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY.access_key_secret,
}


def jwt(exp: float, sub: str = oidc_kit.SUBJECT) -> str:
    return oidc_kit.mint(oidc_kit.claims(exp=exp, sub=sub))


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("sts")
    # RAM: the deployer role (assumed with keys or an OIDC token of any subject) may assume the target role.
    doc = oidc_kit.ram_document(subject=None)
    doc["roles"][0]["policies"].append(oidc_kit.allow("sts:AssumeRole", TARGET))
    doc["roles"].append(
        {
            "arn": TARGET,
            "trust_policy": oidc_kit.trust(oidc_kit.account_trust(oidc_kit.ACCOUNT)),
            "policies": [oidc_kit.FULL_ACCESS],
        }
    )
    with Emulator(db=root / "imm.db", oss_root=root / "oss", ram=ram_from_document(doc, root)) as e:
        yield e


@pytest.fixture
def emu(shared_emulator: Emulator) -> Emulator:
    shared_emulator.sts.max_duration = None
    shared_emulator.sts.external_ids.clear()
    return shared_emulator


def sts_env(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"ALIBABA_CLOUD_STS_ENDPOINT": emu.endpoint, **extra}


def no_profile(tmp_path: Path) -> Path:
    return tmp_path / "no-aliyun-config.json"


def identity(emu: Emulator, source: object) -> object:
    creds = source.get()  # type: ignore[attr-defined]
    return StsClient(emu.endpoint).call(GET_CALLER_IDENTITY, GetCallerIdentityRequest(), creds)


def list_projects(emu: Emulator, source: object) -> int:
    with ImmClient(endpoint=emu.endpoint, credentials=source, retry=None) as imm:  # type: ignore[arg-type]
        return len(imm.call(ListProjects).projects or [])


def test_assume_role_on_top_of_environment_keys_is_accepted_by_imm(emu: Emulator, tmp_path: Path) -> None:
    settings = CredentialSettings(assume_role=None)
    env = sts_env(emu, **AK, ALICLOUD_ASSUME_ROLE_ARN=ROLE, ALICLOUD_ASSUME_ROLE_SESSION_NAME="ci-run")
    source = resolve_provider(settings=settings, env=env, cli_config=no_profile(tmp_path))
    assert isinstance(source, RefreshingCredentials)
    assert list_projects(emu, source) == 0
    creds = source.get()
    assert creds.access_key_id.startswith("STS.") and creds.security_token and creds.expiration
    who = identity(emu, source)
    assert who.account_id == "1234567890123456"  # type: ignore[attr-defined]
    assert who.arn == "acs:ram::1234567890123456:assumed-role/deployer/ci-run"  # type: ignore[attr-defined]
    # The caller's own identity is the emulator's account.
    plain = resolve_provider(env=AK, cli_config=no_profile(tmp_path))
    assert identity(emu, plain).account_id == EMULATOR_ACCOUNT_ID  # type: ignore[attr-defined]


def test_stack_config_assume_role_with_external_id(emu: Emulator, tmp_path: Path) -> None:
    emu.sts.external_ids[ROLE] = "the-external-id"
    config = {
        "alicloud:accessKey": DEFAULT_ACCESS_KEY.access_key_id,
        "alicloud:secretKey": DEFAULT_ACCESS_KEY.access_key_secret,
        "alicloud:assumeRole": json.dumps(
            {"roleArn": ROLE, "sessionName": "pulumi", "externalId": "wrong-one", "sessionExpiration": 1800}
        ),
    }
    wrong = CredentialSettings.from_config(config.get)
    with pytest.raises(StsError, match="NoPermission"):
        resolve_provider(settings=wrong, env=sts_env(emu), cli_config=no_profile(tmp_path)).get()
    right = {"roleArn": ROLE, "sessionName": "pulumi", "externalId": "the-external-id", "sessionExpiration": 1800}
    config["alicloud:assumeRole"] = json.dumps(right)
    source = resolve_provider(
        settings=CredentialSettings.from_config(config.get), env=sts_env(emu), cli_config=no_profile(tmp_path)
    )
    assert list_projects(emu, source) == 0
    expiration = source.get().expiration
    assert expiration is not None and 1790 <= expiration - time.time() <= 1800


def test_oidc_from_the_environment_rereads_the_token_file(emu: Emulator, tmp_path: Path) -> None:
    token_file = tmp_path / "oidc-token"
    token_file.write_text(jwt(time.time() + 600))
    env = sts_env(
        emu,
        ALIBABA_CLOUD_ROLE_ARN=ROLE,
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN=OIDC_PROVIDER,
        ALIBABA_CLOUD_OIDC_TOKEN_FILE=str(token_file),
        ALIBABA_CLOUD_ROLE_SESSION_NAME="gha",
    )
    emu.sts.max_duration = 2.0
    source = resolve_provider(env=env, cli_config=no_profile(tmp_path))
    assert list_projects(emu, source) == 0
    assert identity(emu, source).arn.endswith("assumed-role/deployer/gha")  # type: ignore[attr-defined]
    first = source.get()
    token_file.write_text(jwt(time.time() - 5))  # the platform rotated it; this one has expired
    time.sleep(1.6)  # past the refresh point (a quarter of 2 s before expiry)
    with pytest.raises(StsError, match=r"AuthenticationFail\.OIDCToken\.Expired"):
        while time.time() < first.expiration + 1:  # type: ignore[operator]
            source.get()  # the current set is used while it is valid; then the refresh failure surfaces
            time.sleep(0.1)


def test_partial_oidc_environment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsNotFoundError, match="ALIBABA_CLOUD_OIDC_TOKEN_FILE not set"):
        resolve_provider(
            env={"ALIBABA_CLOUD_ROLE_ARN": ROLE, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": OIDC_PROVIDER},
            cli_config=no_profile(tmp_path),
        )


def ignore_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the environment that would fail every request sent through it: the chain's own requests ignore
    it (the metadata service and a sidecar are local; a proxy must never see their credentials)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def test_ecs_role_asks_for_an_imdsv2_token_first(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ignore_proxies(monkeypatch)
    with MetadataStandIn(emu.sts, imdsv1=False) as md:
        env = {"ALIBABA_CLOUD_ECS_METADATA": md.role_name, "ALIBABA_CLOUD_IMDSV1_DISABLED": "true"}
        source = resolve_provider(env=env, cli_config=no_profile(tmp_path), metadata_url=md.url)
        assert list_projects(emu, source) == 0
        assert (md.token_requests, md.v1_requests, md.credential_requests) == (1, 0, 1)
        who = identity(emu, source)
        assert who.arn == f"acs:ram::{EMULATOR_ACCOUNT_ID}:assumed-role/{md.role_name}/ecs-instance"  # type: ignore[attr-defined]


def test_ecs_profile_without_role_name_discovers_it(emu: Emulator, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"current": "ecs", "profiles": [{"name": "ecs", "mode": "EcsRamRole"}]}))
    with MetadataStandIn(emu.sts) as md:
        source = resolve_provider(env={}, cli_config=cfg, metadata_url=md.url)
        assert list_projects(emu, source) == 0
        assert md.token_requests == 1 and md.v1_requests == 0


def test_credentials_uri(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ignore_proxies(monkeypatch)
    with MetadataStandIn(emu.sts) as md:
        settings = CredentialSettings.from_config({"alicloud:credentialsUri": md.url + "/credentials"}.get)
        source = resolve_provider(settings=settings, env={}, cli_config=no_profile(tmp_path))
        assert list_projects(emu, source) == 0
        assert md.credential_requests == 1


def test_cli_profiles_ram_role_oidc_and_chainable(emu: Emulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(jwt(time.time() + 600))
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "current": "chain",
                "profiles": [
                    {
                        "name": "base",
                        "mode": "AK",
                        "access_key_id": DEFAULT_ACCESS_KEY.access_key_id,
                        "access_key_secret": DEFAULT_ACCESS_KEY.access_key_secret,
                    },
                    {
                        "name": "ram",
                        "mode": "RamRoleArn",
                        "access_key_id": DEFAULT_ACCESS_KEY.access_key_id,
                        "access_key_secret": DEFAULT_ACCESS_KEY.access_key_secret,
                        "ram_role_arn": ROLE,
                        "ram_session_name": "ram",
                    },
                    {
                        "name": "oidc",
                        "mode": "OIDC",
                        "ram_role_arn": ROLE,
                        "oidc_provider_arn": OIDC_PROVIDER,
                        "oidc_token_file": str(token_file),
                        "role_session_name": "oidc",
                    },
                    {
                        "name": "chain",
                        "mode": "ChainableRamRoleArn",
                        "source_profile": "ram",
                        "ram_role_arn": TARGET,
                        "ram_session_name": "chained",
                    },
                    {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop", "ram_role_arn": ROLE},
                ],
            }
        )
    )
    env = sts_env(emu)
    for profile, arn in (
        ("ram", "acs:ram::1234567890123456:assumed-role/deployer/ram"),
        ("oidc", "acs:ram::1234567890123456:assumed-role/deployer/oidc"),
        (None, "acs:ram::2222222222222222:assumed-role/target/chained"),
    ):
        source = resolve_provider(profile=profile, env=env, cli_config=cfg)
        assert list_projects(emu, source) == 0
        assert identity(emu, source).arn == arn  # type: ignore[attr-defined]
    with pytest.raises(CredentialsNotFoundError, match="makes a loop"):
        resolve_provider(profile="loop", env=env, cli_config=cfg)


def test_precedence_explicit_config_beats_environment_beats_profile(emu: Emulator, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    profile = {"name": "p", "mode": "AK", "access_key_id": "profile-id", "access_key_secret": "profile-secret"}
    cfg.write_text(json.dumps({"current": "p", "profiles": [profile]}))
    token_file = tmp_path / "token"
    token_file.write_text(jwt(time.time() + 600))
    oidc_env = {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": OIDC_PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
    }
    config = CredentialSettings.from_config({"alicloud:accessKey": "cfg-id", "alicloud:secretKey": "cfg-secret"}.get)
    env = {**AK, **oidc_env}
    assert resolve_provider(settings=config, env=env, cli_config=cfg).get().access_key_id == "cfg-id"
    assert resolve_provider(env=env, cli_config=cfg).get().access_key_id == AK["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    oidc = resolve_provider(env=sts_env(emu, **oidc_env), cli_config=cfg)
    assert "OIDC" in oidc.source and isinstance(oidc, RefreshingCredentials)  # type: ignore[attr-defined]
    assert resolve_provider(env={}, cli_config=cfg).get().access_key_id == "profile-id"
    # an explicit OIDC setting in the stack config beats environment keys
    oidc_config = CredentialSettings.from_config(
        {
            "alicloud:assumeRoleWithOidc": {
                "roleArn": ROLE,
                "oidcProviderArn": OIDC_PROVIDER,
                "oidcTokenFile": str(token_file),
            }
        }.get
    )
    source = resolve_provider(settings=oidc_config, env=sts_env(emu, **AK), cli_config=cfg)
    assert identity(emu, source).identity_type == "AssumedRoleUser"  # type: ignore[attr-defined]


def test_config_errors_name_the_key_and_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"alicloud:assumeRole\.roleArn: is required"):
        CredentialSettings.from_config({"alicloud:assumeRole": {"sessionName": "x"}}.get)
    with pytest.raises(ConfigError, match=r"alicloud:assumeRoleWithOidc: set oidcToken or oidcTokenFile"):
        no_token = {"roleArn": ROLE, "oidcProviderArn": OIDC_PROVIDER}
        CredentialSettings.from_config({"alicloud:assumeRoleWithOidc": no_token}.get)
    with pytest.raises(ConfigError, match=r"sessionExpiration: must be a whole number"):
        CredentialSettings.from_config({"alicloud:assumeRole": {"roleArn": ROLE, "sessionExpiration": "soon"}}.get)
    bad_role = CredentialSettings(access_key_id="a", access_key_secret="b", assume_role=None)
    with pytest.raises(ConfigError, match="RoleArn"):
        resolve_provider(settings=bad_role, env={"ALICLOUD_ASSUME_ROLE_ARN": "not-an-arn"}).get()


def test_expired_sts_credentials_are_refused_and_refreshed_before_expiry(emu: Emulator, tmp_path: Path) -> None:
    emu.sts.max_duration = 2.0
    source = resolve_provider(env=sts_env(emu, **AK, ALICLOUD_ASSUME_ROLE_ARN=ROLE), cli_config=no_profile(tmp_path))
    first = source.get()
    seen = set()
    # A client on the refreshing source keeps working through a wait longer than one lifetime ...
    with ImmClient(endpoint=emu.endpoint, credentials=source) as imm:
        while time.time() < (first.expiration or 0) + 0.3:
            imm.call(ListProjects)
            seen.add(source.get().access_key_id)
            time.sleep(0.2)
    assert len(seen) >= 2
    # ... while IMM refuses the first set, now past its Expiration.
    with ImmClient(endpoint=emu.endpoint, credentials=first, retry=None) as imm, pytest.raises(ImmError) as exc:
        imm.call(ListProjects)
    assert exc.value.code == "InvalidSecurityToken.Expired"


def test_async_client_refreshes_off_the_event_loop(emu: Emulator, tmp_path: Path) -> None:
    emu.sts.max_duration = 1.5
    source = resolve_provider(env=sts_env(emu, **AK, ALICLOUD_ASSUME_ROLE_ARN=ROLE), cli_config=no_profile(tmp_path))

    async def run() -> set[str]:
        ids = set()
        async with AsyncImmClient(endpoint=emu.endpoint, credentials=source) as imm:
            for _ in range(9):
                await imm.call(ListProjects)  # the client fetches and refreshes: get() below only reads
                ids.add(source.get().access_key_id)
                await asyncio.sleep(0.2)
        return ids

    assert len(asyncio.run(run())) >= 2


def test_no_secret_or_token_in_logs_errors_or_reprs(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = jwt(time.time() + 600, sub="secret-subject-claim")
    token_file = tmp_path / "t"
    token_file.write_text(token)
    caplog.set_level(logging.DEBUG)
    env = sts_env(
        emu,
        ALIBABA_CLOUD_ROLE_ARN=ROLE,
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN=OIDC_PROVIDER,
        ALIBABA_CLOUD_OIDC_TOKEN_FILE=str(token_file),
    )
    source = resolve_provider(env=env, cli_config=no_profile(tmp_path))
    creds = source.get()
    texts = [repr(source), repr(creds), caplog.text]
    with ImmClient(endpoint=emu.endpoint, credentials=source, signature_version="v2") as imm:
        imm.call(ListProjects)
        texts.append(repr(imm))
    emu.sts.max_duration = 1.0
    expired = CredentialSettings.from_config(
        {
            "alicloud:assumeRoleWithOidc": {
                "roleArn": ROLE,
                "oidcProviderArn": OIDC_PROVIDER,
                "oidcToken": jwt(time.time() - 1),
            }
        }.get
    )
    with pytest.raises(StsError) as exc:
        resolve_provider(settings=expired, env=sts_env(emu), cli_config=no_profile(tmp_path)).get()
    texts += [str(exc.value), repr(expired), caplog.text]
    for secret in (creds.access_key_secret, creds.security_token or "?", token, token.split(".")[1]):
        assert not any(secret in text for text in texts)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(source)


def test_verify_signs_with_the_stacks_assumed_role(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`imm-faces verify --stack` reads the stack's alicloud:* settings (secret ones one at a time) and assumes
    the stack's role, as the providers do; the wrong external id fails with exit 2 and no secret shown."""
    from imm_faces.runtime.cli.main import main
    from imm_faces.runtime.operations import datasets, projects
    from tests.pulumi_cli import fake_pulumi

    for name in [*AK, "ALIBABA_CLOUD_PROFILE", "ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aliyun/config.json
    with ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
        imm.call(projects.CreateProject, project_name="verify-sts")
        imm.call(datasets.CreateDataset, project_name="verify-sts", dataset_name="d")
    emu.sts.external_ids[ROLE] = "stack-ext"
    outputs = {"project_name": "verify-sts", "dataset_name": "d", "region": "cn-hangzhou", "endpoint": emu.endpoint}

    def config(external_id: str) -> dict[str, object]:
        assume = {"roleArn": ROLE, "sessionName": "verify", "externalId": external_id}
        return {
            "stack output": outputs,
            "config": {
                "alicloud:accessKey": {"value": DEFAULT_ACCESS_KEY.access_key_id, "secret": False},
                "alicloud:secretKey": {"secret": True},
                "alicloud:assumeRole": {"value": json.dumps(assume), "objectValue": assume, "secret": False},
                "alicloud:endpoints": {"objectValue": [{"sts": emu.endpoint}], "secret": False},
            },
            "config get alicloud:secretKey": DEFAULT_ACCESS_KEY.access_key_secret,
        }

    log = fake_pulumi(tmp_path, monkeypatch, config("stack-ext"))
    assert main(["verify", "--stack", "dev", "--json", "--quiet", "--allow-empty"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"]
    assert "--show-secrets" not in log.read_text()
    fake_pulumi(tmp_path, monkeypatch, config("wrong"))
    assert main(["verify", "--stack", "dev", "--quiet", "--allow-empty"]) == 2
    err = capsys.readouterr().err
    assert "NoPermission" in err and DEFAULT_ACCESS_KEY.access_key_secret not in err
