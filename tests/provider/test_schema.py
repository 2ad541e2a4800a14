"""The schema the plugin's GetSchema returns: valid against Pulumi's package metaschema, secrets marked, and the
same defaults, replacement rules and inputs as the Python path (the CRUD core and FaceClusteringArgs).

``data/pulumi-package-metaschema.json`` is pulumi/pulumi's ``pkg/codegen/schema/pulumi.json`` (Apache-2.0),
the document the engine and `pulumi package` validate schemas with; see ``data/README.md``."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from imm_faces.components import args
from imm_faces.components.providers.component import COMPONENT_TYPE
from imm_faces.components.providers.core import OWNERSHIP, BindingCrud, ClusteringTaskCrud, ProjectCrud
from imm_faces.components.providers.schema import BY_TOKEN
from imm_faces.runtime.models.base import camel_name as camel
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.rules import DEFAULT_SERVICE_ROLE

METASCHEMA_VARIABLE = "IMM_FACES_PULUMI_METASCHEMA"
"""Path to Pulumi's package metaschema (``pkg/codegen/schema/pulumi.json`` of pulumi/pulumi, Apache-2.0). It
ships in no Python package and is not copied into this repository: the check uses this variable, else the copy
in the Go module cache that building the Pulumi CLI from its modules leaves (``pkg/v3@<version>``)."""


def metaschema_path() -> Path | None:
    if given := os.environ.get(METASCHEMA_VARIABLE):
        return Path(given)
    cache = os.environ.get("GOMODCACHE") or str(Path(os.environ.get("GOPATH") or Path.home() / "go") / "pkg" / "mod")
    found = sorted(Path(cache).glob("github.com/pulumi/pulumi/pkg/v3@v3.*/codegen/schema/pulumi.json"))
    return found[-1] if found else None


@pytest.fixture
def schema(plugin: provider_pb2_grpc.ResourceProviderStub) -> dict[str, Any]:
    return json.loads(plugin.GetSchema(provider_pb2.GetSchemaRequest(version=0)).schema)  # type: ignore[no-any-return]


def validator() -> jsonschema.Draft202012Validator:
    path = metaschema_path()
    if path is None:
        pytest.skip(
            f"no Pulumi metaschema: set {METASCHEMA_VARIABLE} to a copy of pkg/codegen/schema/pulumi.json, "
            "or build the Pulumi CLI from its Go modules, which leaves one"
        )
    # The metaschema's patterns name groups the ECMAScript/Go way, (?<name>...); Python's re spells it (?P<name>...).
    meta = json.loads(Path(path).read_text(encoding="utf-8").replace("(?<", "(?P<"))
    jsonschema.Draft202012Validator.check_schema(meta)
    return jsonschema.Draft202012Validator(meta)


def test_schema_validates_against_pulumis_metaschema(schema: dict[str, Any]) -> None:
    errors = [f"{e.json_path}: {e.message[:200]}" for e in validator().iter_errors(schema)]
    assert errors == []
    broken = copy.deepcopy(schema)  # the check is live: a wrong type or token is caught
    broken["resources"]["imm:index:Project"]["inputProperties"]["projectName"]["type"] = "text"
    broken["resources"]["imm-Project"] = broken["resources"]["imm:index:Project"]
    assert len(list(validator().iter_errors(broken))) >= 2
    assert sorted(schema["resources"]) == sorted([*BY_TOKEN, COMPONENT_TYPE])


def test_credentials_are_secret_and_config_mirrors_alicloud(schema: dict[str, Any]) -> None:
    variables = schema["config"]["variables"]
    assert set(variables) == {"region", "accessKey", "secretKey", "securityToken", "profile", "endpoint"}
    assert {k for k, v in variables.items() if v.get("secret")} == {"accessKey", "secretKey", "securityToken"}
    assert schema["provider"]["inputProperties"] == variables
    assert all(v["description"] for v in variables.values())


def test_same_defaults_and_rules_as_the_python_path(schema: dict[str, Any]) -> None:
    resources = schema["resources"]
    project = resources["imm:index:Project"]["inputProperties"]
    assert project["serviceRole"]["default"] == DEFAULT_SERVICE_ROLE == ProjectCrud.defaults["service_role"]
    binding = resources["imm:index:Binding"]["inputProperties"]
    assert binding["scanTimeout"]["default"] == args.DEFAULT_SCAN_TIMEOUT == BindingCrud.defaults["scan_timeout"]
    task = resources["imm:index:FigureClusteringTask"]["inputProperties"]
    assert task["timeout"]["default"] == args.DEFAULT_TASK_TIMEOUT == ClusteringTaskCrud.defaults["timeout"]
    for token, spec in BY_TOKEN.items():
        resource = resources[token]
        inputs = resource["inputProperties"]
        replacing = {k for k, v in inputs.items() if v.get("willReplaceOnChanges")}
        assert replacing == {camel(k) for k in spec.crud.replace_on}, token
        # every property the core reads is an input the plugin accepts
        used = {*spec.crud.replace_on, *spec.crud.update_on, *spec.crud.defaults, *spec.crud.validators}
        if token != "imm:index:FigureClusteringTask":
            used |= set(OWNERSHIP)
        assert {camel(k) for k in used} <= set(inputs), token
        assert set(resource["requiredInputs"]) <= set(inputs)
        assert set(resource["required"]) <= set(resource["properties"])
        assert f"pulumi import {token} " in resource["description"]
        assert all(p.get("description") for p in resource["properties"].values()), token
    assert resources["imm:index:Dataset"]["requiredInputs"] == ["projectName", "datasetName"]
    assert resources["imm:index:FigureClusteringTask"]["requiredInputs"] == ["projectName", "datasetName"]
    assert project["projectMaxDatasetCount"]["type"] == "integer"  # from the request model's field type


def test_component_schema_is_face_clustering_args_and_the_outputs_contract(schema: dict[str, Any]) -> None:
    component = schema["resources"][COMPONENT_TYPE]
    assert component["isComponent"] is True and component["requiredInputs"] == ["region"]
    fields = args.FaceClusteringArgs.__dataclass_fields__
    assert set(component["inputProperties"]) == {camel(f) for f in fields}
    inputs = component["inputProperties"]
    assert inputs["clusteringTimeout"]["default"] == args.DEFAULT_TASK_TIMEOUT
    assert inputs["scanTimeout"]["default"] == args.DEFAULT_SCAN_TIMEOUT
    assert inputs["adoptExisting"]["default"] is False and "already exists" in inputs["adoptExisting"]["description"]
    assert inputs["ossLocations"]["type"] == "array" and inputs["quotas"]["additionalProperties"]["type"] == "integer"
    assert set(component["properties"]) == {camel(f) for f in StackOutputs.model_fields}
    assert component["required"] == ["projectName", "datasetName", "region"]
    # plain at every level: a generated SDK takes no Output for them (FaceClustering validates them first)
    assert all(spec.get("plain") is True for spec in inputs.values())
    assert inputs["ossLocations"]["items"]["plain"] is True and inputs["quotas"]["additionalProperties"]["plain"]
    assert not any("plain" in spec for spec in component["properties"].values())


def test_every_sdk_language_is_described(schema: dict[str, Any]) -> None:
    """The README offers TypeScript, Python, Go and C#: each generated SDK gets its name here; Go's import path
    is under the repository (Pulumi's default would be github.com/pulumi/pulumi-imm/sdk/...); no download URL
    (the plugin is installed from a checkout or with pip, never downloaded by the engine)."""
    languages = schema["language"]
    assert set(languages) == {"nodejs", "python", "go", "csharp"}
    assert languages["nodejs"]["packageName"] == "@imm-faces/imm" and languages["python"]["packageName"] == "pulumi_imm"
    repository = schema["repository"]
    assert repository.startswith("https://github.com/")
    assert languages["go"]["importBasePath"].startswith(repository.removeprefix("https://") + "/sdk/go/")
    assert languages["csharp"]["rootNamespace"] and "pluginDownloadURL" not in schema
