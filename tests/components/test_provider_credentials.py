"""The dynamic providers take pulumi-alicloud's credential settings from the stack config given to configure(),
through the real provider host, and refuse an engine too old to give it."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider

from imm_faces.components.providers import ProjectProvider
from imm_faces.components.providers.base import MIN_PULUMI_CLI, ProviderError
from imm_faces.components.rehearsal.host import DynamicProviderHost, ProviderCallError
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import projects

ROLE = "acs:ram::1234567890123456:role/deployer"
URN = "urn:pulumi:dev::imm-faces::pulumi-python:dynamic/imm:Project::faces-project"
CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_")


def clean_env(tmp_home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_VARIABLES)}
    env["HOME"] = tmp_home  # no ~/.aliyun/config.json
    return env


def stack_config(emulator: Emulator, **assume: Any) -> dict[str, str]:
    return {
        "imm-faces:region": "cn-hangzhou",
        "alicloud:accessKey": DEFAULT_ACCESS_KEY.access_key_id,
        "alicloud:secretKey": DEFAULT_ACCESS_KEY.access_key_secret,
        "alicloud:assumeRole": json.dumps({"roleArn": ROLE, "sessionName": "pulumi-up", **assume}),
        "alicloud:endpoints": json.dumps([{"sts": emulator.endpoint}]),
    }


@pytest.fixture
def program_config() -> Iterator[None]:
    """The program's view of the stack config while a provider is declared (as under `pulumi up`)."""
    pulumi.runtime.set_all_config({"alicloud:assumeRole": json.dumps({"roleArn": ROLE})})
    try:
        yield
    finally:
        pulumi.runtime.set_all_config({})


def test_assume_role_from_stack_config_through_the_provider_host(emulator: Emulator, tmp_path: Any) -> None:
    config = stack_config(emulator, externalId="ext-1")
    emulator.sts.external_ids[ROLE] = "ext-1"
    props = {
        "__provider": serialize_provider(ProjectProvider()),
        "region": "cn-hangzhou",
        "endpoint": emulator.endpoint,
        "project_name": "assumed",
    }
    with DynamicProviderHost(config=config, env=clean_env(str(tmp_path))) as host:
        inputs, failures = host.check(URN, {}, props)
        assert failures == []
        id_, _ = host.create(URN, inputs)
    assert id_ == "assumed"
    with ImmClient(endpoint=emulator.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
        assert imm.call(projects.GetProject, project_name="assumed").project.project_name == "assumed"
    # The role's ExternalId is enforced: the same host with the wrong one cannot create anything.
    wrong = {**config, "alicloud:assumeRole": json.dumps({"roleArn": ROLE, "externalId": "nope"})}
    with DynamicProviderHost(config=wrong, env=clean_env(str(tmp_path))) as host:
        inputs, _ = host.check(URN, {}, {**props, "project_name": "refused"})
        with pytest.raises(ProviderCallError, match="NoPermission"):
            host.create(URN, inputs)


def test_configured_source_is_assumed_credentials_and_is_never_pickled(emulator: Emulator) -> None:
    provider = ProjectProvider()
    provider.configure(ConfigureRequest(Config(stack_config(emulator), "imm-faces")))
    created = provider.create(
        provider.check(
            {}, {"region": "cn-hangzhou", "endpoint": emulator.endpoint, "project_name": "cfg-assumed"}
        ).inputs
    )
    assert created.id == "cfg-assumed"
    creds = provider._credentials.get()  # type: ignore[union-attr]
    assert creds.access_key_id.startswith("STS.") and "alicloud:assumeRole" in creds.source
    pickled = base64.b64decode(serialize_provider(provider))
    for secret in (DEFAULT_ACCESS_KEY.access_key_secret, creds.access_key_secret, creds.security_token or "?"):
        assert secret.encode() not in pickled


def test_an_engine_older_than_v3_139_is_refused(program_config: None, emulator: Emulator, tmp_path: Any) -> None:
    provider = ProjectProvider()  # declared while the program sees alicloud:assumeRole
    assert provider._stack_config_keys == ("alicloud:assumeRole",)
    serialized = serialize_provider(provider)
    assert b"deployer" not in base64.b64decode(serialized)  # names of settings only, never values
    props = {"__provider": serialized, "region": "cn-hangzhou", "endpoint": emulator.endpoint, "project_name": "x"}
    env = {**clean_env(str(tmp_path)), **DEFAULT_ACCESS_KEY.environment()}  # credentials it must not fall back to
    with DynamicProviderHost(config={}, env=env) as host, pytest.raises(ProviderCallError) as exc:
        host.check(URN, {}, props)  # an old engine passes no namespaced config
    assert MIN_PULUMI_CLI in str(exc.value) and "alicloud:assumeRole" in str(exc.value)
    with pytest.raises(ProviderError, match=r"v3\.139\.0"):
        provider.configure(ConfigureRequest(Config({"region": "cn-hangzhou"}, "imm-faces")))
    # A current engine passes the stack's namespaced keys: no complaint.
    provider.configure(ConfigureRequest(Config(stack_config(emulator), "imm-faces")))


def test_a_stack_without_alicloud_settings_uses_the_environment(emulator: Emulator, tmp_path: Any) -> None:
    provider = ProjectProvider()
    assert provider._stack_config_keys == ()
    props = {
        "__provider": serialize_provider(provider),
        "region": "cn-hangzhou",
        "endpoint": emulator.endpoint,
        "project_name": "from-env",
    }
    env = {**clean_env(str(tmp_path)), **DEFAULT_ACCESS_KEY.environment()}
    with DynamicProviderHost(config={}, env=env) as host:
        inputs, _ = host.check(URN, {}, props)
        assert host.create(URN, inputs)[0] == "from-env"


def test_malformed_settings_name_the_key() -> None:
    provider = ProjectProvider()
    with pytest.raises(ProviderError, match=r"stack config alicloud:assumeRole\.roleArn: is required"):
        provider.configure(ConfigureRequest(Config({"alicloud:assumeRole": "{}", "x:y": "1"}, "imm-faces")))
