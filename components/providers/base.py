"""What every IMM dynamic provider shares: credentials, the client, check and diff.

Rules that keep dynamic providers safe (see docs/ and the Pulumi research notes):

- The classes here and in the sibling modules are pickled **by reference** into every resource's state
  (``__provider``): their module paths and class names are a stable API. Never move or rename them.
- Importing these modules has no side effects: no Pulumi config reads, no network, no resources.
- Credentials never come from inputs or attributes. ``configure()`` (run by the engine's provider host after
  unpickling) reads ``alicloud:accessKey``/``secretKey``/``securityToken`` from the stack config; otherwise
  :func:`imm_faces.runtime.credentials.resolve_credentials` reads the environment and ``~/.aliyun/config.json``.
  The configured credentials are dropped when the provider is pickled.
- The engine passes numbers as floats: :func:`as_int` casts before calling IMM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime import rpc

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials, resolve_credentials
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations._base import Operation
from imm_faces.runtime.rules import check_region

CONFIG_KEYS = ("alicloud:accessKey", "alicloud:secretKey", "alicloud:securityToken")


class ProviderError(Exception):
    """A deployment step failed; the message is what `pulumi up` shows."""


def as_int(value: Any) -> Any:
    """The engine turns integers into floats; IMM wants integers back."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def positive_seconds(value: Any) -> float:
    """A check validator for a duration input."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive number of seconds; got {value!r}")
    return float(value)


def known(value: Any) -> bool:
    """False for what an input not yet known looks like in check/diff during a preview."""
    return bool(value != rpc.UNKNOWN)


@dataclass(frozen=True)
class DiffPlan:
    changes: bool
    replaces: list[str]
    delete_before_replace: bool


def plan_diff(
    olds: Mapping[str, Any], news: Mapping[str, Any], *, replace_on: Sequence[str], update_on: Sequence[str],
    unique: Sequence[str],
) -> DiffPlan:  # fmt: skip
    """Which properties changed, which of them force a replacement, and whether the old object must go first
    (it must when the names that are unique remotely stay the same: the new one could not be created)."""
    changed = [k for k in (*replace_on, *update_on) if olds.get(k) != news.get(k)]
    replaces = [k for k in replace_on if k in changed]
    same_names = all(olds.get(k) == news.get(k) for k in unique)
    return DiffPlan(bool(changed), replaces, bool(replaces) and same_names)


class ImmProvider(ResourceProvider):
    """Base of the IMM providers. Subclasses set the property lists and implement create/read/update/delete."""

    replace_on: tuple[str, ...] = ("region", "endpoint", "project_name")
    update_on: tuple[str, ...] = ()
    unique: tuple[str, ...] = ("project_name",)
    defaults: Mapping[str, Any] = {}
    validators: Mapping[str, Callable[[Any], Any]] = {}

    def __init__(self) -> None:
        self._credentials: Credentials | None = None

    # Credentials configured in the provider process must never travel with the pickle.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_credentials"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._credentials = None

    def configure(self, req: ConfigureRequest) -> None:
        access_key, secret, token = (req.config.get(k) for k in CONFIG_KEYS)
        if access_key and secret:
            self._credentials = Credentials(str(access_key), str(secret), str(token) if token else None)

    def client(self, props: Mapping[str, Any]) -> ImmClient:
        return ImmClient(region=props.get("region"), endpoint=props.get("endpoint") or None,
                         credentials=self._credentials or resolve_credentials())  # fmt: skip

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**self.defaults, **{k: v for k, v in news.items() if v is not None}}
        failures = []
        for prop, validate in {"region": check_region, **self.validators}.items():
            value = inputs.get(prop)
            if value is None or not known(value):
                continue
            try:
                validate(value)
            except (ValueError, TypeError) as exc:
                failures.append(CheckFailure(prop, str(exc)))
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        plan = plan_diff(olds, news, replace_on=self.replace_on, update_on=self.update_on, unique=self.unique)
        return DiffResult(changes=plan.changes, replaces=plan.replaces,
                          delete_before_replace=plan.delete_before_replace)  # fmt: skip


def settings(props: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The IMM request parameters among ``props`` (unset ones left out; numbers cast back to int)."""
    return {k: as_int(props[k]) for k in names if props.get(k) is not None}


OWNERSHIP = ("adopt", "delete_adopted")
"""Inputs that say who owns a managed object: they change what the stack may do with it, never IMM."""


def adoption_refused(kind: str, resource_id: str) -> str:
    """What ``pulumi up`` says when the object to create already exists and the stack may not take it over."""
    return (
        f"{kind} {resource_id} already exists and this stack did not create it; it was left untouched. Choose "
        f"another name, or take it over explicitly: adopt_existing=True in FaceClusteringArgs (stack config "
        f"`adoptExisting: true`). An adopted {kind} is kept when the stack is destroyed unless "
        f"delete_adopted=True (`deleteAdopted: true`)."
    )


class ManagedObjectProvider(ImmProvider):
    """An IMM object with a unique name and settings that Update can change (a project, a dataset, a binding).

    - ``create`` creates it. When it already exists it is taken over only with the ``adopt`` input (never
      silently: another stack or a person may own it), and only if compatible (``compatible_on``: the
      properties the stack sets must already match, because changing them would change how someone else's
      object behaves); it is then brought to the stack's settings with Update and recorded as ``adopted``.
    - ``read`` reports drift of the settings the stack sets, and an empty id when the object is gone.
    - ``update`` applies the settings; ``delete`` succeeds when the object is already gone, and keeps an
      adopted object unless ``delete_adopted``.
    """

    kind: str = ""
    compatible_on: tuple[str, ...] = ()
    reported: tuple[str, ...] = ("create_time", "update_time")
    """Outputs that only IMM knows (the resource seeds them with None, so they become attributes)."""

    # Hooks: the operations and how props map to request parameters and back.
    def identity(self, props: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def parameters(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Create/Update parameters besides the identity."""
        return settings(props, self.update_on)

    def observed(self, remote: Any) -> dict[str, Any]:
        """The settings as IMM reports them, keyed like the props."""
        return {k: getattr(remote, k, None) for k in (*self.update_on, *self.reported)}

    operations: Mapping[str, Operation[Any, Any]] = {}
    """The IMM operations behind "create", "get", "update" and "delete"."""

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

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        plan = plan_diff(olds, news, replace_on=self.replace_on, update_on=(*self.update_on, *OWNERSHIP),
                         unique=self.unique)  # fmt: skip
        return DiffResult(changes=plan.changes, replaces=plan.replaces,
                          delete_before_replace=plan.delete_before_replace)  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
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
        return CreateResult(self.resource_id(props), {**self.outputs(props, self.fetch(props)), "adopted": adopted})

    def _adopt(self, props: Mapping[str, Any]) -> None:
        remote = self.fetch(props)
        seen = self.observed(remote) if remote is not None else {}
        conflicts = [f"{k} is {seen.get(k)!r}, the stack wants {props[k]!r}" for k in self.compatible_on
                     if props.get(k) is not None and seen.get(k) != props.get(k)]  # fmt: skip
        if conflicts:
            raise ProviderError(
                f"{self.kind} {self.resource_id(props)} already exists and cannot be adopted: {'; '.join(conflicts)}. "
                f"Choose another name, or change the stack to match it."
            )
        if "update" in self.operations:  # bring it to the stack's settings (a binding has none to change)
            self.call(props, "update", **self.identity(props), **self.parameters(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        remote = self.fetch(props)
        if remote is None:
            return ReadResult("", {})
        outs = {**self.outputs(props, remote), **self.drift(props, remote)}
        return ReadResult(id_, outs, {k: v for k, v in outs.items() if k not in self.reported})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if "update" in self.operations:  # a binding has no settings: only its ownership inputs can change
            try:
                self.call(news, "update", **self.identity(news), **self.parameters(news))
            except ImmError as exc:
                raise ProviderError(f"updating {self.kind} {self.resource_id(news)}: {exc}") from None
        return UpdateResult({**self.outputs(news, self.fetch(news)), "adopted": bool(olds.get("adopted"))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("adopted") and not props.get("delete_adopted"):
            return  # taken over from outside the stack: it outlives the stack unless the user said otherwise
        try:
            self.call(props, "delete", **self.identity(props))
        except ImmError as exc:
            if not exc.resource_not_found:
                raise ProviderError(f"deleting {self.kind} {self.resource_id(props)}: {exc}") from None
