"""What every IMM dynamic provider shares: the adapter from ``pulumi.dynamic.ResourceProvider`` to the CRUD core.

The logic lives in :mod:`imm_faces.components.providers.core` (plain classes, no pulumi), shared with the
``imm`` provider plugin; a dynamic provider here only translates its calls and results.

Rules that keep dynamic providers safe (see docs/ and the Pulumi research notes):

- The classes here and in the sibling modules are pickled **by reference** into every resource's state
  (``__provider``): their module paths and class names are a stable API. Never move or rename them.
- Importing these modules has no side effects: no Pulumi config reads, no network, no resources.
- Credentials never come from inputs or attributes. ``configure()`` (run by the engine's provider host after
  unpickling) reads pulumi-alicloud's settings from the stack config (``alicloud:accessKey``/``secretKey``/
  ``securityToken``, ``profile``, ``assumeRole``, ``assumeRoleWithOidc``, ``ecsRoleName``, ``credentialsUri``...)
  and hands them to the one credential chain (:func:`imm_faces.runtime.credentials.resolve_provider`, which
  also reads the environment and ``~/.aliyun/config.json``), chosen on first use and refreshed before expiry.
  The configured credentials are dropped when the provider is pickled.
- The engine gives a dynamic provider the stack's config only from Pulumi CLI v3.139.0 on (pulumi PR #17673:
  ``Target.GetPackageConfig`` in pkg/resource/deploy/target.go passes every key, namespace kept, to the
  ``pulumi-python`` package; before, only ``pulumi-python:*`` keys, namespace stripped). A provider records which
  ``alicloud:*`` credential settings the program saw (names only, never values); when configure() then receives
  no namespaced key at all, the engine is older and the provider fails with the minimum version instead of
  silently using other credentials (and maybe another account).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

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

from imm_faces.components.providers.core import ImmCrud, ManagedObject, PartialCreateError, ProviderError, plan_diff
from imm_faces.runtime.credentials import (
    CredentialSettings,
    CredentialSource,
    LazyCredentials,
    config_keys_present,
    resolve_provider,
)
from imm_faces.runtime.errors import ConfigError

__all__ = ["ImmProvider", "ManagedObjectProvider", "ProviderError", "plan_diff"]

MIN_PULUMI_CLI = "v3.139.0"
"""The first Pulumi CLI that passes the stack's config to a dynamic provider's configure() (pulumi PR #17673)."""
TABLES = (
    "kind",
    "replace_on",
    "update_on",
    "unique",
    "defaults",
    "validators",
    "compatible_on",
    "reported",
    "operations",
)
"""The core's property tables, mirrored on each provider class (read by the resources and the tests)."""


def _program_config_keys() -> tuple[str, ...]:
    """The credential settings (names) of the stack config the program sees; () outside a program."""
    from pulumi.runtime.config import get_config

    try:
        return config_keys_present(get_config)
    except Exception:  # e.g. a malformed PULUMI_CONFIG: the check is then skipped, never the resource
        return ()


class ImmProvider(ResourceProvider):
    """Base of the IMM dynamic providers: each names its core class in ``crud``."""

    crud: ClassVar[type[ImmCrud]] = ImmCrud
    replace_on: ClassVar[tuple[str, ...]]
    update_on: ClassVar[tuple[str, ...]]
    unique: ClassVar[tuple[str, ...]]
    defaults: ClassVar[Mapping[str, Any]]
    validators: ClassVar[Mapping[str, Callable[[Any], Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for table in TABLES:
            if hasattr(cls.crud, table):
                setattr(cls, table, getattr(cls.crud, table))

    def __init__(self) -> None:
        self._credentials: CredentialSource | None = None
        # Runs where the resource is declared (the program): which credential settings the stack has, by name.
        self._stack_config_keys: tuple[str, ...] = _program_config_keys()

    # Credentials configured in the provider process must never travel with the pickle.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_credentials"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._credentials = None

    def configure(self, req: ConfigureRequest) -> None:
        # pulumi.dynamic.Config has no way to list its keys but its _props; without them the check is skipped.
        received = getattr(req.config, "_props", None)
        expected = getattr(self, "_stack_config_keys", ())  # absent from pickles made before it existed
        if expected and isinstance(received, Mapping) and not any(":" in str(k) for k in received):
            raise ProviderError(
                f"this Pulumi CLI did not pass the stack's configuration to the imm-faces providers, so the "
                f"stack's {', '.join(expected)} cannot be used (other credentials, maybe of another account, would "
                f"be). Dynamic providers receive the stack's config from Pulumi CLI {MIN_PULUMI_CLI} on (pulumi PR "
                f"#17673): upgrade the CLI (`pulumi version`)."
            )
        try:
            settings = CredentialSettings.from_config(req.config.get, "stack config")
        except ConfigError as exc:
            raise ProviderError(str(exc)) from None
        self._credentials = LazyCredentials(lambda: resolve_provider(settings=settings))

    def core(self) -> ImmCrud:
        """The CRUD core, with the credentials configured here (made per call: it is never pickled)."""
        if self._credentials is None:  # configure() was not called (tests, or an engine without Configure)
            self._credentials = LazyCredentials(resolve_provider)
        return self.crud(self._credentials)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = self.core().check(news)
        return CheckResult(inputs, [CheckFailure(f.property, f.reason) for f in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        plan = self.core().diff(olds, news)
        return DiffResult(
            changes=plan.changes, replaces=plan.replaces, delete_before_replace=plan.delete_before_replace
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        try:
            created = self.core().create(props)
        except PartialCreateError as exc:  # a dynamic provider cannot record a partial create: nothing is
            raise ProviderError(exc.unrecorded) from None
        return CreateResult(created.id, created.outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        seen = self.core().read(id_, props)
        return ReadResult(seen.id, seen.outs, seen.inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self.core().update(id_, olds, news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.core().delete(id_, props)


class ManagedObjectProvider(ImmProvider):
    """A project, a dataset or a binding (see :class:`~imm_faces.components.providers.core.ManagedObject`)."""

    crud: ClassVar[type[ImmCrud]] = ManagedObject
    kind: ClassVar[str]
    compatible_on: ClassVar[tuple[str, ...]]
    reported: ClassVar[tuple[str, ...]]

    def outputs(self, props: Mapping[str, Any], remote: Any) -> dict[str, Any]:
        """The stack's properties plus what IMM reports (see ``ManagedObject.outputs``)."""
        core = self.core()
        assert isinstance(core, ManagedObject)
        return core.outputs(props, remote)
