"""The Pulumi engine's dynamic-provider host, started for real: ``python -m pulumi.dynamic``.

This is the process the engine starts for ``pulumi-python:dynamic`` resources. It is spoken to over gRPC
exactly as the engine does: Configure with the stack config, then Check, Create, Read, Diff, Update and
Delete with the resource's properties as a protobuf Struct, the serialized provider in ``__provider``. So
everything a real deployment relies on is exercised here: the provider is unpickled in a fresh interpreter
(its module path must import, with no side effects), ``configure()`` runs, numbers arrive as floats, and the
credentials come from that process's environment or the config, never from the resource's inputs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic import CheckFailure
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc


class ProviderCallError(Exception):
    """The provider host answered with an error (a failed check, or an exception in the provider)."""


def plain(value: Any) -> Any:
    """Secrets as the engine sends them to a provider that does not accept secrets: the bare value."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in plain(dict(props)).items() if v is not None})
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(json_format.MessageToDict(struct))


class DynamicProviderHost:
    """One ``python -m pulumi.dynamic`` process; ``close()`` stops it by PID."""

    def __init__(
        self,
        config: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        """``env`` is the whole environment of the host (default: this process's); ``cwd`` is where it starts,
        as the engine starts it in the project directory (which ``-m`` puts first on its ``sys.path``)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            stdout=subprocess.PIPE,
            env=dict(os.environ if env is None else env),
            cwd=cwd,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.close()
            raise ProviderCallError(f"the dynamic provider host did not start (printed {line!r})")
        self.pid = self._proc.pid
        self._channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        self._call(self._stub.Configure, provider_pb2.ConfigureRequest(args=to_struct(config or {})))

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=3600)
        except grpc.RpcError as exc:
            detail = exc.details() or str(exc)  # the provider's traceback; its last line is the error
            last = detail.strip().splitlines()[-1] if detail.strip() else detail
            # imm-faces' own errors are written for the user: their message, without the class's module path.
            raise ProviderCallError(re.sub(r"^imm_faces(\.\w+)*\.\w*Error: ", "", last)) from None

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[CheckFailure]]:
        reply = self._call(
            self._stub.Check, provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds), news=to_struct(news))
        )
        return from_struct(reply.inputs), [CheckFailure(f.property, f.reason) for f in reply.failures]

    def diff(
        self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[bool, list[str], bool]:
        reply = self._call(
            self._stub.Diff, provider_pb2.DiffRequest(id=id_, urn=urn, olds=to_struct(olds), news=to_struct(news))
        )
        return reply.changes == provider_pb2.DiffResponse.DIFF_SOME, list(reply.replaces), reply.deleteBeforeReplace

    def create(self, urn: str, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        reply = self._call(self._stub.Create, provider_pb2.CreateRequest(urn=urn, properties=to_struct(props)))
        return reply.id, from_struct(reply.properties)

    def read(self, urn: str, id_: str, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        reply = self._call(self._stub.Read, provider_pb2.ReadRequest(id=id_, urn=urn, properties=to_struct(props)))
        return reply.id, from_struct(reply.properties)

    def update(self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        reply = self._call(
            self._stub.Update, provider_pb2.UpdateRequest(id=id_, urn=urn, olds=to_struct(olds), news=to_struct(news))
        )
        return from_struct(reply.properties)

    def delete(self, urn: str, id_: str, props: Mapping[str, Any]) -> None:
        self._call(self._stub.Delete, provider_pb2.DeleteRequest(id=id_, urn=urn, properties=to_struct(props)))

    def close(self) -> None:
        if getattr(self, "_channel", None) is not None:
            self._channel.close()
        if self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> DynamicProviderHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
