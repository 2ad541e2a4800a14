"""One plugin process for the provider tests, started as the engine starts an executable plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pulumi.runtime.proto import provider_pb2_grpc

from tests.engine.conftest import engine_emulator, imm, keys, workspace  # noqa: F401  (the real-engine tests')
from tests.provider.engine import launched, plugin_command


@pytest.fixture(scope="session")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    with launched(plugin_command("executable"), tmp_path_factory.mktemp("home")) as stub:
        yield stub
