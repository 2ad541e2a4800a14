"""The ``imm`` package schema (what the plugin's GetSchema returns), built from the CRUD core's tables.

Which inputs replace the object (``willReplaceOnChanges``), the defaults, the IMM settings (straight from the
operation request models) and the identity that ids are made of all come from
:mod:`imm_faces.components.providers.core`; this module adds only names (camelCase, as in every Pulumi
package), types and descriptions. Property names map to the core's snake_case with :func:`camel`/:func:`snake`.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo

from imm_faces.components.providers.core import (
    DATASET_SETTINGS,
    OWNER_TAG,
    PROJECT_SETTINGS,
    BindingCrud,
    ClusteringTaskCrud,
    DatasetCrud,
    ImmCrud,
    ProjectCrud,
)
from imm_faces.runtime.credentials import SETTINGS
from imm_faces.runtime.models.base import camel_name as camel
from imm_faces.runtime.operations import datasets, projects
from imm_faces.runtime.rules import NAME_RULE, OSS_URI_RULE, QUOTAS

PACKAGE = "imm"
REPOSITORY = "https://github.com/your-org/imm-faces"
"""Where the sources are (the README's install lines name the same placeholder: set it where you publish)."""
LANGUAGES: Mapping[str, Any] = {
    "nodejs": {
        "packageName": "@imm-faces/imm",
        "packageDescription": "Alibaba Cloud IMM face clustering (imm-faces)",
        "respectSchemaVersion": True,
    },
    "python": {"packageName": "pulumi_imm", "pyproject": {"enabled": True}, "respectSchemaVersion": True},
    "go": {
        "importBasePath": "github.com/your-org/imm-faces/sdk/go/imm",
        "generateResourceContainerTypes": True,
        "respectSchemaVersion": True,
    },
    "csharp": {"rootNamespace": "ImmFaces", "packageReferences": {"Pulumi": "3.*"}, "respectSchemaVersion": True},
}
"""The generated SDKs' names (`pulumi package add` / `gen-sdk`): the npm package, the Python package, the Go import
path (under the repository, not Pulumi's default ``github.com/pulumi/pulumi-imm``) and the .NET namespace
(``ImmFaces.Imm``), each versioned as the plugin (``respectSchemaVersion``: else a generated package.json says
``${VERSION}``). No ``pluginDownloadURL``: the plugin is installed from a checkout or a pip install (README)."""


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


@dataclass(frozen=True)
class Prop:
    """One property: its schema type (``string``, ``integer``, ``number``, ``boolean``, ``map``) and meaning."""

    name: str
    type: str
    description: str
    secret: bool = False

    def spec(self, default: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"type": "object", "additionalProperties": {"type": "string"}}
            if self.type == "map"
            else {"type": self.type}
        )
        out["description"] = self.description
        if default is not None and self.type in ("string", "integer", "number", "boolean"):
            out["default"] = default
        if self.secret:
            out["secret"] = True
        return out


WHERE = (
    Prop("region", "string", "The IMM region, e.g. `cn-hangzhou`. Defaults to the provider's `region`."),
    Prop(
        "endpoint",
        "string",
        "A custom IMM endpoint URL (e.g. a local emulator's). Defaults to the provider's "
        "`endpoint`; unset for the cloud.",
    ),
)
OWNED = (
    Prop(
        "adopt",
        "boolean",
        "Take over an object of this name that already exists (otherwise creating it fails, "
        "naming it, and leaves it untouched). An adopted object must be compatible (a project with the same "
        "`serviceRole`, a dataset with the same `templateId`); it is brought to these settings.",
    ),
    Prop("delete_adopted", "boolean", "Delete an adopted object when this resource is deleted (it is kept otherwise)."),
)
REPORTED = (
    Prop("create_time", "string", "When IMM created the object (RFC 3339)."),
    Prop("update_time", "string", "When IMM last changed the object (RFC 3339)."),
)
ADOPTED = Prop("adopted", "boolean", "Whether the object existed before and was taken over (`adopt`).")
NAME = f"IMM's rule: {NAME_RULE}."


PRIMITIVES: Mapping[Any, str] = {int: "integer", str: "string", bool: "boolean", float: "number"}


def _primitive(annotation: Any) -> str:
    """The schema type of an optional request-model field (``int | None``, ``Annotated[str, ...] | None``)."""
    for arg in typing.get_args(annotation) or (annotation,):
        base = typing.get_args(arg)[0] if typing.get_origin(arg) is typing.Annotated else arg
        if base in PRIMITIVES:
            return PRIMITIVES[base]
    raise TypeError(f"no schema type for {annotation!r}")


def settings_props(names: Sequence[str], fields: Mapping[str, FieldInfo], described: Mapping[str, str]) -> list[Prop]:
    """The IMM settings of a request model as properties; quotas say their range and IMM's default."""
    out = []
    for name in names:
        field = fields[name]
        alias = field.alias or pascal(name)
        if alias in QUOTAS:
            low, high, default = QUOTAS[alias]
            text = f"IMM quota `{alias}`: {low} to {high}; IMM's default is {default}."
        else:
            text = described.get(name, f"IMM's `{alias}`.")
        out.append(Prop(name, _primitive(field.annotation), text))
    return out


@dataclass(frozen=True)
class ResourceSpec:
    token: str
    crud: type[ImmCrud]
    description: str
    inputs: tuple[Prop, ...]
    outputs: tuple[Prop, ...]
    """Outputs that are not inputs."""
    import_example: str
    also_required: tuple[str, ...] = ()

    @property
    def required_inputs(self) -> list[str]:
        """The identity an id is made of (what IMM names the object by), and what else the resource needs."""
        return [p for p in (*self.crud.id_parts, *self.also_required) if p in self.input_names()]

    def input_names(self) -> set[str]:
        return {p.name for p in self.inputs}

    def to_schema(self) -> dict[str, Any]:
        defaults = self.crud.defaults
        inputs: dict[str, Any] = {}
        for prop in self.inputs:
            spec = prop.spec(defaults.get(prop.name))
            if prop.name in self.crud.replace_on:
                spec["willReplaceOnChanges"] = True
            inputs[camel(prop.name)] = spec
        outputs = {**inputs, **{camel(p.name): p.spec() for p in self.outputs}}
        required = [*self.required_inputs, "region"]
        description = (
            f"{self.description}\n\n## Import\n\nAn existing object is imported by its id:\n\n"
            f"```sh\n$ pulumi import {self.token} <resource name> {self.import_example}\n```\n"
        )
        return {
            "description": description,
            "inputProperties": inputs,
            "requiredInputs": [camel(p) for p in self.required_inputs],
            "properties": outputs,
            "required": sorted(camel(p) for p in required),
        }


_DESCRIBED = {
    "service_role": "The RAM role IMM assumes to read the bound OSS locations (default `AliyunIMMDefaultRole`, "
    "which must already exist in the account: IMM's console creates it when IMM is authorized).",
    "description": "A description (at most 256 characters).",
    "template_id": "The IMM workflow template applied to indexed files.",
}

RESOURCES = (
    ResourceSpec(
        f"{PACKAGE}:index:Project",
        ProjectCrud,
        "An IMM project (2020-09-30 API). Creating one that already exists fails unless `adopt` is set.",
        (
            *WHERE,
            Prop("project_name", "string", f"The project's name (unique in the region). {NAME}"),
            *settings_props(PROJECT_SETTINGS, projects.UpdateProjectRequest.model_fields, _DESCRIBED),
            Prop("tags", "map", "Tags on the project."),
            *OWNED,
        ),
        (*REPORTED, ADOPTED),
        "<project>",
    ),
    ResourceSpec(
        f"{PACKAGE}:index:Dataset",
        DatasetCrud,
        "An IMM dataset in a project: where indexed photos and figure clusters live.",
        (
            *WHERE,
            Prop("project_name", "string", f"The project. {NAME}"),
            Prop("dataset_name", "string", f"The dataset's name (unique in the project). {NAME}"),
            *settings_props(DATASET_SETTINGS, datasets.UpdateDatasetRequest.model_fields, _DESCRIBED),
            *OWNED,
        ),
        (*REPORTED, ADOPTED),
        "<project>/<dataset>",
    ),
    ResourceSpec(
        f"{PACKAGE}:index:Binding",
        BindingCrud,
        "Binds an OSS location to a dataset: IMM indexes what is there and what arrives. Creating it waits until "
        "IMM's first full scan of the location has finished (`scanTimeout`); a scan that fails or times out "
        "fails the deployment and the binding is deleted again. Any change replaces it.",
        (
            *WHERE,
            Prop("project_name", "string", f"The project. {NAME}"),
            Prop("dataset_name", "string", f"The dataset. {NAME}"),
            Prop("uri", "string", f"The OSS location: {OSS_URI_RULE}."),
            Prop("scan_timeout", "number", "Seconds to wait for the first full scan."),
            *OWNED,
            Prop(
                "unindex_on_delete",
                "boolean",
                "When this binding is deleted, also remove from the dataset the "
                "files it indexed (under its location, indexed after it was created, under no other binding); "
                "IMM's DeleteBinding keeps them. For a dataset the stack adopted and keeps (FaceClustering sets it "
                "then), so that the dataset is left holding what it held before.",
            ),
        ),
        (
            *REPORTED,
            Prop("state", "string", "IMM's binding State (Ready, Stopped, Failed...)."),
            Prop("phase", "string", "IMM's binding Phase (FullScanning, IncrementalScanning)."),
            ADOPTED,
        ),
        "<project>/<dataset>/<oss uri>",
    ),
    ResourceSpec(
        f"{PACKAGE}:index:FigureClusteringTask",
        ClusteringTaskCrud,
        "One figure (face) clustering run over a dataset, waited for at deployment; a Failed task fails it with "
        f"IMM's Code and Message. The task is tagged `{OWNER_TAG}` with a digest of its owner and inputs: a run "
        "that outlasted `timeout` is recorded as partially created and the next `up` waits for the same task. "
        "Change `triggers` to run it again. Deleting it deletes nothing (the clusters belong to the dataset).",
        (
            *WHERE,
            Prop("project_name", "string", f"The project. {NAME}"),
            Prop("dataset_name", "string", f"The dataset to cluster. {NAME}"),
            Prop("triggers", "map", "Arbitrary values; a change runs the task again. Also set as the task's tags."),
            Prop("notification_topic", "string", "An MNS topic IMM notifies when the task ends."),
            Prop("timeout", "number", "Seconds to wait for the task."),
            Prop("poll_interval", "number", "Seconds between two GetTask calls while waiting."),
            Prop(
                "owner",
                "string",
                "Who runs the task, part of its tag. Defaults to `<project>/<stack>/<resource "
                "name>`, so two stacks never wait on each other's tasks.",
            ),
        ),
        (
            Prop("task_id", "string", "IMM's TaskId."),
            Prop("status", "string", "The task's status (Succeeded...)."),
            Prop("start_time", "string", "When the task started."),
            Prop("end_time", "string", "When it ended."),
        ),
        "<project>/<TaskId>",
        also_required=("dataset_name",),
    ),
)
BY_TOKEN = {r.token: r for r in RESOURCES}

CONFIG = (
    Prop(
        "region",
        "string",
        "The IMM region, e.g. `cn-hangzhou` (as `alicloud:region`). Falls back to "
        + ", then ".join(f"`{name}`" for name in SETTINGS["region"].env)
        + ".",
    ),
    Prop(
        "access_key",
        "string",
        "The AccessKey ID (as `alicloud:accessKey`). Unset: the credential chain "
        "(`ALIBABA_CLOUD_ACCESS_KEY_ID`..., `ALICLOUD_ACCESS_KEY`..., `~/.aliyun/config.json`).",
        secret=True,
    ),
    Prop("secret_key", "string", "The AccessKey secret (as `alicloud:secretKey`).", secret=True),
    Prop("security_token", "string", "An STS security token (as `alicloud:securityToken`).", secret=True),
    Prop("profile", "string", "The aliyun CLI profile to read from `~/.aliyun/config.json` (as `alicloud:profile`)."),
    Prop("endpoint", "string", "A custom IMM endpoint URL, e.g. a local emulator's `http://127.0.0.1:8000`."),
)


def package_schema(version: str) -> dict[str, Any]:
    config = {camel(p.name): p.spec() for p in CONFIG}
    return {
        "name": PACKAGE,
        "displayName": "Alibaba Cloud IMM (face clustering)",
        "version": version,
        "description": "Alibaba Cloud Intelligent Media Management (2020-09-30 API): projects, datasets, OSS "
        "bindings and figure clustering tasks, from imm-faces.",
        "keywords": ["pulumi", "alicloud", "imm", "category/cloud"],
        "license": "Apache-2.0",
        "config": {"variables": config},
        "provider": {
            "description": "The imm provider: where IMM is and whose credentials to use.",
            "inputProperties": config,
            "properties": config,
        },
        "resources": {r.token: r.to_schema() for r in RESOURCES},
        "repository": REPOSITORY,
        "language": LANGUAGES,
    }
