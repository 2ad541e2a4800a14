"""Each credential source on its own, in process and fast: STS, the ECS metadata service and a credentials URI
are an ``httpx.MockTransport`` (the chain's ``transport``), so every request the chain sends and every
credential, source label and message it gives can be compared exactly. (``test_credential_chain.py`` runs the
same flows end to end against the emulator.)"""

from __future__ import annotations

import base64
import calendar
import json
import locale
import logging
import pickle
from pathlib import Path
from typing import Any

import httpx
import pytest

from imm_faces.runtime.auth.redaction import REDACTOR
from imm_faces.runtime.auth.sources import Context, assume_role
from imm_faces.runtime.auth.sts import StsError
from imm_faces.runtime.credentials import (
    AssumeRole,
    Credentials,
    CredentialSettings,
    CredentialsNotFoundError,
    LazyCredentials,
    OidcRole,
    RefreshingCredentials,
    config_keys_present,
    redact,
    resolve_provider,
)
from imm_faces.runtime.errors import ConfigError

ROLE = "acs:ram::1234567890123456:role/deployer"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ci"
EXPIRATION = "2030-01-02T03:04:05Z"
EXPIRES_AT = float(calendar.timegm((2030, 1, 2, 3, 4, 5)))
STS = "http://sts.test/"
METADATA = "http://metadata.test"
STS_ENV = {"ALIBABA_CLOUD_STS_ENDPOINT": STS}


def issued(n: int) -> dict[str, str]:
    return {
        "AccessKeyId": f"STS.issued-{n}",
        "AccessKeySecret": f"issued-secret-{n}",
        "SecurityToken": f"issued-token-{n}",
        "Expiration": EXPIRATION,
    }


def temporary(n: int, source: str) -> tuple[Credentials, float | None, str]:
    """The ``n``-th set :class:`Cloud` issued, as :func:`fetched` shows it (Credentials' equality ignores the
    expiration; the source that fetched them bears the same label)."""
    creds = Credentials(f"STS.issued-{n}", f"issued-secret-{n}", f"issued-token-{n}", source=source)
    return creds, EXPIRES_AT, source


def fetched(source: Any) -> tuple[Credentials, float | None, str]:
    creds = source.get()
    return creds, creds.expiration, source.source


def shown(creds: Credentials) -> tuple[Credentials, float | None, str]:
    return creds, creds.expiration, creds.source


class Cloud:
    """STS (``sts.test``), the ECS metadata service (``metadata.test``) and a credentials URI (``sidecar.test``).
    ``requests`` holds every request; each set of credentials handed out is numbered from 1."""

    def __init__(
        self, *, imds_token: int = 200, role: str = "ecs-role", sidecar: Any = None, ecs_code: str = "Success"
    ) -> None:
        self.requests: list[httpx.Request] = []
        self.issued = 0
        self.imds_token, self.role, self.sidecar, self.ecs_code = imds_token, role, sidecar, ecs_code
        self.transport = httpx.MockTransport(self.answer)

    def params(self, index: int = -1) -> dict[str, str]:
        return dict(self.requests[index].url.params)

    def answer(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911 - one answer per endpoint
        self.requests.append(request)
        host, path = request.url.host, request.url.path
        if host == "sts.test":
            self.issued += 1
            arn = {"Arn": "acs:ram::1234567890123456:assumed-role/deployer/s", "AssumedRoleId": "1:s"}
            return httpx.Response(
                200, json={"RequestId": "r", "Credentials": issued(self.issued), "AssumedRoleUser": arn}
            )
        if host == "metadata.test":
            if request.method == "PUT" and path == "/latest/api/token":
                return httpx.Response(
                    self.imds_token, text="imds-token-1\n" if self.imds_token == 200 else "<html>Forbidden</html>"
                )
            if path == "/latest/meta-data/ram/security-credentials/":
                if not self.role:
                    return httpx.Response(404, text="<html>Not Found</html>")
                return httpx.Response(200, text=f"{self.role}\nanother-role\n")
            if path == f"/latest/meta-data/ram/security-credentials/{self.role or 'ecs-role'}":
                if self.ecs_code != "Success":
                    return httpx.Response(200, json={"Code": self.ecs_code, "Message": "role detached"})
                self.issued += 1
                return httpx.Response(200, json={"Code": "Success", **issued(self.issued)})
            return httpx.Response(404, json={"Code": "NotFound", "Message": path})
        if host == "sidecar.test":
            if self.sidecar is not None:
                return self.sidecar(request)  # type: ignore[no-any-return]
            self.issued += 1
            return httpx.Response(200, json={"Code": "Success", **issued(self.issued)})
        raise AssertionError(f"unexpected request to {request.url}")


def no_file(tmp_path: Path) -> Path:
    return tmp_path / "no-aliyun-config.json"


def profiles(tmp_path: Path, *entries: dict[str, Any], current: str | None = None) -> Path:
    path = tmp_path / "config.json"
    document = {**({"current": current} if current else {}), "profiles": list(entries)}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")  # as the aliyun CLI writes it
    return path


# ---------------------------------------------------------------------------------------------- the objects


def test_every_holder_of_a_secret_refuses_pickling_and_says_why() -> None:
    settings = CredentialSettings(access_key_id="AKID", access_key_secret="settings-secret-1")
    oidc = OidcRole(ROLE, PROVIDER, token="oidc-token-value-1")
    refreshing = RefreshingCredentials(lambda: Credentials("a", "b"), "test")
    lazy = LazyCredentials(lambda: Credentials("a", "b"))
    assert settings.access_key_secret is not None
    cases = [
        (
            Credentials("AKID", "secret-value-1"),
            "Credentials cannot be pickled: they hold a secret (resolve them again where needed)",
        ),
        (settings.access_key_secret, "a secret cannot be pickled"),
        (refreshing, "credentials cannot be pickled: they hold a secret (resolve them again where needed)"),
        (lazy, "credentials cannot be pickled: they hold a secret (resolve them again where needed)"),
        (oidc, "OIDC settings cannot be pickled: they may hold a token"),
        (settings, "credential settings cannot be pickled: they may hold a secret"),
    ]
    for obj, message in cases:
        with pytest.raises(TypeError) as caught:
            pickle.dumps(obj)
        assert str(caught.value) == message


def test_a_hidden_secret_shows_as_redacted() -> None:
    settings = CredentialSettings(access_key_secret="settings-secret-2", security_token="settings-token-2")
    for hidden in (settings.access_key_secret, settings.security_token):
        assert (repr(hidden), str(hidden), f"{hidden}") == ("<redacted>", "<redacted>", "<redacted>")
    oidc = OidcRole(ROLE, PROVIDER, token="oidc-token-value-2")
    assert repr(oidc.token) == "<redacted>"
    assert CredentialSettings(access_key_secret="").access_key_secret is None  # empty is unset, not hidden


def test_fixed_credentials_are_their_own_source() -> None:
    creds = Credentials("AKID", "secret-value-3", "token-value-3", source="somewhere")
    assert creds.get() is creds and creds.due() is False
    assert creds.secrets() == ("secret-value-3", "token-value-3")
    assert Credentials("AKID", "secret-value-3").secrets() == ("secret-value-3",)
    assert creds.environment() == {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret-value-3",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "token-value-3",
    }
    assert "ALIBABA_CLOUD_SECURITY_TOKEN" not in Credentials("AKID", "secret-value-3").environment()
    assert repr(creds) == (
        "Credentials(access_key_id='AKID', access_key_secret=<redacted>, security_token=<redacted>, source='somewhere')"
    )
    assert str(Credentials("AKID", "secret-value-3")) == (
        "Credentials(access_key_id='AKID', access_key_secret=<redacted>, source='explicit arguments')"
    )
    with pytest.raises(AttributeError) as caught:
        del creds.source
    assert str(caught.value) == "Credentials are immutable; cannot delete 'source'"
    with pytest.raises(AttributeError) as caught:
        creds.source = "x"
    assert str(caught.value) == "Credentials are immutable; cannot set 'source'"
    # equal credentials hash alike; different ones (almost surely) not
    assert hash(creds) == hash(Credentials("AKID", "secret-value-3", "token-value-3", source="somewhere"))
    assert hash(Credentials("a-key", "secret-value-3")) != hash(Credentials("b-key", "secret-value-3"))
    assert creds != ("AKID", "secret-value-3", "token-value-3", "somewhere")  # only Credentials are equal to it


def test_lazy_credentials_choose_on_first_use() -> None:
    chosen: list[int] = []
    refreshing = RefreshingCredentials(lambda: Credentials("STS.x", "lazy-secret-4", "lazy-token-4"), "refresher")

    def choose() -> RefreshingCredentials:
        chosen.append(1)
        return refreshing

    lazy = LazyCredentials(choose)
    assert lazy.due() is True and lazy.secrets() == () and chosen == []
    assert repr(lazy) == "LazyCredentials(source='not chosen yet')"
    assert lazy.get().access_key_id == "STS.x" and chosen == [1]
    assert lazy.due() is False  # the refreshing source is not due: no expiration
    assert lazy.secrets() == ("lazy-secret-4", "lazy-token-4")
    assert repr(lazy) == "LazyCredentials(source='refresher')"
    lazy.get()
    assert chosen == [1]  # chosen once
    fixed = LazyCredentials(lambda: Credentials("AKID", "lazy-secret-5"))
    fixed.get()
    assert fixed.due() is False and repr(fixed) == "LazyCredentials(source='explicit arguments')"

    def broken() -> Credentials:
        raise CredentialsNotFoundError("nothing here")

    failing = LazyCredentials(broken)
    for _ in range(2):  # nothing is cached but success
        with pytest.raises(CredentialsNotFoundError, match="nothing here"):
            failing.get()
    assert failing.due() is True


def test_redact_replaces_every_form_of_each_secret() -> None:
    creds = Credentials("AKID", "redact+me/1=", "token-value-6")
    text = "a redact+me/1= b redact%2Bme%2F1%3D c token-value-6 d"
    assert redact(text, creds) == "a <redacted> b <redacted> c <redacted> d"
    assert redact(text, None) == text
    padded = Credentials("AKID", "padded-secret-16")  # 16 bytes: base64 ends with "==", and unpadded is a prefix
    b64 = base64.b64encode(b"padded-secret-16").decode()
    assert b64.endswith("==") and redact(f"x {b64} y", padded) == "x <redacted> y"  # no "==" left over


def test_refreshing_credentials_log_a_failed_refresh_and_register_new_secrets(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    answers: list[Credentials | ConfigError] = [
        Credentials("STS.a", "refresh-secret-7", "refresh-token-7", expiration=1100.0),
        ConfigError("STS is down"),
    ]

    def fetch() -> Credentials:
        answer = answers.pop(0)
        if isinstance(answer, ConfigError):
            raise answer
        return answer

    source = RefreshingCredentials(fetch, "the test source", clock=lambda: now[0])
    assert source.secrets() == ()
    assert source.get().access_key_id == "STS.a"
    assert source.secrets() == ("refresh-secret-7", "refresh-token-7")
    assert REDACTOR("x refresh-secret-7 y") == "x <redacted> y"  # registered with the process-wide redactor
    now[0] = 1075.0  # a quarter of the 100 s lifetime ahead: due
    assert source.due()
    with caplog.at_level(logging.WARNING, logger="imm_faces.credentials"):
        assert source.get().access_key_id == "STS.a"
    assert [r.getMessage() for r in caplog.records] == [
        "refreshing credentials (the test source) failed; using the current ones: STS is down"
    ]
    answers.append(ConfigError("STS is still down"))
    now[0] = 1094.5  # more than five seconds before expiry: the current set is still used
    assert source.get().access_key_id == "STS.a"
    answers.append(ConfigError("STS is still down"))
    now[0] = 1095.0  # five seconds before expiry: too late to keep the current set
    with pytest.raises(ConfigError, match="STS is still down"):
        source.get()
    assert repr(source) == "RefreshingCredentials(source='the test source')"


def test_a_refresh_failure_within_five_seconds_of_expiry_surfaces() -> None:
    now = [0.0]
    answers: list[Any] = [Credentials("STS.a", "refresh-secret-8", expiration=8.0), ConfigError("down")]

    def fetch() -> Credentials:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    source = RefreshingCredentials(fetch, "t", clock=lambda: now[0])
    source.get()  # lifetime 8 s: refreshed max(1, 8/4) = 2 s ahead, at 6 s
    now[0] = 5.9
    assert not source.due()
    now[0] = 6.0
    assert source.due()
    with pytest.raises(ConfigError, match="down"):
        source.get()  # 6.0 is not before 8.0 - 5: too close to expiry to keep using the current set


def test_a_short_lifetime_is_refreshed_at_least_a_second_ahead() -> None:
    now = [0.0]
    source = RefreshingCredentials(
        lambda: Credentials("STS.a", "refresh-secret-9", expiration=now[0] + 2.0), "t", clock=lambda: now[0]
    )
    source.get()
    now[0] = 0.9
    assert not source.due()  # a quarter of 2 s would be 0.5 s; the margin is at least 1 s
    now[0] = 1.0
    assert source.due()


def test_a_first_fetch_that_fails_raises() -> None:
    def fetch() -> Credentials:
        raise ConfigError("no STS")

    with pytest.raises(ConfigError, match="no STS"):
        RefreshingCredentials(fetch, "t").get()


# ---------------------------------------------------------------------------------------------- settings


def test_settings_from_config_read_every_key() -> None:
    config: dict[str, Any] = {
        "alicloud:accessKey": "AKID",
        "alicloud:secretKey": "config-secret-10",
        "alicloud:securityToken": "tok-10xyz",
        "alicloud:profile": "dev",
        "alicloud:sharedCredentialsFile": "/etc/aliyun.json",
        "alicloud:assumeRole": json.dumps(
            {"roleArn": ROLE, "sessionName": "s1", "externalId": "ext-1", "sessionExpiration": "1800", "policy": "{}"}
        ),
        "alicloud:assumeRoleWithOidc": {
            "roleArn": ROLE,
            "oidcProviderArn": PROVIDER,
            "oidcTokenFile": "/t",
            "oidcToken": "oidc-token-10",
            "roleSessionName": "s2",
            "sessionExpiration": 900,
            "policy": '{"a":1}',
        },
        "alicloud:ecsRoleName": "ecs-role",
        "alicloud:credentialsUri": "http://sidecar.test/c",
        "alicloud:endpoints": json.dumps([{"ecs": "x"}, {"sts": ""}, {"sts": "http://sts.test/"}, "junk"]),
    }
    settings = CredentialSettings.from_config(config.get, "stack dev config")
    assert settings == CredentialSettings(
        access_key_id="AKID",
        access_key_secret=settings.access_key_secret,
        security_token=settings.security_token,
        profile="dev",
        shared_credentials_file="/etc/aliyun.json",
        assume_role=AssumeRole(ROLE, "s1", "ext-1", 1800, "{}"),
        assume_role_with_oidc=OidcRole(
            ROLE,
            PROVIDER,
            token_file="/t",
            token=settings.assume_role_with_oidc.token,  # type: ignore[union-attr]
            session_name="s2",
            duration=900,
            policy='{"a":1}',
        ),
        ecs_role_name="ecs-role",
        credentials_uri="http://sidecar.test/c",
        sts_endpoint="http://sts.test/",
        label="stack dev config",
    )
    assert settings.access_key_secret.value == "config-secret-10"  # type: ignore[union-attr]
    assert settings.security_token.value == "tok-10xyz"  # type: ignore[union-attr]
    assert settings.assume_role_with_oidc.token.value == "oidc-token-10"  # type: ignore[union-attr]
    # numbers are text too; empty values are unset; the default label
    other = CredentialSettings.from_config(
        {"alicloud:accessKey": 12345, "alicloud:profile": "", "alicloud:endpoints": [{"sts": "http://a.test/"}]}.get
    )
    assert (other.access_key_id, other.profile, other.sts_endpoint, other.label) == (
        "12345",
        None,
        "http://a.test/",
        "stack config",
    )
    assert CredentialSettings.from_config({"alicloud:assumeRole": ""}.get).assume_role is None
    empty = {"roleArn": ROLE, "sessionName": "", "sessionExpiration": "", "externalId": None}
    assert CredentialSettings.from_config({"alicloud:assumeRole": empty}.get).assume_role == AssumeRole(ROLE)
    assert CredentialSettings.from_config(lambda key: None) == CredentialSettings(label="stack config")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"alicloud:accessKey": True}, "cfg alicloud:accessKey: must be a string"),
        ({"alicloud:profile": ["a"]}, "cfg alicloud:profile: must be a string"),
        (
            {"alicloud:assumeRole": "{not json"},
            "cfg alicloud:assumeRole: must be an object (got text that is not JSON)",
        ),
        ({"alicloud:assumeRole": "[1]"}, "cfg alicloud:assumeRole: must be an object"),
        ({"alicloud:assumeRole": {"sessionName": "x"}}, "cfg alicloud:assumeRole.roleArn: is required"),
        ({"alicloud:assumeRole": {"roleArn": ""}}, "cfg alicloud:assumeRole.roleArn: is required"),
        (
            {"alicloud:assumeRole": {"roleArn": ROLE, "sessionName": 5}},
            "cfg alicloud:assumeRole.sessionName: must be a string",
        ),
        (
            {"alicloud:assumeRole": {"roleArn": ROLE, "sessionExpiration": "soon"}},
            "cfg alicloud:assumeRole.sessionExpiration: must be a whole number of seconds",
        ),
        (
            {"alicloud:assumeRole": {"roleArn": ROLE, "sessionExpiration": [1]}},
            "cfg alicloud:assumeRole.sessionExpiration: must be a whole number of seconds",
        ),
        (
            {"alicloud:assumeRoleWithOidc": {"roleArn": ROLE}},
            "cfg alicloud:assumeRoleWithOidc.oidcProviderArn: is required",
        ),
        (
            {"alicloud:assumeRoleWithOidc": {"oidcProviderArn": PROVIDER, "oidcToken": "t"}},
            "cfg alicloud:assumeRoleWithOidc.roleArn: is required",
        ),
        (
            {"alicloud:assumeRoleWithOidc": {"roleArn": ROLE, "oidcProviderArn": PROVIDER}},
            "cfg alicloud:assumeRoleWithOidc: set oidcToken or oidcTokenFile",
        ),
        ({"alicloud:endpoints": "[not json"}, "cfg alicloud:endpoints: must be a list of objects"),
    ],
)
def test_settings_errors_name_the_key_and_the_rule(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CredentialSettings.from_config(config.get, "cfg")
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("assumeRole", "roleArn"),
        ("assumeRole", "sessionName"),
        ("assumeRole", "externalId"),
        ("assumeRole", "sessionExpiration"),
        ("assumeRole", "policy"),
        ("assumeRoleWithOidc", "roleArn"),
        ("assumeRoleWithOidc", "oidcProviderArn"),
        ("assumeRoleWithOidc", "oidcTokenFile"),
        ("assumeRoleWithOidc", "oidcToken"),
        ("assumeRoleWithOidc", "roleSessionName"),
        ("assumeRoleWithOidc", "sessionExpiration"),
        ("assumeRoleWithOidc", "policy"),
    ],
)
def test_each_member_of_a_role_setting_is_named_in_its_error(key: str, name: str) -> None:
    good = {"roleArn": ROLE, "oidcProviderArn": PROVIDER, "oidcToken": "member-oidc-token"}
    number = name == "sessionExpiration"
    with pytest.raises(ConfigError) as caught:
        CredentialSettings.from_config({f"alicloud:{key}": {**good, name: "soon" if number else 5}}.get, "cfg")
    rule = "must be a whole number of seconds" if number else "must be a string"
    assert str(caught.value) == f"cfg alicloud:{key}.{name}: {rule}"


def test_config_keys_present_names_the_set_ones() -> None:
    config = {"alicloud:accessKey": "a", "alicloud:secretKey": "", "alicloud:profile": None, "alicloud:ecsRoleName": 0}
    assert config_keys_present(config.get) == ("alicloud:accessKey", "alicloud:ecsRoleName")


# ---------------------------------------------------------------------------------------------- sources


def test_explicit_arguments_and_settings(tmp_path: Path) -> None:
    assert resolve_provider("AKID", "explicit-secret-11", "explicit-token-11", env={}) == Credentials(
        "AKID", "explicit-secret-11", "explicit-token-11", source="explicit arguments"
    )
    assert resolve_provider("AKID", "explicit-secret-11", "", env={}).get().security_token is None
    settings = CredentialSettings(
        access_key_id="CFG", access_key_secret="config-secret-11", security_token="", label="stack dev config"
    )
    assert resolve_provider(settings=settings, env={}) == Credentials(
        "CFG", "config-secret-11", source="stack dev config"
    )
    with_token = CredentialSettings(
        access_key_id="CFG", access_key_secret="config-secret-11", security_token="config-token-11", label="cfg"
    )
    assert resolve_provider(settings=with_token, env={}).get().security_token == "config-token-11"
    # arguments win over the settings, and are then labelled as arguments
    assert resolve_provider("ARG", "argument-secret-11", settings=settings, env={}) == Credentials(
        "ARG", "argument-secret-11", source="explicit arguments"
    )
    for args, missing in ((("AKID", None), "access_key_secret"), ((None, "explicit-secret-11"), "access_key_id")):
        with pytest.raises(CredentialsNotFoundError) as caught:
            resolve_provider(*args, env={})
        assert str(caught.value) == f"explicit arguments: explicit credentials are incomplete: {missing} is missing"
    half = CredentialSettings(access_key_id="CFG", label="stack dev config")
    with pytest.raises(
        CredentialsNotFoundError,
        match=r"^stack dev config: explicit credentials are incomplete: "
        r"access_key_secret is missing$",
    ):
        resolve_provider(
            settings=half, env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "x", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "y"}
        )


def test_the_process_environment_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "process-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "process-secret-12")
    assert resolve_provider(cli_config=no_file(tmp_path)) == Credentials(
        "process-id", "process-secret-12", source="environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"
    )


def test_environment_keys_in_order(tmp_path: Path) -> None:
    modern = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "ali-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ali-secret-12",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "ali-token-12",
    }
    legacy = {"ALICLOUD_ACCESS_KEY": "old-id", "ALICLOUD_SECRET_KEY": "old-secret-12", "ALICLOUD_SECURITY_TOKEN": ""}
    cfg = no_file(tmp_path)
    assert resolve_provider(env={**modern, **legacy}, cli_config=cfg) == Credentials(
        "ali-id", "ali-secret-12", "ali-token-12", source="environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"
    )
    assert resolve_provider(env={**legacy, "ALIBABA_CLOUD_ACCESS_KEY_ID": "half"}, cli_config=cfg) == Credentials(
        "old-id", "old-secret-12", source="environment (ALICLOUD_ACCESS_KEY)"
    )


def test_nothing_found_lists_every_step_in_order(tmp_path: Path) -> None:
    cfg = no_file(tmp_path)
    with pytest.raises(CredentialsNotFoundError) as caught:
        resolve_provider(env={}, cli_config=cfg)
    tried = [
        "no Alibaba Cloud credentials found. Tried:",
        "explicit arguments: no access key, OIDC role or ECS role",
        "environment ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET: not both set",
        "environment ALICLOUD_ACCESS_KEY and ALICLOUD_SECRET_KEY: not both set",
        "environment ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE: not set",
        f"aliyun CLI config {cfg}: no such file",
        "ECS instance role: ALIBABA_CLOUD_ECS_METADATA / ALICLOUD_ECS_ROLE_NAME not set",
        "credentials URI: alicloud:credentialsUri / ALIBABA_CLOUD_CREDENTIALS_URI not set",
    ]
    assert str(caught.value) == "\n  - ".join(tried)
    with pytest.raises(CredentialsNotFoundError, match=r"^no Alibaba .*\n  - stack x: no access key, OIDC role"):
        resolve_provider(settings=CredentialSettings(label="stack x"), env={}, cli_config=cfg)


def test_oidc_from_the_environment(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  env-oidc-token-13\n")
    env = {
        **STS_ENV,
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token),
        "ALIBABA_CLOUD_ROLE_SESSION_NAME": "gha",
    }
    cloud = Cloud()
    source = resolve_provider(env=env, cli_config=no_file(tmp_path), transport=cloud.transport)
    label = "environment (ALIBABA_CLOUD_OIDC_TOKEN_FILE)"
    assert fetched(source) == temporary(1, f"{label}: role {ROLE} assumed with an OIDC token")
    params = cloud.params()
    assert (
        params["Action"],
        params["RoleArn"],
        params["OIDCProviderArn"],
        params["OIDCToken"],
        params["RoleSessionName"],
    ) == ("AssumeRoleWithOIDC", ROLE, PROVIDER, "env-oidc-token-13", "gha")
    assert "Signature" not in params and "DurationSeconds" not in params and "Policy" not in params
    no_session = {k: v for k, v in env.items() if k != "ALIBABA_CLOUD_ROLE_SESSION_NAME"}
    resolve_provider(
        env={**no_session, "ALIBABA_CLOUD_ROLE_SESSION_NAME": ""},
        cli_config=no_file(tmp_path),
        transport=cloud.transport,
    ).get()
    assert cloud.params()["RoleSessionName"] == "imm-faces"
    for present in (["ALIBABA_CLOUD_ROLE_ARN"], ["ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"]):
        missing = [
            n
            for n in ("ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE")
            if n not in present
        ]
        with pytest.raises(CredentialsNotFoundError) as caught:
            resolve_provider(env={n: env[n] for n in present}, cli_config=no_file(tmp_path))
        assert str(caught.value) == (
            f"OIDC role assumption from the environment is incomplete: {', '.join(missing)} not set"
        )


def test_oidc_settings_token_and_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = Cloud()
    role = OidcRole(ROLE, PROVIDER, token="settings-oidc-token-14", session_name="s1", duration=1800, policy="{}")
    settings = CredentialSettings(assume_role_with_oidc=role, label="cfg")
    source = resolve_provider(settings=settings, env=STS_ENV, transport=cloud.transport)
    assert fetched(source) == temporary(1, f"cfg (alicloud:assumeRoleWithOidc): role {ROLE} assumed with an OIDC token")
    params = cloud.params()
    assert (params["OIDCToken"], params["RoleSessionName"], params["DurationSeconds"], params["Policy"]) == (
        "settings-oidc-token-14",
        "s1",
        "1800",
        "{}",
    )
    # a token file wins over the token, and is read at every fetch
    token_file = tmp_path / "t"
    token_file.write_text("file-oidc-token-14a")
    from_file = OidcRole(ROLE, PROVIDER, token_file=str(token_file), token="settings-oidc-token-14")
    now = [0.0]
    refreshing = resolve_provider(
        settings=CredentialSettings(assume_role_with_oidc=from_file), env=STS_ENV, transport=cloud.transport
    )
    assert isinstance(refreshing, RefreshingCredentials)
    refreshing._clock = lambda: now[0]
    refreshing.get()
    assert cloud.params()["OIDCToken"] == "file-oidc-token-14a"
    token_file.write_text("file-oidc-token-14b")
    now[0] = EXPIRES_AT
    refreshing.get()
    assert cloud.params()["OIDCToken"] == "file-oidc-token-14b"
    assert REDACTOR("file-oidc-token-14b") == "<redacted>"
    missing = OidcRole(ROLE, PROVIDER, token_file=str(tmp_path / "absent"))
    with pytest.raises(ConfigError) as caught:
        resolve_provider(
            settings=CredentialSettings(assume_role_with_oidc=missing, label="cfg"),
            env=STS_ENV,
            transport=cloud.transport,
        ).get()
    assert str(caught.value) == (
        f"cfg (alicloud:assumeRoleWithOidc): cannot read the OIDC token file "
        f"{tmp_path / 'absent'} (No such file or directory)"
    )
    token_file.write_text("  \n")
    with pytest.raises(ConfigError) as caught:
        resolve_provider(
            settings=CredentialSettings(assume_role_with_oidc=from_file, label="cfg"),
            env=STS_ENV,
            transport=cloud.transport,
        ).get()
    assert str(caught.value) == "cfg (alicloud:assumeRoleWithOidc): the OIDC token is empty"
    monkeypatch.setenv("HOME", str(tmp_path))
    token_file.write_text("home-oidc-token-14c")
    in_home = OidcRole(ROLE, PROVIDER, token_file="~/t")
    resolve_provider(
        settings=CredentialSettings(assume_role_with_oidc=in_home), env=STS_ENV, transport=cloud.transport
    ).get()
    assert cloud.params()["OIDCToken"] == "home-oidc-token-14c"
    bad = OidcRole("not-an-arn", PROVIDER, token="settings-oidc-token-14")
    with pytest.raises(ConfigError, match=r"^cfg \(alicloud:assumeRoleWithOidc\): .*RoleArn"):
        resolve_provider(
            settings=CredentialSettings(assume_role_with_oidc=bad, label="cfg"), env=STS_ENV, transport=cloud.transport
        ).get()


def test_assume_role_on_top_of_a_source_is_signed_by_it(tmp_path: Path) -> None:
    cloud = Cloud()
    role = AssumeRole(ROLE, "pulumi", "ext-15", 1800, '{"Version":"1"}')
    settings = CredentialSettings(
        access_key_id="BASE",
        access_key_secret="base-secret-15",
        security_token="base-token-15",
        assume_role=role,
        label="cfg",
    )
    source = resolve_provider(settings=settings, env=STS_ENV, transport=cloud.transport)
    assert fetched(source) == temporary(1, f"cfg (alicloud:assumeRole): role {ROLE} assumed with cfg")
    params = cloud.params()
    assert (
        params["Action"],
        params["RoleArn"],
        params["RoleSessionName"],
        params["ExternalId"],
        params["DurationSeconds"],
        params["Policy"],
    ) == ("AssumeRole", ROLE, "pulumi", "ext-15", "1800", '{"Version":"1"}')
    assert (params["AccessKeyId"], params["SecurityToken"]) == ("BASE", "base-token-15") and params["Signature"]
    assert cloud.requests[-1].url.host == "sts.test"
    # from the environment: ALICLOUD_ASSUME_ROLE_*, the session name defaulting to imm-faces
    env = {
        **STS_ENV,
        "ALICLOUD_ACCESS_KEY": "ENVKEY",
        "ALICLOUD_SECRET_KEY": "env-secret-15",
        "ALICLOUD_ASSUME_ROLE_ARN": ROLE,
        "ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION": "900",
    }
    source = resolve_provider(env=env, cli_config=no_file(tmp_path), transport=cloud.transport)
    label = "environment (ALICLOUD_ASSUME_ROLE_ARN)"
    assert fetched(source) == temporary(2, f"{label}: role {ROLE} assumed with environment (ALICLOUD_ACCESS_KEY)")
    params = cloud.params()
    assert (params["RoleSessionName"], params["DurationSeconds"], params["AccessKeyId"]) == (
        "imm-faces",
        "900",
        "ENVKEY",
    )
    assert "ExternalId" not in params and "Policy" not in params and "SecurityToken" not in params
    session = {"ALICLOUD_ASSUME_ROLE_SESSION_NAME": "ci", "ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION": ""}
    resolve_provider(env={**env, **session}, cli_config=no_file(tmp_path), transport=cloud.transport).get()
    assert cloud.params()["RoleSessionName"] == "ci" and "DurationSeconds" not in cloud.params()
    with pytest.raises(ConfigError) as caught:
        resolve_provider(env={**env, "ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION": "1h"}, cli_config=no_file(tmp_path))
    assert str(caught.value) == "ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION: must be a whole number of seconds"
    bad = CredentialSettings(
        access_key_id="BASE", access_key_secret="base-secret-15", assume_role=AssumeRole("not-an-arn"), label="cfg"
    )
    with pytest.raises(ConfigError) as refused:
        resolve_provider(settings=bad, env=STS_ENV, transport=cloud.transport)
    assert str(refused.value).startswith("cfg (alicloud:assumeRole): The parameter RoleArn is invalid: ")
    # the settings' role wins over the environment's
    settings_role = CredentialSettings(assume_role=AssumeRole("acs:ram::1:role/other"), label="cfg")
    source = resolve_provider(settings=settings_role, env=env, cli_config=no_file(tmp_path), transport=cloud.transport)
    source.get()
    assert cloud.params()["RoleArn"] == "acs:ram::1:role/other"


def test_the_signer_of_an_assumed_role_is_registered_with_the_redactor() -> None:
    cloud = Cloud()
    base = RefreshingCredentials(lambda: Credentials("BASE", "signer-secret-16", "signer-token-16"), "base")
    settings = CredentialSettings(assume_role=AssumeRole(ROLE), label="cfg")
    role = assume_role(base, AssumeRole(ROLE), Context(STS_ENV, settings, METADATA, cloud.transport), "label")
    assert role.source == f"label: role {ROLE} assumed with base"
    role.get()
    assert REDACTOR("signer-token-16") == "<redacted>" and REDACTOR("issued-token-1") == "<redacted>"


def test_sts_endpoint_setting_then_environment_then_region() -> None:
    def _sts_endpoint(settings: CredentialSettings, env: dict[str, str]) -> str:
        return Context(env, settings).sts_endpoint

    with_setting = CredentialSettings(sts_endpoint="http://from-settings.test")
    env = {
        "ALIBABA_CLOUD_STS_ENDPOINT": "http://ali.test",
        "ALICLOUD_STS_ENDPOINT": "http://old.test",
        "ALIBABA_CLOUD_STS_REGION": "cn-shanghai",
        "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": " TRUE ",
    }
    assert _sts_endpoint(with_setting, env) == "http://from-settings.test/"
    assert _sts_endpoint(CredentialSettings(), env) == "http://ali.test/"
    del env["ALIBABA_CLOUD_STS_ENDPOINT"]
    assert _sts_endpoint(CredentialSettings(), env) == "http://old.test/"
    del env["ALICLOUD_STS_ENDPOINT"]
    assert _sts_endpoint(CredentialSettings(), env) == "https://sts-vpc.cn-shanghai.aliyuncs.com/"
    env["ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"] = "yes"
    assert _sts_endpoint(CredentialSettings(), env) == "https://sts.cn-shanghai.aliyuncs.com/"
    assert _sts_endpoint(CredentialSettings(), {"ALIBABA_CLOUD_STS_REGION": ""}) == "https://sts.aliyuncs.com/"


def test_ecs_role_with_an_imdsv2_token(tmp_path: Path) -> None:
    cloud = Cloud()
    env = {"ALIBABA_CLOUD_ECS_METADATA": "ecs-role"}
    source = resolve_provider(
        env=env, cli_config=no_file(tmp_path), metadata_url=METADATA + "/", transport=cloud.transport
    )
    label = "environment (ALIBABA_CLOUD_ECS_METADATA): ECS instance role ecs-role"
    assert fetched(source) == temporary(1, label)
    put, get = cloud.requests
    assert (put.method, str(put.url), put.headers["X-aliyun-ecs-metadata-token-ttl-seconds"]) == (
        "PUT",
        "http://metadata.test/latest/api/token",
        "21600",
    )
    assert (get.method, str(get.url), get.headers["X-aliyun-ecs-metadata-token"]) == (
        "GET",
        "http://metadata.test/latest/meta-data/ram/security-credentials/ecs-role",
        "imds-token-1",
    )
    assert get.extensions["timeout"] == {"connect": 1.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    settings = CredentialSettings(ecs_role_name="ecs-role", label="cfg")
    source = resolve_provider(settings=settings, env={}, metadata_url=METADATA, transport=cloud.transport)
    assert source.get().source == "cfg (alicloud:ecsRoleName): ECS instance role ecs-role"
    legacy = resolve_provider(
        env={"ALICLOUD_ECS_ROLE_NAME": "ecs-role"},
        cli_config=no_file(tmp_path),
        metadata_url=METADATA,
        transport=cloud.transport,
    )
    assert legacy.get().source == label
    with pytest.raises(CredentialsNotFoundError, match="ECS instance role: ALIBABA_CLOUD_ECS_METADATA"):
        resolve_provider(env={**env, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}, cli_config=no_file(tmp_path))


def test_ecs_role_without_a_token_falls_back_to_imdsv1_unless_disabled(tmp_path: Path) -> None:
    cloud = Cloud(imds_token=403)
    source = resolve_provider(
        env={"ALIBABA_CLOUD_ECS_METADATA": "ecs-role"},
        cli_config=no_file(tmp_path),
        metadata_url=METADATA,
        transport=cloud.transport,
    )
    assert source.get().access_key_id == "STS.issued-1"
    assert "X-aliyun-ecs-metadata-token" not in cloud.requests[-1].headers
    env = {"ALIBABA_CLOUD_ECS_METADATA": "ecs-role", "ALIBABA_CLOUD_IMDSV1_DISABLED": "True"}
    with pytest.raises(StsError) as caught:
        resolve_provider(env=env, cli_config=no_file(tmp_path), metadata_url=METADATA, transport=cloud.transport).get()
    assert str(caught.value) == (
        "environment (ALIBABA_CLOUD_ECS_METADATA): ECS instance role ecs-role: the metadata service gave no IMDSv2 "
        "token (HTTP 403) and ALIBABA_CLOUD_IMDSV1_DISABLED is true"
    )


def test_ecs_profile_without_a_role_name_reads_the_instances(tmp_path: Path) -> None:
    cfg = profiles(tmp_path, {"name": "ecs", "mode": "EcsRamRole"}, current="ecs")
    cloud = Cloud()
    source = resolve_provider(env={}, cli_config=cfg, metadata_url=METADATA, transport=cloud.transport)
    label = f"aliyun CLI config {cfg} profile 'ecs' (EcsRamRole): ECS instance role (the instance’s)"
    assert fetched(source) == temporary(1, label)
    assert [str(r.url) for r in cloud.requests] == [
        "http://metadata.test/latest/api/token",
        "http://metadata.test/latest/meta-data/ram/security-credentials/",
        "http://metadata.test/latest/meta-data/ram/security-credentials/ecs-role",
    ]
    assert cloud.requests[1].headers["X-aliyun-ecs-metadata-token"] == "imds-token-1"
    with pytest.raises(StsError) as caught:
        resolve_provider(env={}, cli_config=cfg, metadata_url=METADATA, transport=Cloud(role="").transport).get()
    assert str(caught.value) == f"{label}: the instance has no RAM role (HTTP 404)"
    named = profiles(tmp_path, {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "ecs-role"}, current="ecs")
    cloud = Cloud()
    resolve_provider(env={}, cli_config=named, metadata_url=METADATA, transport=cloud.transport).get()
    assert len(cloud.requests) == 2  # the named role: no listing


def test_a_metadata_service_that_refuses(tmp_path: Path) -> None:
    with pytest.raises(StsError) as caught:
        resolve_provider(
            env={"ALIBABA_CLOUD_ECS_METADATA": "ecs-role"},
            cli_config=no_file(tmp_path),
            metadata_url=METADATA,
            transport=Cloud(ecs_code="Failed").transport,
        ).get()
    assert str(caught.value) == "ECS metadata: the service refused it: Failed: role detached"


def test_an_unreachable_metadata_service(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(StsError) as caught:
        resolve_provider(
            env={"ALIBABA_CLOUD_ECS_METADATA": "r1"},
            cli_config=no_file(tmp_path),
            metadata_url=METADATA,
            transport=httpx.MockTransport(refuse),
        ).get()
    assert str(caught.value) == (
        "environment (ALIBABA_CLOUD_ECS_METADATA): ECS instance role r1: cannot reach the "
        "ECS metadata service (ConnectError)"
    )


def test_credentials_uri_hides_its_query_and_user_in_the_label(tmp_path: Path) -> None:
    cloud = Cloud()
    uri = "http://user:uri-password-17@sidecar.test/creds?token=uri-query-token-17"
    settings = CredentialSettings(credentials_uri=uri, label="cfg")
    source = resolve_provider(settings=settings, env={}, cli_config=no_file(tmp_path), transport=cloud.transport)
    label = "cfg (alicloud:credentialsUri): credentials URI http://sidecar.test/creds"
    assert repr(source) == f"RefreshingCredentials(source={label!r})"
    assert fetched(source) == temporary(1, label)
    (request,) = cloud.requests
    assert str(request.url) == uri and request.method == "GET"  # the URI as given, query and all
    assert request.extensions["timeout"] == {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    from_env = resolve_provider(
        env={"ALIBABA_CLOUD_CREDENTIALS_URI": "http://sidecar.test/c"},
        cli_config=no_file(tmp_path),
        transport=cloud.transport,
    )
    assert from_env.get().source == "environment: credentials URI http://sidecar.test/c"


def test_credentials_uri_errors_name_it(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    def failed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"Code": "Failed", "Message": "no keys today"})

    env = {"ALIBABA_CLOUD_CREDENTIALS_URI": "http://sidecar.test/c?x=1"}
    for transport, message in (
        (
            httpx.MockTransport(refuse),
            "environment: credentials URI http://sidecar.test/c: unreachable (ConnectTimeout)",
        ),
        (Cloud(sidecar=failed).transport, "credentials URI: http://sidecar.test/c refused it: Failed: no keys today"),
    ):
        with pytest.raises(StsError) as caught:
            resolve_provider(env=env, cli_config=no_file(tmp_path), transport=transport).get()
        assert str(caught.value) == message


# ---------------------------------------------------------------------------------------------- CLI profiles


def test_cli_profiles_give_exact_credentials(tmp_path: Path) -> None:
    cfg = profiles(
        tmp_path,
        "not a profile",  # type: ignore[arg-type]
        {"name": "default", "access_key_id": "cli-id", "access_key_secret": "cli-secret-18"},  # no mode: AK
        {
            "name": "sts",
            "mode": "StsToken",
            "access_key_id": "STS.cli",
            "access_key_secret": "cli-secret-18b",
            "sts_token": "cli-token-18",
        },
    )
    prefix = f"aliyun CLI config {cfg} profile"
    assert resolve_provider(env={}, cli_config=cfg) == Credentials(
        "cli-id", "cli-secret-18", source=f"{prefix} 'default' (AK)"
    )
    assert resolve_provider(env={}, cli_config=cfg, profile="sts") == Credentials(
        "STS.cli", "cli-secret-18b", "cli-token-18", source=f"{prefix} 'sts' (StsToken)"
    )


def test_a_cli_config_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    cfg = profiles(
        tmp_path, {"name": "开发", "access_key_id": "cli-id", "access_key_secret": "cli-secret-22"}, current="开发"
    )
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale (a bare container, cron): the file is still UTF-8
    try:
        assert resolve_provider(env={}, cli_config=cfg).get().source == f"aliyun CLI config {cfg} profile '开发' (AK)"
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_cli_profile_name_and_file_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["arg", "setting", "ali", "old", "current", "default"]
    cfg = profiles(
        tmp_path,
        *({"name": n, "access_key_id": f"id-{n}", "access_key_secret": f"cli-secret-{n}"} for n in names),
        current="current",
    )
    settings = CredentialSettings(profile="setting")
    env = {"ALIBABA_CLOUD_PROFILE": "ali", "ALICLOUD_PROFILE": "old"}

    def chosen(**kwargs: Any) -> str:
        return resolve_provider(cli_config=cfg, **kwargs).get().access_key_id

    assert chosen(profile="arg", settings=settings, env=env) == "id-arg"
    assert chosen(settings=settings, env=env) == "id-setting"
    assert chosen(env=env) == "id-ali"
    assert chosen(env={"ALICLOUD_PROFILE": "old"}) == "id-old"
    assert chosen(env={}) == "id-current"
    (tmp_path / "d").mkdir()
    no_current = profiles(
        tmp_path / "d", {"name": "default", "access_key_id": "d", "access_key_secret": "cli-secret-d"}
    )
    assert resolve_provider(cli_config=no_current, env={}).get().access_key_id == "d"  # no current: default
    # which file: cli_config, then alicloud:sharedCredentialsFile, then the two variables, then ~/.aliyun
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    one = {"access_key_id": "x", "access_key_secret": "cli-secret-x"}
    a = profiles(tmp_path / "a", {"name": "default", **one, "access_key_id": "from-a"})
    b = profiles(tmp_path / "b", {"name": "default", **one, "access_key_id": "from-b"})
    c = profiles(tmp_path / "c", {"name": "default", **one, "access_key_id": "from-c"})
    shared = CredentialSettings(shared_credentials_file=str(a))
    files = {"ALICLOUD_SHARED_CREDENTIALS_FILE": str(b), "ALIBABA_CLOUD_CONFIG_FILE": str(c)}
    assert resolve_provider(settings=shared, env=files).get().access_key_id == "from-a"
    assert resolve_provider(env=files).get().access_key_id == "from-b"
    assert resolve_provider(env={"ALIBABA_CLOUD_CONFIG_FILE": str(c)}).get().access_key_id == "from-c"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".aliyun").mkdir(parents=True)
    profiles(tmp_path / "home" / ".aliyun", {"name": "default", **one, "access_key_id": "from-home"})
    assert resolve_provider(env={}).get().access_key_id == "from-home"


def test_cli_profile_errors_name_the_profile_and_what_is_missing(tmp_path: Path) -> None:
    cfg = profiles(tmp_path, {"name": "a", "mode": "StsToken"}, {"name": "b", "mode": "RamRoleArn"}, {"mode": "AK"})
    cases = [
        ("nope", f"aliyun CLI config {cfg}: no profile 'nope' (profiles: a, b, None)"),
        (
            "a",
            f"aliyun CLI config {cfg} profile 'a' (StsToken) is incomplete: access_key_id, access_key_secret, "
            "sts_token not set",
        ),
        (
            "b",
            f"aliyun CLI config {cfg} profile 'b' (RamRoleArn) is incomplete: access_key_id, access_key_secret not set",
        ),
    ]
    for name, message in cases:
        with pytest.raises(CredentialsNotFoundError) as caught:
            resolve_provider(env={}, cli_config=cfg, profile=name)
        assert str(caught.value) == message
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(CredentialsNotFoundError) as caught:
        resolve_provider(env={}, cli_config=empty)
    assert str(caught.value) == f"aliyun CLI config {empty}: no profile 'default' (profiles: none)"
    for text, message in (
        ("[]", "expected a JSON object at the top level"),
        ("{nope", "not valid JSON (JSONDecodeError)"),
    ):
        empty.write_text(text)
        with pytest.raises(ConfigError) as invalid:
            resolve_provider(env={}, cli_config=empty)
        assert str(invalid.value) == f"aliyun CLI config {empty}: {message}"


def test_cli_role_profiles_assume_their_role(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("profile-oidc-token-19")
    cfg = profiles(
        tmp_path,
        {
            "name": "ram",
            "mode": "RamRoleArn",
            "access_key_id": "RAMBASE",
            "access_key_secret": "ram-secret-19",
            "sts_token": "ram-token-19",
            "ram_role_arn": ROLE,
            "ram_session_name": "ram-s",
            "external_id": "ext-19",
            "expired_seconds": 1200,
            "policy": "{}",
        },
        {
            "name": "oidc",
            "mode": "OIDC",
            "ram_role_arn": ROLE,
            "oidc_provider_arn": PROVIDER,
            "oidc_token_file": str(token),
            "role_session_name": "oidc-s",
            "expired_seconds": 1000.0,
            "policy": "{}",
        },
        {
            "name": "chain",
            "mode": "ChainableRamRoleArn",
            "source_profile": "ram",
            "ram_role_arn": "acs:ram::2:role/target",
            "expired_seconds": "3600",
            "external_id": "",
        },
    )
    cloud = Cloud()
    prefix = f"aliyun CLI config {cfg} profile"
    ram = resolve_provider(env=STS_ENV, cli_config=cfg, profile="ram", transport=cloud.transport)
    ram_label = f"{prefix} 'ram' (RamRoleArn)"
    assert fetched(ram) == temporary(1, f"{ram_label}: role {ROLE} assumed with {ram_label}")
    params = cloud.params()
    assert {
        k: params[k]
        for k in (
            "RoleArn",
            "RoleSessionName",
            "ExternalId",
            "DurationSeconds",
            "Policy",
            "AccessKeyId",
            "SecurityToken",
        )
    } == {
        "RoleArn": ROLE,
        "RoleSessionName": "ram-s",
        "ExternalId": "ext-19",
        "DurationSeconds": "1200",
        "Policy": "{}",
        "AccessKeyId": "RAMBASE",
        "SecurityToken": "ram-token-19",
    }
    oidc = resolve_provider(env=STS_ENV, cli_config=cfg, profile="oidc", transport=cloud.transport)
    oidc_label = f"{prefix} 'oidc' (OIDC)"
    assert fetched(oidc) == temporary(2, f"{oidc_label}: role {ROLE} assumed with an OIDC token")
    params = cloud.params()
    assert {k: params[k] for k in ("OIDCToken", "RoleSessionName", "DurationSeconds", "Policy")} == {
        "OIDCToken": "profile-oidc-token-19",
        "RoleSessionName": "oidc-s",
        "DurationSeconds": "1000",
        "Policy": "{}",
    }
    chain = resolve_provider(env=STS_ENV, cli_config=cfg, profile="chain", transport=cloud.transport)
    chain_label = f"{prefix} 'chain' (ChainableRamRoleArn)"
    parent = f"{ram_label}: role {ROLE} assumed with {ram_label}"
    assert fetched(chain) == temporary(4, f"{chain_label}: role acs:ram::2:role/target assumed with {parent}")
    params = cloud.params()
    assert (params["AccessKeyId"], params["SecurityToken"], params["RoleSessionName"]) == (
        "STS.issued-3",
        "issued-token-3",
        "imm-faces",
    )  # signed by the parent's assumed role
    assert "DurationSeconds" not in params  # expired_seconds must be a number, not text
    assert "ExternalId" not in params  # an empty field is an unset one


def test_cli_chains_that_loop_or_lack_a_field(tmp_path: Path) -> None:
    cfg = profiles(
        tmp_path,
        {"name": "a", "mode": "ChainableRamRoleArn", "source_profile": "b", "ram_role_arn": ROLE},
        {"name": "b", "mode": "ChainableRamRoleArn", "source_profile": "a", "ram_role_arn": ROLE},
        {"name": "self", "mode": "ChainableRamRoleArn", "source_profile": "self", "ram_role_arn": ROLE},
        {"name": "orphan", "mode": "ChainableRamRoleArn", "ram_role_arn": ROLE},
        {"name": "oidc", "mode": "OIDC", "ram_role_arn": ROLE},
        {"name": "norole", "mode": "ChainableRamRoleArn", "source_profile": "base"},
        {"name": "base", "access_key_id": "k", "access_key_secret": "cli-secret-20"},
        {"name": "oidc-norole", "mode": "OIDC", "oidc_provider_arn": PROVIDER, "oidc_token_file": "/t"},
        {"name": "ak-noid", "mode": "AK", "access_key_secret": "cli-secret-20"},
        {"name": "ak-nosecret", "access_key_id": "k"},
        {"name": "ram-noid", "mode": "RamRoleArn", "access_key_secret": "cli-secret-20", "ram_role_arn": ROLE},
        {"name": "ram-nosecret", "mode": "RamRoleArn", "access_key_id": "k", "ram_role_arn": ROLE},
        {"name": "sts-notoken", "mode": "StsToken", "access_key_id": "k", "access_key_secret": "cli-secret-20"},
        {"name": "sso", "mode": "CloudSSO"},
    )
    prefix = f"aliyun CLI config {cfg} profile"
    cases = {
        "sso": f"{prefix} 'sso' (CloudSSO): mode 'CloudSSO' is not supported (it needs a browser or an external "
        "program); supported: AK, StsToken, RamRoleArn, EcsRamRole, OIDC, ChainableRamRoleArn",
        "oidc-norole": f"{prefix} 'oidc-norole' (OIDC) is incomplete: ram_role_arn not set",
        "ak-noid": f"{prefix} 'ak-noid' (AK) is incomplete: access_key_id not set",
        "ak-nosecret": f"{prefix} 'ak-nosecret' (AK) is incomplete: access_key_secret not set",
        "ram-noid": f"{prefix} 'ram-noid' (RamRoleArn) is incomplete: access_key_id not set",
        "ram-nosecret": f"{prefix} 'ram-nosecret' (RamRoleArn) is incomplete: access_key_secret not set",
        "sts-notoken": f"{prefix} 'sts-notoken' (StsToken) is incomplete: sts_token not set",
        "a": f"{prefix} 'b' (ChainableRamRoleArn): source_profile 'a' makes a loop",
        "self": f"{prefix} 'self' (ChainableRamRoleArn): source_profile 'self' makes a loop",
        "orphan": f"{prefix} 'orphan' (ChainableRamRoleArn) is incomplete: source_profile not set",
        "oidc": f"{prefix} 'oidc' (OIDC) is incomplete: oidc_provider_arn, oidc_token_file not set",
        "norole": f"{prefix} 'norole' (ChainableRamRoleArn) is incomplete: ram_role_arn not set",
    }
    for name, message in cases.items():
        with pytest.raises(CredentialsNotFoundError) as caught:
            resolve_provider(env=STS_ENV, cli_config=cfg, profile=name)
        assert str(caught.value) == message
