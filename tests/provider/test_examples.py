"""The YAML example (provider/examples/yaml/Pulumi.yaml) deployed through the plugin against the emulator, its
resources fed to the plugin as the engine does for the YAML runtime: in dependency order, each `${...}`
resolved from the outputs before it, then Check and Create. Its outputs must satisfy the stack-outputs
contract `imm-faces verify` reads.

Not exercised (no Pulumi CLI here): the YAML runtime itself (its parser, type checks against the schema,
`plugins.providers` loading) and the engine's own ordering; ``resolve`` below covers only the forms the example
uses (`${resource.property}`, `${configKey}`, `${pulumi.project}`, `${pulumi.stack}`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import tasks
from imm_faces.runtime.outputs import StackOutputs
from tests.fakes import write_photo
from tests.provider.engine import PLUGIN_DIR, PROJECT, STACK, configure, plain, struct, urn

EXAMPLE = PLUGIN_DIR / "examples" / "yaml" / "Pulumi.yaml"
REFERENCE = re.compile(r"\$\{([^}]+)\}")


def resolve(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(path: str) -> Any:
        head, _, prop = path.partition(".")
        found = scope[head]
        return found[prop] if prop else found

    whole = REFERENCE.fullmatch(value)
    if whole:
        return lookup(whole.group(1))
    return REFERENCE.sub(lambda m: str(lookup(m.group(1))), value)


def depends(spec: dict[str, Any], names: set[str]) -> set[str]:
    text = yaml.safe_dump(spec)
    return {m.group(1).split(".")[0] for m in REFERENCE.finditer(text)} & names


Stub = provider_pb2_grpc.ResourceProviderStub


def test_yaml_example_deploys_through_the_plugin(
    plugin: Stub, emulator: Emulator, client: ImmClient, oss_root: Path
) -> None:
    program = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert program["runtime"] == "yaml" and program["plugins"]["providers"][0]["name"] == "imm"
    assert (EXAMPLE.parent / program["plugins"]["providers"][0]["path"]).resolve() == PLUGIN_DIR
    write_photo(oss_root, "family", "a.png", [{"person": 1}])
    configure(plugin, emulator)  # `pulumi config set imm:region ...` (and the emulator's endpoint and keys)
    scope: dict[str, Any] = {"pulumi": {"project": PROJECT, "stack": STACK}, "ossLocation": "oss://family/"}
    resources: dict[str, Any] = program["resources"]
    pending = dict(resources)
    for _ in range(len(resources)):  # dependency order, as the engine waits for each reference
        ready = [n for n, spec in pending.items() if not depends(spec, set(pending) - {n})]
        assert ready, f"a dependency cycle among {sorted(pending)}"
        for name in ready:
            spec = pending.pop(name)
            assert spec["type"].startswith("imm:index:")
            news = resolve(spec.get("properties", {}), scope)
            request = provider_pb2.CheckRequest(urn=urn(spec["type"], name), olds=struct({}), news=struct(news))
            checked = plugin.Check(request)
            assert list(checked.failures) == [], (name, checked.failures)
            created = plugin.Create(
                provider_pb2.CreateRequest(urn=urn(spec["type"], name), properties=checked.inputs, timeout=300)
            )
            scope[name] = {**plain(created.properties), "id": created.id}
        if not pending:
            break
    outputs = StackOutputs.model_validate(resolve(program["outputs"], scope))
    assert outputs.project_name == "consumer-dev-faces" and outputs.binding_uris == ["oss://family/"]
    task = client.call(
        tasks.GetTask,
        project_name=outputs.project_name,
        task_id=outputs.clustering_task_id or "",
        task_type=tasks.FACE_CLUSTERING,
    )
    assert task.status == "Succeeded"


TS_EXAMPLE = PLUGIN_DIR / "examples" / "typescript" / "index.ts"
TS_NEW = re.compile(r"const (\w+) = new imm\.(\w+)\(\"[^\"]+\", \{")


def top_level_keys(source: str, start: int) -> set[str]:
    """The keys of the object literal that opens just before ``start`` (nested literals skipped)."""
    depth, keys, token = 1, set(), ""
    for char in source[start:]:
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return keys
        elif char == ":" and depth == 1 and token.strip().isidentifier():
            keys.add(token.strip())
        token = "" if char in ",{}[]\n" else token + char
    raise AssertionError("unbalanced object literal")


def test_typescript_example_uses_the_schemas_names(plugin: Stub) -> None:
    """The TypeScript example is not compiled here (its SDK is generated by `pulumi package add`); this checks
    that every argument it passes and every output it reads is a property of the schema the plugin serves."""
    schema = json.loads(plugin.GetSchema(provider_pb2.GetSchemaRequest(version=0)).schema)
    source = TS_EXAMPLE.read_text(encoding="utf-8")
    declared = {m.group(1): f"imm:index:{m.group(2)}" for m in TS_NEW.finditer(source)}
    assert sorted(declared.values()) == sorted(t for t in schema["resources"] if t != "imm:index:FaceClustering")
    for match in TS_NEW.finditer(source):
        resource = schema["resources"][f"imm:index:{match.group(2)}"]
        passed = top_level_keys(source, match.end())
        assert passed <= set(resource["inputProperties"]), (match.group(2), passed)
        assert set(resource["requiredInputs"]) <= passed, match.group(2)
    for variable, prop in re.findall(r"\b(\w+)\.(\w+)\b", source):
        if variable in declared:
            assert prop in schema["resources"][declared[variable]]["properties"], (variable, prop)
