"""The CRUD core of the IMM resources: one implementation behind both the Python dynamic providers
(``project.py``, ``dataset.py``, ``binding.py``, ``clustering_task.py``) and the ``imm`` provider plugin
(``plugin.py``).

Plain Python: inputs and outputs are dicts keyed by snake_case property names, results are small dataclasses,
failures are exceptions (:class:`ProviderError`; :class:`PartialCreateError` when the object exists but its
creation did not finish). No pulumi import: each front end translates to its own protocol.

- Credentials never come from inputs: a core object is made with the credentials its front end resolved
  (``alicloud:*`` stack config for the dynamic providers, the plugin's provider config), or resolves them with
  :func:`imm_faces.runtime.credentials.resolve_provider` when it first calls IMM.
- The engine passes numbers as floats: :func:`as_int` casts before calling IMM.
- The endpoint says how IMM is reached, not which object a resource is: a change of it (public to VPC, a
  trailing '/') is an update that calls nothing in IMM, never a replace (:data:`REACH`).
- Waits (a binding's first full scan, a clustering task) pause through :class:`Pauses`: plain sleeps for the
  dynamic providers; the plugin's report progress to the engine and end with
  :class:`DeploymentCancelledError` when the engine cancels, leaving the object recorded as partially created
  (:class:`PartialCreateError`) for the next `up`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imm_faces.components.args import DEFAULT_SCAN_TIMEOUT, DEFAULT_TASK_TIMEOUT, ENDPOINT
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import CredentialSource, resolve_provider
from imm_faces.runtime.errors import ConfigError, ImmError, ImmFacesError
from imm_faces.runtime.http import explicit_base_url
from imm_faces.runtime.models.base import snake_name
from imm_faces.runtime.operations import bindings, datasets, files, projects, query, tasks
from imm_faces.runtime.operations.base import Operation
from imm_faces.runtime.rules import (
    BATCH_DELETE_MAX_URIS,
    DEFAULT_SERVICE_ROLE,
    QUOTAS,
    check_description,
    check_name,
    check_oss_uri,
    check_region,
    check_seconds,
    split_oss_uri,
)
from imm_faces.runtime.timestamps import parse_rfc3339
from imm_faces.runtime.waiters import (
    BINDING_FAILED_STATES,
    BINDING_FULL_SCAN,
    BindingScanError,
    TaskTimeoutError,
    wait_for_full_scan,
    wait_for_task,
)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How an input not yet known during a preview arrives at the plugin (the value of ``pulumi.runtime.rpc.UNKNOWN``;
a test checks they are the same). The SDK's dynamic-provider host turns it into a ``pulumi.output.Unknown``
instance before check/diff see it (``deserialize_properties(..., keep_unknowns=True)``: seen under the real
engine), which :func:`known` recognises too."""


class ProviderError(Exception):
    """A deployment step failed; the message is what `pulumi up` shows."""


class PartialCreateError(ProviderError):
    """The object exists remotely but its creation did not finish (e.g. a clustering task still running when the
    wait timed out). The plugin records it (``resource_id`` and ``outputs``) as partially created, so the next
    `up` resumes it with an update; the dynamic providers cannot record it and fail like any other error, with
    ``unrecorded`` (what to do when nothing records it) as their message."""

    def __init__(self, message: str, resource_id: str, outputs: Mapping[str, Any], unrecorded: str = "") -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.outputs = dict(outputs)
        self.unrecorded = unrecorded or message


class DeploymentCancelledError(ProviderError):
    """The deployment was cancelled (the engine's Cancel: Ctrl-C in `pulumi up`) while a wait was under way."""


class Pauses:
    """How a wait pauses between two polls (GetBinding, GetTask): plain sleeps. The plugin's pauses also report
    progress to the engine and raise :class:`DeploymentCancelledError` once the engine has cancelled the deployment."""

    def sleeper(self, what: str) -> Callable[[float], None]:
        """The pause function of one wait; ``what`` names what is waited for (progress messages say it)."""
        return time.sleep


def as_int(value: Any) -> Any:
    """The engine turns integers into floats; IMM wants integers back."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def known(value: Any) -> bool:
    """False for what an input not yet known looks like in check/diff during a preview: the plugin's sentinel, or
    the dynamic-provider host's ``pulumi.output.Unknown`` (matched by name: this module never imports pulumi)."""
    kind = type(value)
    return not (kind.__name__ == "Unknown" and kind.__module__ == "pulumi.output") and bool(value != UNKNOWN)


REACH = ("endpoint",)
"""How IMM is reached, not which object a resource is: a change (the public endpoint to the VPC one, a trailing
'/') is recorded by an update that calls nothing in IMM, never a replace. Compared in their normal form."""


def check_endpoint(value: Any) -> None:
    """An endpoint input: an http(s) URL (the component's rule, ``FaceClusteringArgs.endpoint``)."""
    rule = "must be an http(s) URL, e.g. https://imm-vpc.cn-hangzhou.aliyuncs.com"
    if not isinstance(value, str) or not ENDPOINT.match(value):
        raise ValueError(rule)
    try:
        explicit_base_url(value, "endpoint")
    except ConfigError:
        raise ValueError(rule) from None


def normal_endpoint(value: Any) -> Any:
    """An endpoint as the client uses it (scheme and host in lower case, default port and path dropped), so two
    spellings of one endpoint compare equal; unset (None or "") is None."""
    if not value:
        return None
    if not isinstance(value, str) or not known(value):
        return value
    try:
        return explicit_base_url(value, "endpoint")
    except ConfigError:
        return value


def same(key: str, old: Any, new: Any) -> bool:
    return bool(normal_endpoint(old) == normal_endpoint(new)) if key in REACH else bool(old == new)


@dataclass(frozen=True)
class DiffPlan:
    changes: bool
    replaces: list[str]
    delete_before_replace: bool
    changed: list[str] = field(default_factory=list)
    """Every property that changed (the replacing ones included), in declaration order."""


def plan_diff(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    *,
    replace_on: Sequence[str],
    update_on: Sequence[str],
    unique: Sequence[str],
) -> DiffPlan:
    """Which properties changed, which of them force a replacement, and whether the old object must go first
    (it must when the names that are unique remotely stay the same: the new one could not be created). The
    :data:`REACH` properties are never in ``replace_on``: their change is an update."""
    changed = [k for k in (*replace_on, *update_on, *REACH) if not same(k, olds.get(k), news.get(k))]
    replaces = [k for k in replace_on if k in changed]
    same_names = all(olds.get(k) == news.get(k) for k in unique)
    return DiffPlan(bool(changed), replaces, bool(replaces) and same_names, changed)


def settings(props: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The IMM request parameters among ``props`` (unset ones left out; numbers cast back to int)."""
    return {k: as_int(props[k]) for k in names if props.get(k) is not None}


OWNERSHIP = ("adopt", "delete_adopted")
"""Inputs that say who owns a managed object: they change what the stack may do with it, never IMM."""

IMM_DEFAULTS: Mapping[str, Any] = {
    **{snake_name(q): d for q, (_, _, d) in QUOTAS.items()},
    "template_id": "",
    "description": "",
}
"""What IMM reports for a setting nobody set (documented quota defaults; empty text). A setting the stack does
not set and IMM has at its default is not recorded by `pulumi import`, and compares equal to that default."""


def adoption_refused(kind: str, resource_id: str) -> str:
    """What ``pulumi up`` says when the object to create already exists and the stack may not take it over."""
    return (
        f"{kind} {resource_id} already exists and this stack did not create it; it was left untouched. Choose "
        f"another name, or take it over explicitly: FaceClustering's adopt_existing=True (adoptExisting in the "
        f"imm plugin's FaceClustering; adopt on an imm resource). An adopted {kind} is kept when the stack is "
        f"destroyed unless delete_adopted=True."
    )


@dataclass(frozen=True)
class Created:
    id: str
    outs: dict[str, Any]


@dataclass(frozen=True)
class Observed:
    """What a read found: ``id`` is empty when the object is gone; ``inputs`` are the inputs that would
    produce it (what `pulumi import` and refresh record), or None where the front end keeps its own."""

    id: str
    outs: dict[str, Any]
    inputs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Failure:
    property: str
    reason: str


class ImmCrud:
    """Base of the IMM resources' logic. Subclasses set the property tables and implement the CRUD methods."""

    kind: str = ""
    replace_on: tuple[str, ...] = ("region", "project_name")
    update_on: tuple[str, ...] = ()
    unique: tuple[str, ...] = ("project_name",)
    defaults: Mapping[str, Any] = {}
    validators: Mapping[str, Callable[[Any], Any]] = {}
    id_parts: tuple[str, ...] = ()
    """The properties an id is made of, joined by '/' (the last may itself contain '/')."""

    def __init__(
        self,
        credentials: CredentialSource | None = None,
        resolve: Callable[[], CredentialSource] = resolve_provider,
        pauses: Pauses | None = None,
    ) -> None:
        self.credentials = credentials
        self._resolve = resolve
        self.pauses = pauses or Pauses()

    def client(self, props: Mapping[str, Any]) -> ImmClient:
        return ImmClient(
            region=props.get("region"),
            endpoint=props.get("endpoint") or None,
            credentials=self.credentials or self._resolve(),
        )

    def check(self, news: Mapping[str, Any]) -> tuple[dict[str, Any], list[Failure]]:
        inputs = {**self.defaults, **{k: v for k, v in news.items() if v is not None}}
        failures = []
        for prop, validate in {"region": check_region, "endpoint": check_endpoint, **self.validators}.items():
            value = inputs.get(prop)
            if value is None or not known(value):
                continue
            try:
                validate(value)
            except (ValueError, TypeError) as exc:
                failures.append(Failure(prop, str(exc)))
        return inputs, failures

    def diff(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffPlan:
        return plan_diff(olds, news, replace_on=self.replace_on, update_on=self.update_on, unique=self.unique)

    def identity_from_id(self, id_: str) -> dict[str, Any]:
        """The identity properties an id names (how `pulumi import` ids are read)."""
        parts = id_.split("/", len(self.id_parts) - 1)
        if len(parts) != len(self.id_parts) or not all(parts):
            raise ProviderError(f"{self.kind} id {id_!r}: expected {'/'.join(f'<{p}>' for p in self.id_parts)}")
        return dict(zip(self.id_parts, parts, strict=True))

    def import_(self, id_: str, where: Mapping[str, Any]) -> Observed:
        """Read an object by id alone (`pulumi import`): its settings become the inputs."""
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> Created:
        raise NotImplementedError

    def read(self, id_: str, props: dict[str, Any]) -> Observed:
        raise NotImplementedError

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        raise NotImplementedError


class ManagedObject(ImmCrud):
    """An IMM object with a unique name and settings that Update can change (a project, a dataset, a binding).

    - ``create`` creates it. When it already exists it is taken over only with the ``adopt`` input (never
      silently: another stack or a person may own it), and only if compatible (``compatible_on``: the
      properties the stack sets must already match, because changing them would change how someone else's
      object behaves); it is then brought to the stack's settings with Update and recorded as ``adopted``.
    - ``read`` reports drift of the settings the stack sets, and an empty id when the object is gone.
    - ``update`` applies the settings; ``delete`` succeeds when the object is already gone, and keeps an
      adopted object unless ``delete_adopted``.
    """

    compatible_on: tuple[str, ...] = ()
    reported: tuple[str, ...] = ("create_time", "update_time")
    """Outputs that only IMM knows (the dynamic resources seed them with None, so they become attributes)."""
    operations: Mapping[str, Operation[Any, Any]] = {}
    """The IMM operations behind "create", "get", "update" and "delete"."""
    on_delete: tuple[str, ...] = ()
    """Inputs that say what deleting the object takes with it: like :data:`OWNERSHIP`, never sent to IMM, updated
    in place."""

    # Hooks: how props map to request parameters and back.
    def identity(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {k: props[k] for k in self.id_parts}

    def parameters(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Create/Update parameters besides the identity."""
        return settings(props, self.update_on)

    def observed(self, remote: Any) -> dict[str, Any]:
        """The settings as IMM reports them, keyed like the props."""
        return {k: getattr(remote, k, None) for k in (*self.update_on, *self.reported)}

    def call(self, props: Mapping[str, Any], verb: str, **params: Any) -> Any:
        with self.client(props) as imm:
            response = imm.call(self.operations[verb], **params)
        return getattr(response, self.kind) if verb == "get" else response

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return "/".join(str(v) for v in self.identity(props).values())

    def fetch(self, props: Mapping[str, Any]) -> Any | None:
        try:
            return self.call(props, "get", **self.identity(props))
        except ImmError as exc:
            if exc.resource_not_found:
                return None
            raise

    def outputs(self, props: Mapping[str, Any], remote: Any) -> dict[str, Any]:
        """The stack's properties plus what IMM reports (nothing yet if a fresh object is not readable yet)."""
        seen = self.observed(remote) if remote is not None else {}
        return {**props, **{k: seen.get(k) for k in self.reported}}

    def drift(self, props: Mapping[str, Any], remote: Any) -> dict[str, Any]:
        """The settings the stack sets that IMM now reports differently."""
        seen = self.observed(remote)
        return {k: seen[k] for k in self.update_on if props.get(k) is not None and seen.get(k) != props[k]}

    def imm_defaults(self) -> dict[str, Any]:
        """IMM's defaults of this object's settings (see :data:`IMM_DEFAULTS`)."""
        return {k: v for k, v in IMM_DEFAULTS.items() if k in self.update_on}

    def diff(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffPlan:
        """A setting left unset compares as IMM's default (an imported object records only what differs)."""
        defaults = self.imm_defaults()
        olds = {**defaults, **{k: v for k, v in olds.items() if v is not None}}
        news = {**defaults, **{k: v for k, v in news.items() if v is not None}}
        # An on-delete input still unknown in a preview is not a change yet: a binding's follows the dataset's
        # `adopted` output, unknown whenever the dataset is being updated, so each dataset update previewed an
        # update of every binding too (seen under the real engine). `pulumi up` diffs again with the value.
        news = {**news, **{k: olds.get(k) for k in self.on_delete if not known(news.get(k))}}
        return plan_diff(
            olds,
            news,
            replace_on=self.replace_on,
            update_on=(*self.update_on, *OWNERSHIP, *self.on_delete),
            unique=self.unique,
        )

    def create(self, props: dict[str, Any]) -> Created:
        adopted = False
        try:
            self.call(props, "create", **self.identity(props), **self.parameters(props))
        except ImmError as exc:
            if not exc.resource_already_exists:
                raise ProviderError(f"creating {self.kind} {self.resource_id(props)}: {exc}") from None
            if not props.get("adopt"):
                raise ProviderError(adoption_refused(self.kind, self.resource_id(props))) from None
            self._adopt(props)
            adopted = True
        return Created(self.resource_id(props), {**self.outputs(props, self.fetch(props)), "adopted": adopted})

    def _adopt(self, props: Mapping[str, Any]) -> None:
        remote = self.fetch(props)
        seen = self.observed(remote) if remote is not None else {}
        conflicts = [
            f"{k} is {seen.get(k)!r}, the stack wants {props[k]!r}"
            for k in self.compatible_on
            if props.get(k) is not None and seen.get(k) != props.get(k)
        ]
        if conflicts:
            raise ProviderError(
                f"{self.kind} {self.resource_id(props)} already exists and cannot be adopted: {'; '.join(conflicts)}. "
                f"Choose another name, or change the stack to match it."
            )
        if "update" in self.operations:  # bring it to the stack's settings (a binding has none to change)
            self.call(props, "update", **self.identity(props), **self.parameters(props))

    def read(self, id_: str, props: dict[str, Any]) -> Observed:
        remote = self.fetch(props)
        if remote is None:
            return Observed("", {})
        outs = {**self.outputs(props, remote), **self.drift(props, remote)}
        return Observed(id_, outs, {k: v for k, v in outs.items() if k not in self.reported})

    def import_(self, id_: str, where: Mapping[str, Any]) -> Observed:
        """The object as IMM has it, its settings taken as the stack's: an imported object is owned by the
        stack like one it created (`pulumi destroy` deletes it; ``retainOnDelete`` keeps it)."""
        props = {**{k: v for k, v in where.items() if v is not None}, **self.identity_from_id(id_)}
        remote = self.fetch(props)
        if remote is None:
            return Observed("", {})
        seen, defaults = self.observed(remote), self.imm_defaults()
        inputs = {
            **props,
            **{k: seen[k] for k in self.update_on if seen.get(k) is not None and seen.get(k) != defaults.get(k)},
        }
        inputs, _ = self.check(inputs)  # defaults filled as a create would have them
        return Observed(id_, {**self.outputs(inputs, remote), "adopted": False}, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        """Applies the settings that changed; a change of the endpoint or of ownership alone calls nothing."""
        settings_changed = any(k in self.update_on for k in self.diff(olds, news).changed)
        if "update" in self.operations and settings_changed:  # a binding has no settings to change
            try:
                self.call(news, "update", **self.identity(news), **self.parameters(news))
            except ImmError as exc:
                raise ProviderError(f"updating {self.kind} {self.resource_id(news)}: {exc}") from None
        return {**self.outputs(news, self.fetch(news)), "adopted": bool(olds.get("adopted"))}

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("adopted") and not props.get("delete_adopted"):
            return  # taken over from outside the stack: it outlives the stack unless the user said otherwise
        try:
            self.call(props, "delete", **self.identity(props))
        except ImmError as exc:
            if not exc.resource_not_found:
                raise ProviderError(f"deleting {self.kind} {self.resource_id(props)}: {exc}") from None


# --- the project ------------------------------------------------------------------------------------------

PROJECT_SETTINGS = tuple(f for f in projects.UpdateProjectRequest.model_fields if f not in ("project_name", "tag"))
"""The settings UpdateProject takes, straight from the operation's request model ("tag" is a list there; the
resource takes a mapping under "tags")."""


class ProjectCrud(ManagedObject):
    kind = "project"
    replace_on = ("region", "project_name")
    update_on = (*PROJECT_SETTINGS, "tags")
    unique = ("project_name",)
    id_parts = ("project_name",)
    compatible_on = ("service_role",)
    defaults = {"service_role": DEFAULT_SERVICE_ROLE}
    validators = {"project_name": check_name, "description": check_description}
    operations = {
        "create": projects.CreateProject,
        "get": projects.GetProject,
        "update": projects.UpdateProject,
        "delete": projects.DeleteProject,
    }

    def parameters(self, props: Mapping[str, Any]) -> dict[str, Any]:
        params = settings(props, [k for k in self.update_on if k != "tags"])
        if props.get("tags"):
            params["tag"] = [{"Key": k, "Value": v} for k, v in sorted(props["tags"].items())]
        return params

    def observed(self, remote: Any) -> dict[str, Any]:
        seen = super().observed(remote)
        seen["tags"] = {t.tag_key: t.tag_value for t in remote.tags or []} or None
        return seen


# --- the dataset ------------------------------------------------------------------------------------------

DATASET_SETTINGS = tuple(
    f
    for f in datasets.UpdateDatasetRequest.model_fields
    if f not in ("project_name", "dataset_name", "workflow_parameters")
)
"""The settings UpdateDataset takes, straight from the operation's request model (workflow parameters are not
managed by this resource)."""


class DatasetCrud(ManagedObject):
    kind = "dataset"
    replace_on = ("region", "project_name", "dataset_name")
    update_on = DATASET_SETTINGS
    unique = ("project_name", "dataset_name")
    id_parts = ("project_name", "dataset_name")
    compatible_on = ("template_id",)
    validators = {"project_name": check_name, "dataset_name": check_name, "description": check_description}
    operations = {
        "create": datasets.CreateDataset,
        "get": datasets.GetDataset,
        "update": datasets.UpdateDataset,
        "delete": datasets.DeleteDataset,
    }


# --- the binding ------------------------------------------------------------------------------------------


class BindingCrud(ManagedObject):
    """``create`` binds the location and waits (GetBinding) until IMM's first full scan of it has finished, so
    that what depends on the binding (the clustering task) sees the location's photos indexed. A scan that
    fails, stops or outlasts ``scan_timeout`` fails the deployment; a binding this create made is then deleted
    again, so the next `up` starts over cleanly. When it cannot be deleted (IMM or the network failed), or the
    deployment is cancelled during the wait, the binding is recorded as partially created (the plugin; the
    dynamic providers cannot record it) and the next `up`'s update resumes: it waits for a scan still running,
    and replaces a binding whose scan failed by a new one (deleting the failed one first). A binding has no
    settings to update: a change of location replaces it."""

    kind = "binding"
    replace_on = ("region", "project_name", "dataset_name", "uri")
    update_on = ()
    unique = ("project_name", "dataset_name", "uri")
    id_parts = ("project_name", "dataset_name", "uri")
    defaults = {"scan_timeout": DEFAULT_SCAN_TIMEOUT}
    validators = {
        "project_name": check_name,
        "dataset_name": check_name,
        "uri": check_oss_uri,
        "scan_timeout": check_seconds,
    }
    operations = {"create": bindings.CreateBinding, "get": bindings.GetBinding, "delete": bindings.DeleteBinding}
    reported = ("create_time", "update_time", "state", "phase")
    on_delete = ("unindex_on_delete",)

    def create(self, props: dict[str, Any]) -> Created:
        created = super().create(props)
        return Created(created.id, self._scan(props, created.id, created.outs))

    def _scan(self, props: Mapping[str, Any], id_: str, outs: Mapping[str, Any]) -> dict[str, Any]:
        """Wait for the first full scan of a binding that exists; undo it (unless adopted) when the scan fails."""
        timeout, uri = float(props["scan_timeout"]), props["uri"]  # check filled the default
        sleep = self.pauses.sleeper(f"binding {uri}: waiting for IMM's first full scan (up to {timeout:g} s)")
        try:
            with self.client(props) as imm:
                scanned = wait_for_full_scan(imm, **self.identity(props), timeout=timeout, sleep=sleep)
        except DeploymentCancelledError:
            raise PartialCreateError(
                f"binding {uri}: cancelled while IMM's first full scan was running. The binding exists; the next "
                "`pulumi up` waits for its scan.",
                id_,
                outs,
            ) from None
        except (BindingScanError, ImmFacesError) as exc:
            failure = f"binding {uri}: the first full scan did not finish: {exc}."
            advice = "Check the role's OSS access, or raise `scan_timeout`."
            if outs.get("adopted"):
                raise ProviderError(f"{failure} {advice}") from None
            why = self._undo(props)
            if why is None:
                raise ProviderError(
                    f"{failure} The binding was deleted again; the next `pulumi up` creates it anew. {advice}"
                ) from None
            failed = self.fetch_quietly(props)  # it exists and could not be deleted: recorded, it is not lost
            seen = self.outputs(props, failed) if failed is not None else {}
            raise PartialCreateError(
                f"{failure} The binding exists and could not be deleted again ({why}): it is recorded as partially "
                f"created, and the next `pulumi up` deletes it and binds the location anew. {advice}",
                id_,
                {**outs, **seen},
                unrecorded=f"{failure} The binding exists and could not be deleted again ({why}): delete it by "
                f"hand before the next `pulumi up`. {advice}",
            ) from None
        return {**outs, **self.outputs(props, scanned), "state": scanned.state, "phase": scanned.phase}

    def fetch_quietly(self, props: Mapping[str, Any]) -> Any | None:
        """The binding as IMM has it, or None when that cannot be read either."""
        try:
            return self.fetch(props)
        except ImmFacesError:
            return None

    def _undo(self, props: Mapping[str, Any]) -> str | None:
        """Delete the binding this create made, so that the next `up` starts over; why it failed, or None."""
        try:
            self.call(props, "delete", **self.identity(props))
        except ImmFacesError as exc:  # IMM refused, or could not be reached
            return exc.code if isinstance(exc, ImmError) else str(exc)
        return None

    @staticmethod
    def scanned(outs: Mapping[str, Any]) -> bool:
        """Whether recorded outputs say the first full scan finished well (not a partial create)."""
        return outs.get("phase") not in (None, BINDING_FULL_SCAN) and outs.get("state") not in BINDING_FAILED_STATES

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        """The resume of a binding recorded before its first full scan finished well (cancelled, or its scan
        failed and it could not be deleted): wait for a scan still running; delete a failed binding and bind the
        location anew (an adopted one is never deleted: its failure is reported)."""
        if self.scanned(olds):
            return super().update(id_, olds, news)
        adopted = bool(olds.get("adopted"))
        remote = self.fetch(news)
        if remote is not None and remote.state in BINDING_FAILED_STATES:
            failure = f"binding {news['uri']} is {remote.state}" + (f": {remote.reason}" if remote.reason else "")
            if adopted:
                raise ProviderError(f"{failure}. It was adopted, so it is not deleted: fix or delete it by hand.")
            if why := self._undo(news):
                raise PartialCreateError(
                    f"{failure}, and it could not be deleted again ({why}); the next `pulumi up` tries again.",
                    id_,
                    {**olds, **self.outputs(news, remote)},
                )
            remote = None
        if remote is None:  # gone (or just deleted): bind the location again
            try:
                self.call(news, "create", **self.identity(news))
            except ImmError as exc:
                raise ProviderError(f"creating binding {self.resource_id(news)}: {exc}") from None
            remote = self.fetch(news)
        return self._scan(news, id_, {**self.outputs(news, remote), "adopted": adopted})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """DeleteBinding keeps what the binding indexed (IMM: the files stay in the dataset). With
        ``unindex_on_delete`` (FaceClustering sets it on a dataset it adopted and keeps) a binding this stack
        created also takes its files out of the dataset, so the dataset is left holding what it held before."""
        super().delete(id_, props)
        if props.get("unindex_on_delete") and not props.get("adopted"):
            self._unindex(props)

    def _unindex(self, props: Mapping[str, Any]) -> None:
        """Remove from the dataset the files this binding indexed: under its location, entered after the binding
        was created (a file indexed before keeps its CreateTime when the binding indexes it again: its owner's),
        and under no other binding's location (that binding indexes them too). Their faces leave their figure
        clusters; a cluster left without a face goes with them (IMM's rule for deleted files). Inferred: IMM
        documents neither SimpleQuery's ``prefix`` on ``URI`` nor a file's CreateTime as the time it was first
        indexed; both hold in the emulator."""
        if not props.get("create_time"):
            return  # when it was created is unknown: nothing can be told apart, so nothing is removed
        since = parse_rfc3339(str(props["create_time"]))
        where = {"project_name": props["project_name"], "dataset_name": props["dataset_name"]}
        try:
            with self.client(props) as imm:
                others = [
                    _location(b.uri)
                    for b in imm.paginate(bindings.ListBindings, **where)
                    if b.uri and b.uri != props["uri"]
                ]
                under = {"Field": "URI", "Operation": "prefix", "Value": _location(str(props["uri"]))}
                found = imm.paginate(query.SimpleQuery, **where, query=under, with_fields=["URI", "CreateTime"])
                indexed = [
                    f.uri
                    for f in found
                    if f.uri
                    and f.create_time
                    and parse_rfc3339(f.create_time) >= since
                    and not f.uri.startswith(tuple(others))
                ]
                for start in range(0, len(indexed), BATCH_DELETE_MAX_URIS):
                    imm.call(files.BatchDeleteFileMeta, **where, uris=indexed[start : start + BATCH_DELETE_MAX_URIS])
        except ImmError as exc:
            if exc.resource_not_found:  # the dataset is gone, and its files with it
                return
            raise ProviderError(
                f"removing what binding {props['uri']} indexed from {where['project_name']}/"
                f"{where['dataset_name']}: {exc}"
            ) from None


def _location(uri: str) -> str:
    """A binding's location as the prefix of the URIs under it (``oss://bucket`` -> ``oss://bucket/``)."""
    bucket, prefix = split_oss_uri(uri)
    return f"oss://{bucket}/{prefix}"


# --- the figure clustering task ---------------------------------------------------------------------------

POLL_INTERVAL = 2.0
RESULT_PROPS = ("task_id", "status", "start_time", "end_time")
OWNER_TAG = "imm-faces-resource"
"""The task tag that names the resource a task was started for (a digest: see :func:`owner_digest`)."""
IDENTITY_PROPS = ("owner", "project_name", "dataset_name", "triggers", "notification_topic")


def owner_digest(props: Mapping[str, Any]) -> str:
    """Who started a task and for what: the resource's ``owner`` (Pulumi project, stack and resource name) and
    the inputs that make a run different. Two runs of one resource with the same inputs share it."""
    identity = json.dumps({k: props.get(k) for k in IDENTITY_PROPS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class ClusteringTaskCrud(ImmCrud):
    """``create`` starts CreateFigureClusteringTask and waits (GetTask) until it ends or ``timeout`` seconds
    pass; a Failed task fails the deployment with IMM's Code and Message. Each task carries the resource's
    identity in its ``Tags`` (:data:`OWNER_TAG`), so a create that finds a task of the same resource still
    Running (ListTasks) waits for that one instead of starting another. A create that times out raises
    :class:`PartialCreateError` naming the task (so does a cancelled deployment, or the network failing during
    the wait): the plugin records it and its next update waits for that task; the dynamic provider records
    nothing and its next create finds the task by its tag. The resource id is ``<project>/<TaskId>`` (what
    `pulumi import` takes; ids of the TaskId alone, recorded before, are still read). A change of
    ``triggers`` (or of what the task runs on) replaces the resource, which runs the task again. ``delete``
    does nothing remote: a task is a past event, and the figure clusters it made belong to the dataset."""

    kind = "figure clustering task"
    replace_on = ("region", "project_name", "dataset_name", "triggers", "notification_topic")
    update_on = ("timeout", "poll_interval")
    unique = ()
    id_parts = ("project_name", "task_id")
    defaults = {"timeout": DEFAULT_TASK_TIMEOUT, "poll_interval": POLL_INTERVAL, "triggers": {}}
    validators = {
        "project_name": check_name,
        "dataset_name": check_name,
        "timeout": check_seconds,
        "poll_interval": check_seconds,
    }

    def create(self, props: dict[str, Any]) -> Created:
        owner = owner_digest(props)
        with self.client(props) as imm:
            try:
                task_id = self._running_task(imm, props["project_name"], owner) or self._start(imm, props, owner)
            except ImmError as exc:
                raise ProviderError(
                    f"figure clustering on {props['project_name']}/{props['dataset_name']}: {exc}"
                ) from None
            return Created(f"{props['project_name']}/{task_id}", self._wait(imm, props, task_id, owner))

    def _wait(self, imm: ImmClient, props: Mapping[str, Any], task_id: str, owner: str) -> dict[str, Any]:
        project, dataset = props["project_name"], props["dataset_name"]
        timeout = float(props["timeout"])
        sleep = self.pauses.sleeper(
            f"figure clustering task {task_id} on {project}/{dataset}: waiting for it to end (up to {timeout:g} s)"
        )
        resume = (
            f"The task goes on in IMM; the next `pulumi up` waits for this same task (it is tagged "
            f"{OWNER_TAG}={owner}) instead of starting another."
        )
        running = {**props, "task_id": task_id, "status": tasks.TASK_RUNNING, "start_time": None, "end_time": None}
        try:
            task = wait_for_task(
                imm, project, task_id, timeout=timeout, interval=float(props["poll_interval"]), sleep=sleep
            )
        except TaskTimeoutError as exc:
            raise PartialCreateError(
                f"figure clustering on {project}/{dataset}: {exc}. {resume} Raise `timeout` to wait longer.",
                f"{project}/{task_id}",
                running,
            ) from None
        except DeploymentCancelledError:
            raise PartialCreateError(
                f"figure clustering on {project}/{dataset}: cancelled while task {task_id} was running. {resume}",
                f"{project}/{task_id}",
                running,
            ) from None
        except ImmError as exc:
            raise ProviderError(f"figure clustering on {project}/{dataset}: {exc}") from None
        except ImmFacesError as exc:  # IMM could not be reached: the task is not lost
            raise PartialCreateError(
                f"figure clustering on {project}/{dataset}: waiting for task {task_id}: {exc}. {resume}",
                f"{project}/{task_id}",
                running,
            ) from None
        if task.status != tasks.TASK_SUCCEEDED:
            raise ProviderError(
                f"figure clustering task {task_id} on {project}/{dataset} {task.status}: {task.code}: {task.message}"
            )
        return {
            **props,
            "task_id": task_id,
            "status": task.status,
            "start_time": task.start_time,
            "end_time": task.end_time,
        }

    @staticmethod
    def _running_task(imm: ImmClient, project: str, owner: str) -> str | None:
        """The TaskId of a task this resource started that is still Running, if any (the newest)."""
        running = [
            t
            for t in imm.paginate(
                tasks.ListTasks,
                project_name=project,
                task_types=[tasks.FACE_CLUSTERING],
                status=tasks.TASK_RUNNING,
                tag_selector=f"{OWNER_TAG}={owner}",
            )
            if (t.tags or {}).get(OWNER_TAG) == owner  # checked here too: the selector's syntax is IMM's
        ]
        running.sort(key=lambda t: t.start_time or "")
        return running[-1].task_id if running else None

    @staticmethod
    def _start(imm: ImmClient, props: Mapping[str, Any], owner: str) -> str:
        params: dict[str, Any] = {"project_name": props["project_name"], "dataset_name": props["dataset_name"]}
        if props.get("notification_topic"):
            params["notification"] = {"MNS": {"TopicName": props["notification_topic"]}}
        params["tags"] = {**dict(props.get("triggers") or {}), OWNER_TAG: owner}  # why it ran, and for whom
        return imm.call(tasks.CreateFigureClusteringTask, **params).task_id or ""

    @staticmethod
    def task_id(id_: str) -> str:
        """A resource id is ``<project>/<TaskId>`` (the TaskId alone in states recorded before)."""
        return id_.rsplit("/", 1)[-1]

    def _get(self, props: Mapping[str, Any], task_id: str, **params: Any) -> Any | None:
        try:
            with self.client(props) as imm:
                return imm.call(
                    tasks.GetTask,
                    project_name=props["project_name"],
                    task_id=task_id,
                    task_type=tasks.FACE_CLUSTERING,
                    **params,
                )
        except ImmError as exc:
            if exc.resource_not_found:
                return None
            raise

    def read(self, id_: str, props: dict[str, Any]) -> Observed:
        """The task's current record; when IMM no longer has it (tasks expire), the stored record stands."""
        task = self._get(props, self.task_id(id_))
        if task is None:
            return Observed(id_, props, {k: v for k, v in props.items() if k not in RESULT_PROPS})
        outs = {**props, "status": task.status, "start_time": task.start_time, "end_time": task.end_time}
        return Observed(id_, outs, {k: v for k, v in outs.items() if k not in RESULT_PROPS})

    def import_(self, id_: str, where: Mapping[str, Any]) -> Observed:
        """A past task by ``<project>/<TaskId>``: its dataset and triggers (its tags but ours) become inputs."""
        ids = self.identity_from_id(id_)
        props = {**{k: v for k, v in where.items() if v is not None}, "project_name": ids["project_name"]}
        task = self._get(props, ids["task_id"], request_definition=True)
        if task is None:
            return Observed("", {})
        try:  # the request that started it (a JSON string): which dataset, which notification topic
            definition = json.loads(task.task_request_definition or "{}")
        except ValueError:
            definition = {}
        if not isinstance(definition, dict):
            definition = {}
        notification = definition.get("Notification")
        if isinstance(notification, str):
            try:
                notification = json.loads(notification)
            except ValueError:
                notification = None
        topic = ((notification or {}).get("MNS") or {}).get("TopicName") if isinstance(notification, dict) else None
        triggers = {k: v for k, v in (task.tags or {}).items() if k != OWNER_TAG}
        inputs, _ = self.check(
            {**props, "dataset_name": definition.get("DatasetName"), "triggers": triggers, "notification_topic": topic}
        )
        outs = {
            **inputs,
            "task_id": task.task_id,
            "status": task.status,
            "start_time": task.start_time,
            "end_time": task.end_time,
        }
        return Observed(id_, outs, inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        """Only the waiting settings changed: nothing to run, keep the last run's record. A run recorded as
        still Running (a create that timed out, recorded by the plugin) is waited for again: the resume."""
        if olds.get("status") == tasks.TASK_RUNNING and olds.get("task_id"):
            with self.client(news) as imm:
                return self._wait(imm, news, str(olds["task_id"]), owner_digest(news))
        return {**news, **{k: olds.get(k) for k in RESULT_PROPS}}

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None
