"""A small stand-in for the Pulumi engine's side of Construct: one gRPC server that is both the ``Engine`` (logs)
and the ``ResourceMonitor`` the plugin's component registers its children with.

A custom resource of the ``imm`` package is handed to the plugin as the engine's step executor does (Check, then
Create, in preview when the construct is a preview); any other custom resource (pulumi-alicloud's RAM role...)
is recorded and answered with its inputs as outputs, as the SDK's mocks do. Every registration is recorded."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    resource_pb2,
    resource_pb2_grpc,
)

FEATURES = {"secrets", "resourceReferences", "outputValues", "deletedWith", "aliasSpecs"}


@dataclass
class Registered:
    type: str
    name: str
    custom: bool
    urn: str
    parent: str
    inputs: dict[str, Any]
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Logged:
    message: str
    urn: str
    ephemeral: bool
    severity: int


class FakeEngine(engine_pb2_grpc.EngineServicer, resource_pb2_grpc.ResourceMonitorServicer):  # type: ignore[misc]
    def __init__(self, project: str, stack: str) -> None:
        self.project, self.stack = project, stack
        self.plugin: provider_pb2_grpc.ResourceProviderStub | None = None
        self.dry_run = False
        self.registered: list[Registered] = []
        self.logs: list[Logged] = []
        self._chains: dict[str, str] = {}
        self._lock = threading.Lock()

    # Engine
    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append(Logged(request.message, request.urn, request.ephemeral, request.severity))
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.SetRootResourceResponse()

    # ResourceMonitor
    def SupportsFeature(self, request: Any, context: Any) -> Any:
        return resource_pb2.SupportsFeatureResponse(hasSupport=request.id in FEATURES)

    def _urn(self, type_: str, name: str, parent: str) -> str:
        chain = f"{self._chains[parent]}${type_}" if parent in self._chains else type_
        urn = f"urn:pulumi:{self.stack}::{self.project}::{chain}::{name}"
        with self._lock:
            self._chains[urn] = chain
        return urn

    def RegisterResource(self, request: Any, context: Any) -> Any:
        from google.protobuf import json_format

        urn = self._urn(request.type, request.name, request.parent)
        entry = Registered(
            request.type, request.name, request.custom, urn, request.parent, json_format.MessageToDict(request.object)
        )
        outputs = request.object
        if request.custom and request.type.startswith("imm:index:") and self.plugin is not None:
            check = provider_pb2.CheckRequest(urn=urn, olds=struct_pb2.Struct(), news=request.object)
            checked = self.plugin.Check(check)
            if checked.failures:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(f.reason for f in checked.failures))
            created = self.plugin.Create(
                provider_pb2.CreateRequest(urn=urn, properties=checked.inputs, preview=self.dry_run, timeout=300)
            )
            entry.id, outputs = created.id, created.properties
        elif request.custom:
            entry.id = "" if self.dry_run else f"{request.name}-id"
        entry.outputs = json_format.MessageToDict(outputs)
        with self._lock:
            self.registered.append(entry)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=entry.id, object=outputs)

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")

    def RegisterResourceOutputs(self, request: Any, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()


def start(project: str, stack: str) -> tuple[grpc.Server, FakeEngine, str]:
    engine = FakeEngine(project, stack)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))  # the engine serves each call in a goroutine
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    resource_pb2_grpc.add_ResourceMonitorServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, engine, f"127.0.0.1:{port}"
