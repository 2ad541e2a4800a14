"""Drive the `imm` provider plugin as the Pulumi engine does: start it as a process with the engine's command
line, read its port from the first line of stdout, call its RPCs with the SDK's gRPC stubs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc, status_pb2

from imm_faces.components.providers.plugin import SECRET_KEY, SECRET_SIG
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "provider"
UNKNOWN = rpc.UNKNOWN
STACK, PROJECT = "dev", "consumer"
CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_")


def secret(value: Any) -> dict[str, Any]:
    return {SECRET_KEY: SECRET_SIG, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_KEY) == SECRET_SIG


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(values))
    return out


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)  # type: ignore[no-any-return]


def urn(token: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::{token}::{name}"


def init_failed(error: grpc.RpcError) -> provider_pb2.ErrorResourceInitFailed | None:
    """The ErrorResourceInitFailed detail of a failed RPC, as the engine unpacks it (None when absent)."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                found = provider_pb2.ErrorResourceInitFailed()
                if detail.Unpack(found):
                    return found
    return None


def plugin_env(home: Path) -> dict[str, str]:
    """The plugin's environment: no credentials (they must come from the provider config), no ~/.aliyun."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_VARIABLES)}
    env["HOME"] = str(home)  # no ~/.aliyun/config.json
    env["IMM_FACES_PYTHON"] = sys.executable  # the executable's interpreter: the one running the tests
    return env


@contextmanager
def launched(
    command: list[str], home: Path, env: Mapping[str, str] | None = None
) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """Start the plugin (in ``plugin_env(home)`` unless ``env`` is given), yield a stub on its port; stop it."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else plugin_env(home),
        cwd=home,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line.isdigit(), f"first stdout line {line!r}; stderr: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield provider_pb2_grpc.ResourceProviderStub(channel)
        channel.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def plugin_command(how: str, engine: str = "127.0.0.1:1", folder: Path = PLUGIN_DIR) -> list[str]:
    """``executable``: the ``provider/pulumi-resource-imm`` script (of ``folder``) with every flag the engine may
    pass; ``installed``: the ``pulumi-resource-imm`` that `pip install 'imm-faces[pulumi]'` puts on PATH."""
    if how == "executable":
        return [str(folder / "pulumi-resource-imm"), "--logtostderr", "-v=9", "--tracing", "file:./trace.json", engine]
    return [str(Path(sys.executable).parent / "pulumi-resource-imm"), engine]


def configure(plugin: provider_pb2_grpc.ResourceProviderStub, emulator: Emulator, **extra: Any) -> None:
    """CheckConfig then Configure, as the engine does for the default provider: the emulator's endpoint and keys
    (secret), region cn-hangzhou; ``extra`` overrides."""
    config = {
        "region": "cn-hangzhou",
        "endpoint": emulator.endpoint,
        "accessKey": secret(DEFAULT_ACCESS_KEY.access_key_id),
        "secretKey": secret(DEFAULT_ACCESS_KEY.access_key_secret),
        "version": "0.1.0",
        **extra,
    }
    provider_urn = "urn:pulumi:dev::consumer::pulumi:providers:imm::default"
    checked = plugin.CheckConfig(provider_pb2.CheckRequest(urn=provider_urn, olds=struct({}), news=struct(config)))
    assert list(checked.failures) == []
    plugin.Configure(provider_pb2.ConfigureRequest(args=checked.inputs, acceptSecrets=True, acceptResources=True))
