"""FaceClustering never lets the RAM role and the IMM project land in different accounts: with an assumed role
(alicloud:assumeRole or ALICLOUD_ASSUME_ROLE_ARN) the RAM resources must come from the default alicloud provider,
which reads the same setting as the IMM providers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pulumi
import pulumi_alicloud as alicloud
import pytest
from pulumi.runtime.mocks import MockMonitor

from imm_faces.components import FaceClustering, FaceClusteringArgs
from tests.components.mocks import ROLE, Recorder

ASSUMED = "acs:ram::1234567890123456:role/deployer"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.delenv("ALICLOUD_ASSUME_ROLE_ARN", raising=False)
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="imm-faces", stack="test", preview=False, monitor=MockMonitor(recorder))
    yield recorder
    pulumi.runtime.set_all_config({})


def build(explicit_provider: bool, **args: object) -> None:
    @pulumi.runtime.test  # type: ignore[untyped-decorator,misc]
    def run() -> None:
        opts = None
        if explicit_provider:
            opts = pulumi.ResourceOptions(providers={"alicloud": alicloud.Provider("hz", region="cn-hangzhou")})
        where = FaceClusteringArgs(region="cn-hangzhou", oss_locations=["oss://photo-bucket/family/"], **args)
        FaceClustering("faces", where, opts)

    run()


def test_assumed_role_with_the_default_provider_passes_through(recorder: Recorder) -> None:
    pulumi.runtime.set_all_config({"alicloud:assumeRole": json.dumps({"roleArn": ASSUMED})})
    build(explicit_provider=False)
    assert any(r.typ == ROLE for r in recorder.registered)


@pytest.mark.parametrize("source", ["config", "environment"])
def test_assumed_role_with_a_provider_in_code_is_refused(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "config":
        pulumi.runtime.set_all_config({"alicloud:assumeRole": json.dumps({"roleArn": ASSUMED})})
    else:
        monkeypatch.setenv("ALICLOUD_ASSUME_ROLE_ARN", ASSUMED)
    with pytest.raises(Exception, match="could land in different accounts") as exc:
        build(explicit_provider=True)
    assert ASSUMED in str(exc.value) and "service_role=" in str(exc.value)
    assert not any(r.typ == ROLE for r in recorder.registered)


def test_provider_in_code_without_assumed_role_or_with_an_existing_role_is_fine(recorder: Recorder) -> None:
    build(explicit_provider=True)
    pulumi.runtime.set_all_config({"alicloud:assumeRole": json.dumps({"roleArn": ASSUMED})})
    build(explicit_provider=True, service_role="ExistingRoleInTheAssumedAccount")
