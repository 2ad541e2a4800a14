"""``FaceClusteringArgs``: what a stack says about its face-clustering environment, validated before anything
is registered. Every rule comes from :mod:`imm_faces.runtime.rules` (IMM's names, limits, URIs and regions); a
violation raises :class:`ArgsError` naming the field and the rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.rules import (
    ACCOUNT_ID_PATTERN,
    MNS_TOPIC_NAME_PATTERN,
    MNS_TOPIC_RULE,
    QUOTAS,
    RAM_POLICY_NAME_PATTERN,
    RAM_POLICY_RULE,
    RAM_ROLE_NAME_PATTERN,
    RAM_ROLE_RULE,
    check_description,
    check_name,
    check_oss_uri,
    check_quota,
    check_region,
    check_seconds,
    split_oss_uri,
)

RAM_ROLE_NAME = re.compile(RAM_ROLE_NAME_PATTERN)
RAM_POLICY_NAME = re.compile(RAM_POLICY_NAME_PATTERN)
MNS_TOPIC_NAME = re.compile(MNS_TOPIC_NAME_PATTERN)
ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)
ENDPOINT = re.compile(r"^https?://[^\s/]+(/.*)?$")
PROJECT_QUOTAS = ("ProjectMaxDatasetCount",)
DATASET_QUOTAS = tuple(q for q in QUOTAS if q.startswith("Dataset"))
DEFAULT_TASK_TIMEOUT = 1800.0
DEFAULT_SCAN_TIMEOUT = 3600.0
NAME_HASH_LENGTH = 8


class ArgsError(ConfigError, ValueError):
    """A FaceClustering argument breaks a rule. ``field`` names the argument."""

    def __init__(self, field_name: str, rule: str) -> None:
        super().__init__(f"FaceClusteringArgs.{field_name}: {rule}")
        self.field = field_name
        self.rule = rule


@dataclass(frozen=True)
class NameScope:
    """Where default physical names come from: the Pulumi project and stack the component is deployed in.

    Default names are ``<project>-<stack>-<component>-<suffix>``, so two stacks (or two Pulumi projects) in
    one account never pick the same IMM project, dataset, RAM role or policy name.
    """

    project: str
    stack: str


def derived_name(component: str, suffix: str, *, scope: NameScope | None = None, limit: int = 128) -> str:
    """An IMM/RAM-safe default name: ``[<project>-<stack>-]<component>-<suffix>``, other characters as '-'.

    A name longer than ``limit`` keeps its start and ends with a hash of the whole name, so two long names
    that differ only at the end still differ.
    """
    parts = [scope.project, scope.stack, component] if scope else [component]
    base = "-".join(p for p in (re.sub(r"[^A-Za-z0-9-]+", "-", part).strip("-") for part in parts) if p) or "faces"
    if not base[0].isalpha():
        base = "f-" + base
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:NAME_HASH_LENGTH]
    return f"{name[: limit - NAME_HASH_LENGTH - 1].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class FaceClusteringArgs:
    """Arguments of :class:`components.FaceClustering`. Only ``region`` is required."""

    region: str
    """IMM region, e.g. ``cn-hangzhou``."""
    project_name: str | None = None
    """IMM project name (default: ``<pulumi project>-<stack>-<component>-project``). Changing it replaces the
    project."""
    dataset_name: str | None = None
    """Dataset name (default: ``<pulumi project>-<stack>-<component>-faces``). Changing it replaces it."""
    role_name: str | None = None
    """Name of the RAM role created for IMM (default: ``<pulumi project>-<stack>-<component>-imm-role``)."""
    policy_name: str | None = None
    """Name of the RAM policy created for that role (default: ``...-<component>-imm-policy``)."""
    adopt_existing: bool = False
    """Take over an IMM project, dataset or binding of the same name that already exists (created outside this
    stack). Off by default: creating an object that exists fails and says so. An adopted object is kept when
    the stack is destroyed unless ``delete_adopted``."""
    delete_adopted: bool = False
    """Delete adopted objects too when the stack is destroyed (or the resource replaced)."""
    description: str | None = None
    """Description of the project and the dataset."""
    template_id: str | None = None
    """An IMM workflow template for the project and the dataset."""
    quotas: Mapping[str, int] = field(default_factory=dict)
    """IMM quota parameters by their API name: ``ProjectMaxDatasetCount`` goes to the project, the
    ``Dataset*`` ones to the dataset."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the IMM project."""
    oss_locations: Sequence[str] = ()
    """``oss://bucket[/prefix]`` locations to bind to the dataset (IMM indexes what they hold)."""
    role_locations: Sequence[str] = ()
    """More ``oss://`` locations the created role may read: those of datasets other components add to this
    project (``manage_project=False``)."""
    notification_topic: str | None = None
    """An MNS topic that receives the clustering task's result."""
    service_role: str | None = None
    """An existing RAM role for IMM to assume; when set, no role or policy is created."""
    account_id: str | None = None
    """The Alibaba Cloud account id, to name the MNS topic exactly in the role policy (default ``*``)."""
    manage_project: bool = True
    """False to add a dataset to a project another component owns (no project, role or policy is created)."""
    run_clustering: bool = True
    """Run a figure clustering task after the bindings are created."""
    create_checker_policy: bool = False
    """Also create the read-only RAM policy ``imm-faces verify`` needs on this dataset (``checker_policy_name``),
    to attach to the identity that runs the smoke check. Its document is exported either way."""
    checker_policy_name: str | None = None
    """Name of that policy (default: ``<pulumi project>-<stack>-<component>-imm-checker``)."""
    clustering_timeout: float = DEFAULT_TASK_TIMEOUT
    """Seconds the deployment waits for the clustering task."""
    scan_timeout: float = DEFAULT_SCAN_TIMEOUT
    """Seconds each binding waits for IMM's first full scan of its location (the clustering task runs after
    it, on what was indexed)."""
    clustering_triggers: Mapping[str, str] = field(default_factory=dict)
    """Any change to these values runs the clustering task again (e.g. ``{"photos": "2026-11-24"}``)."""
    endpoint: str | None = None
    """An IMM endpoint URL to use instead of the region's (the local emulator's)."""

    def resolved(self, component: str, scope: NameScope | None = None) -> ResolvedArgs:
        """Validate every field; fill the defaults that depend on the component's name and ``scope``."""
        return resolve(self, component, scope)

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> FaceClusteringArgs:
        """Build from a mapping keyed by field name (unknown keys are an error naming the key)."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ArgsError(key, f"unknown argument; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class ResolvedArgs(FaceClusteringArgs):
    """The arguments validated, with the defaults that depend on the component filled in: every name is set
    (given or derived), ``account_id`` is ``*`` when not given, ``role_locations`` leaves out what
    ``oss_locations`` binds, and the collections are plain tuples and dicts. Only the fields whose type narrows
    are declared again; the rest, with their documentation, are :class:`FaceClusteringArgs`'."""

    project_name: str
    dataset_name: str
    role_name: str
    policy_name: str
    checker_policy_name: str
    account_id: str

    @property
    def target(self) -> dict[str, Any]:
        """The inputs every IMM resource of the component shares: where IMM answers."""
        return {"region": self.region, "endpoint": self.endpoint}

    @property
    def ownership(self) -> dict[str, Any]:
        """The inputs of the objects an existing one of the same name may stand for (project, dataset, binding)."""
        return {"adopt": self.adopt_existing, "delete_adopted": self.delete_adopted}

    @property
    def read_locations(self) -> list[str]:
        """Where the dataset's files are read from: the bound locations and the others IMM may read."""
        return [*self.oss_locations, *self.role_locations]

    @property
    def project_quotas(self) -> dict[str, int]:
        """The quotas that go to the IMM project."""
        return {quota: limit for quota, limit in self.quotas.items() if quota in PROJECT_QUOTAS}

    @property
    def dataset_quotas(self) -> dict[str, int]:
        """The quotas that go to the dataset."""
        return {quota: limit for quota, limit in self.quotas.items() if quota in DATASET_QUOTAS}


def _check(field_name: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ArgsError(field_name, str(exc)) from None


def _require(field_name: str, ok: bool, rule: str) -> None:
    if not ok:
        raise ArgsError(field_name, rule)


def resolve(args: FaceClusteringArgs, component: str, scope: NameScope | None = None) -> ResolvedArgs:
    """The validation and defaulting behind :meth:`FaceClusteringArgs.resolved` (pure)."""
    _require("region", isinstance(args.region, str), "must be a string")
    region = _check("region", check_region, args.region)
    project = _check("project_name", check_name, args.project_name or derived_name(component, "project", scope=scope))
    dataset = _check("dataset_name", check_name, args.dataset_name or derived_name(component, "faces", scope=scope))
    if args.description is not None:
        _check("description", check_description, args.description)
    _check_quotas(args)
    _check_tags(args)
    locations = _locations(args)
    _check_roles(args)
    for name in ("clustering_timeout", "scan_timeout"):
        _check(name, check_seconds, getattr(args, name))
    role_name, policy_name, checker_name = _ram_names(args, component, scope)
    _check_switches(args)
    filled: dict[str, Any] = {
        "region": region,
        "project_name": project,
        "dataset_name": dataset,
        "role_name": role_name,
        "policy_name": policy_name,
        "checker_policy_name": checker_name,
        "account_id": args.account_id or "*",
        "quotas": dict(args.quotas),
        "tags": dict(args.tags),
        "oss_locations": locations,
        "role_locations": tuple(u for u in args.role_locations if u not in locations),
        "clustering_timeout": float(args.clustering_timeout),
        "scan_timeout": float(args.scan_timeout),
        "clustering_triggers": dict(args.clustering_triggers),
    }
    given = {f.name: getattr(args, f.name) for f in fields(FaceClusteringArgs) if f.name not in filled}
    return ResolvedArgs(**given, **filled)


def _check_quotas(args: FaceClusteringArgs) -> None:
    """Each quota is IMM's and within IMM's range."""
    for quota, limit in args.quotas.items():
        _require(f"quotas[{quota!r}]", quota in QUOTAS, f"not an IMM quota; known: {', '.join(QUOTAS)}")
        _require(f"quotas[{quota!r}]", isinstance(limit, int) and not isinstance(limit, bool), "must be an integer")
        _check(f"quotas[{quota!r}]", partial(check_quota, quota), limit)


def _check_tags(args: FaceClusteringArgs) -> None:
    for key, value in args.tags.items():
        rule = f"keys (1-128 characters) and values must be strings; got {key!r}: {value!r}"
        _require("tags", isinstance(key, str) and isinstance(value, str) and 0 < len(key) <= 128, rule)
    for key, value in args.clustering_triggers.items():
        rule = f"keys and values must be strings; got {key!r}: {value!r}"
        _require("clustering_triggers", isinstance(key, str) and isinstance(value, str), rule)


def _locations(args: FaceClusteringArgs) -> tuple[str, ...]:
    """The OSS locations to bind (each once, at most the dataset's bind count); the role's extra ones checked."""
    locations = tuple(args.oss_locations)
    for i, uri in enumerate(locations):
        _check(f"oss_locations[{i}]", check_oss_uri, uri)
        _require(f"oss_locations[{i}]", uri not in locations[:i], f"{uri} is listed twice")
    for i, uri in enumerate(args.role_locations):
        _check(f"role_locations[{i}]", check_oss_uri, uri)
    max_bind = args.quotas.get("DatasetMaxBindCount", QUOTAS["DatasetMaxBindCount"][2])
    rule = f"at most DatasetMaxBindCount={max_bind} locations; got {len(locations)}"
    _require("oss_locations", len(locations) <= max_bind, rule)
    return locations


def _check_roles(args: FaceClusteringArgs) -> None:
    """The given service role, account, MNS topic and endpoint."""
    if args.notification_topic is not None:
        rule = f"must be {MNS_TOPIC_RULE}; got {args.notification_topic!r}"
        _require("notification_topic", bool(MNS_TOPIC_NAME.fullmatch(args.notification_topic)), rule)
    if args.service_role is not None:
        rule = f"must be {RAM_ROLE_RULE}; got {args.service_role!r}"
        _require("service_role", bool(RAM_ROLE_NAME.fullmatch(args.service_role)), rule)
    if args.account_id is not None:
        _require(
            "account_id",
            bool(ACCOUNT_ID.fullmatch(args.account_id)),
            f"must be 1-32 ASCII digits; got {args.account_id!r}",
        )
    if args.endpoint is not None:
        _require("endpoint", bool(ENDPOINT.match(args.endpoint)), f"must be an http(s) URL; got {args.endpoint!r}")


def _ram_names(args: FaceClusteringArgs, component: str, scope: NameScope | None) -> tuple[str, str, str]:
    """(role name, policy name, checker policy name): given or derived, each checked against RAM's rule."""
    role_name = args.role_name or derived_name(component, "imm-role", scope=scope, limit=64)
    policy_name = args.policy_name or derived_name(component, "imm-policy", scope=scope, limit=128)
    _require("role_name", bool(RAM_ROLE_NAME.fullmatch(role_name)), f"must be {RAM_ROLE_RULE}; got {role_name!r}")
    checker_name = args.checker_policy_name or derived_name(component, "imm-checker", scope=scope, limit=128)
    for name, value in (("policy_name", policy_name), ("checker_policy_name", checker_name)):
        _require(name, bool(RAM_POLICY_NAME.fullmatch(value)), f"must be {RAM_POLICY_RULE}; got {value!r}")
    return role_name, policy_name, checker_name


def _check_switches(args: FaceClusteringArgs) -> None:
    for name in ("adopt_existing", "delete_adopted", "manage_project", "run_clustering", "create_checker_policy"):
        _require(name, isinstance(getattr(args, name), bool), f"must be true or false; got {getattr(args, name)!r}")
    if not args.manage_project:
        rule = "only a managed project has a service role (manage_project=False)"
        _require("service_role", args.service_role is None, rule)


def oss_resources(uri: str) -> tuple[str, str, str]:
    """(bucket ARN, object ARN pattern, listing prefix) of one bound location."""
    bucket, prefix = split_oss_uri(uri)
    return f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/{prefix}*", prefix
