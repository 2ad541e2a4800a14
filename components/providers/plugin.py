# ruff: noqa: N802  (gRPC method names are the protocol's)
"""The ``imm`` resource provider plugin: the IMM resources for every Pulumi language, over the engine's gRPC
provider interface (``pulumirpc.ResourceProvider``).

The engine starts it as ``pulumi-resource-imm [--logtostderr] [-v=N] [--tracing EP] <engine address>`` (the
``provider/`` folder's executable, from a checkout or the plugin cache, or the command pip installs); it listens
on a free loopback port and prints that port on the first line of stdout, which the engine reads.

Resources (see :mod:`imm_faces.components.providers.schema`): ``imm:index:Project``, ``Dataset``, ``Binding`` and
``FigureClusteringTask``, each served by its CRUD core (:mod:`imm_faces.components.providers.core`), the same
code as the Python dynamic providers. What this module adds is only the protocol:

- names: the schema's camelCase properties to the core's snake_case and back (map values are left alone);
- secrets: an input sent as a secret comes back as a secret in every output and Read answer (with
  ``acceptSecrets`` the engine does not mark them again); unknowns (previews) are left to the core, which
  never judges them;
- Construct of ``imm:index:FaceClustering`` runs the Python component (``component.py``), its IMM children
  registered as this plugin's resources;
- Check fills ``region``/``endpoint`` from the provider config and a task's ``owner`` from its URN;
- Read with an id only is `pulumi import` (the core's ``import_``); a missing object answers an empty
  ReadResponse, which the engine takes as gone;
- a :class:`~imm_faces.components.providers.core.PartialCreateError` aborts Create/Update with a
  ``pulumirpc.ErrorResourceInitFailed`` detail: the engine keeps the object in state with its error and updates
  it on the next `up` (a clustering task that outlasted its timeout is then waited for again);
- blocking work (every IMM call, and the waits for a binding's first scan or a clustering task) runs on a pool
  of its own (:data:`WORKERS` threads), never on asyncio's default executor: the SDK sends a constructed
  component's registrations from that one, and the engine answers them with Creates of this same process, so
  sharing it deadlocked Construct once it was full of registrations (six on a 2-core machine);
- Cancel (Ctrl-C in `pulumi up`; the engine also sends it before it closes a provider) ends every wait at once:
  the object is recorded as partially created and the next `up` resumes it;
- during waits, progress goes to the engine's log (``Engine.Log`` at the address the engine passed, as status
  messages of the resource) every :data:`PROGRESS_EVERY` seconds;
- no message leaving the plugin (check failures, errors, progress) holds the value of an input sent as secret.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.provider.server import ProviderServicer as ConstructServicer
from pulumi.runtime import rpc
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, plugin_pb2, provider_pb2, provider_pb2_grpc, status_pb2

from imm_faces.components.providers.component import COMPONENT_TYPE, FaceClusteringProvider, component_schema
from imm_faces.components.providers.core import (
    UNKNOWN,
    ClusteringTaskCrud,
    DeploymentCancelledError,
    ImmCrud,
    ManagedObject,
    PartialCreateError,
    Pauses,
    ProviderError,
    as_int,
    check_endpoint,
    same,
)
from imm_faces.components.providers.schema import BY_TOKEN, CONFIG, ResourceSpec, package_schema
from imm_faces.runtime.credentials import SETTINGS, CredentialSettings, LazyCredentials, resolve_provider
from imm_faces.runtime.errors import ImmFacesError
from imm_faces.runtime.models.base import camel_name as camel
from imm_faces.runtime.models.base import snake_name as snake
from imm_faces.runtime.rules import check_region

SECRET_KEY, SECRET_SIG = (
    rpc._special_sig_key,
    rpc._special_secret_sig,
)  # a secret on the wire (private in the SDK: read here only)
REGION = SETTINGS["region"]
CREDENTIAL_SETTINGS = ("access_key", "secret_key", "security_token", "profile")
T = TypeVar("T")

WORKERS = 64
"""Threads for blocking provider work. Each Create/Update that waits holds one while it waits (mostly asleep);
the engine runs at most ``--parallel`` steps at once (4 per CPU by default), so this is rarely the bound."""
SDK_WORKERS = 64
"""Threads of the event loop's default executor: the SDK sends a constructed component's registrations from it,
one blocked per child until the engine has created it (a binding: until its first full scan)."""
PROGRESS_EVERY = 30.0
"""Seconds between two progress messages of one wait (the first comes at its first pause)."""
HIDDEN = "[secret]"


def package_version() -> str:
    try:
        return version("imm-faces")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without an install
        return "0.0.0"


# --- values -----------------------------------------------------------------------------------------------


def _unwrap(value: Any) -> tuple[Any, bool]:
    """A wire value without its secret markers, and whether it held any."""
    if isinstance(value, dict):
        if value.get(SECRET_KEY) == SECRET_SIG:
            inner, _ = _unwrap(value.get("value"))
            return inner, True
        pairs = {k: _unwrap(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_unwrap(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def from_struct(struct: struct_pb2.Struct) -> tuple[dict[str, Any], set[str]]:
    """Engine properties as core props (snake_case) and the names of those that were secret."""
    props, secret = {}, set()
    for key, raw in json_format.MessageToDict(struct).items():
        if key.startswith("__"):  # engine bookkeeping (e.g. an old engine's "__defaults"), never a property
            continue
        value, is_secret = _unwrap(raw)
        props[snake(key)] = value
        if is_secret:
            secret.add(snake(key))
    return props, secret


def to_struct(props: Mapping[str, Any], secret: AbstractSet[str] = frozenset()) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(
        {
            camel(k): ({SECRET_KEY: SECRET_SIG, "value": v} if k in secret and v is not None else v)
            for k, v in props.items()
        }
    )
    return out


def resource_type(urn: str) -> str:
    """``urn:pulumi:stack::project::parent$imm:index:Project::name`` -> ``imm:index:Project``."""
    return urn.split("::")[2].rsplit("$", maxsplit=1)[-1]


def owner_from_urn(urn: str) -> str:
    """``<project>/<stack>/<resource name>``, as the Python component names a task's owner."""
    head, project, _type, name = urn.split("::", 3)
    return f"{project}/{head.rsplit(':', 1)[-1]}/{name}"


def _texts(value: Any) -> Iterator[str]:
    """The ways a value can appear in a message (strings as they are and as repr shows them; numbers)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, str):
        yield value
        yield repr(value)[1:-1]
        if value.startswith("oss://"):  # IMM's reasons name a location's bucket and key on their own
            bucket, _, key = value[len("oss://") :].partition("/")
            yield from (bucket, key, key.rstrip("/"))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield from {str(value), str(as_int(value))}


class Redactor:
    """Hides the values of the inputs sent as secrets in a text (every message this plugin sends)."""

    def __init__(self, props: Mapping[str, Any] | None = None, secret: AbstractSet[str] = frozenset()) -> None:
        found = {t for k in secret for t in _texts((props or {}).get(k)) if len(t) >= 2}  # ("a" or "1" would eat text)
        self.values = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, HIDDEN)
        return text


class InitFailedError(Exception):
    """A PartialCreateError on its way to the engine as ErrorResourceInitFailed."""

    def __init__(self, error: PartialCreateError, inputs: Mapping[str, Any], secret: AbstractSet[str]) -> None:
        super().__init__(str(error))
        self.error, self.inputs, self.secret = error, inputs, secret

    def status(self, redact: Redactor) -> grpc.Status:
        message = redact(str(self.error))
        detail = provider_pb2.ErrorResourceInitFailed(
            id=self.error.resource_id,
            properties=to_struct(self.error.outputs, self.secret),
            reasons=[message],
            inputs=to_struct(self.inputs, self.secret),
        )
        rich = status_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0], message=message)
        rich.details.add().Pack(detail)
        return _Status(grpc.StatusCode.UNKNOWN, message, (("grpc-status-details-bin", rich.SerializeToString()),))


class _Status(grpc.Status):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, bytes], ...]) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


# --- the engine's log and the waits ----------------------------------------------------------------------


class EngineLog:
    """Messages to the engine's log: the ``Engine.Log`` RPC at the address the engine started the plugin with.
    Sent from a thread of their own, so that a slow engine never holds up a wait; a message that cannot be sent
    is dropped (progress is best effort)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._queue: queue.Queue[engine_pb2.LogRequest] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def status(self, urn: str, message: str) -> None:
        """A status message of the resource ``urn`` (ephemeral: the engine shows it beside the resource while
        the step runs, as other providers' "waiting for..." messages)."""
        self.send(engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn, ephemeral=True))

    def send(self, request: engine_pb2.LogRequest) -> None:
        if not self.address:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="imm-engine-log", daemon=True)
                self._thread.start()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(request)

    def _run(self) -> None:
        channel = grpc.insecure_channel(self.address or "")
        engine = engine_pb2_grpc.EngineStub(channel)
        while True:
            request = self._queue.get()
            try:
                engine.Log(request, timeout=10)
            except grpc.RpcError as exc:  # the engine is gone or busy: progress is not worth failing for
                print(f"imm provider: a log message to the engine was lost: {exc.code()}", file=sys.stderr)


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class EnginePauses(Pauses):
    """The waits' pauses in the plugin: each reports progress to the engine every ``every`` seconds (the first at
    the first pause) and ends with :class:`DeploymentCancelledError` as soon as the engine has cancelled."""

    def __init__(
        self, cancelled: threading.Event, report: Callable[[str], None], every: float = PROGRESS_EVERY
    ) -> None:
        self.cancelled, self.report, self.every = cancelled, report, every

    def sleeper(self, what: str) -> Callable[[float], None]:
        start = time.monotonic()
        next_report = [start]

        def sleep(seconds: float) -> None:
            now = time.monotonic()
            if now >= next_report[0]:
                self.report(f"{what}: {elapsed(now - start)} so far")
                next_report[0] = now + self.every
            if self.cancelled.is_set() or self.cancelled.wait(seconds):
                raise DeploymentCancelledError("the deployment was cancelled")

        return sleep


# --- the provider -----------------------------------------------------------------------------------------


class Config:
    """The provider configuration (``imm:*``). Credentials: the keys or profile given here, else the runtime's
    chain (environment, aliyun CLI profiles, ECS role...), chosen on first use (a preview never needs them)."""

    def __init__(self, values: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> None:
        values = {k: v for k, v in (values or {}).items() if v not in (None, "")}
        env = os.environ if env is None else env
        self.region: str | None = values.get("region") or REGION.from_env(env)
        self.endpoint: str | None = values.get("endpoint")
        # The credential settings this provider takes, read as the runtime reads pulumi-alicloud's.
        given = {f"alicloud:{camel(k)}": values.get(k) for k in CREDENTIAL_SETTINGS}
        self.settings = CredentialSettings.from_config(given.get, "imm provider config")
        self.source = LazyCredentials(lambda: resolve_provider(settings=self.settings))

    def where(self) -> dict[str, Any]:
        return {"region": self.region, "endpoint": self.endpoint}


def _kind(value: Any) -> str:
    """What a value is, for a message that must not show the value itself (it may be a secret)."""
    names = {bool: "true/false", str: "a string", int: "a number", float: "a number", list: "a list", dict: "a map"}
    return names.get(type(value), type(value).__name__)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


TYPE_RULES: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "must be a string"),
    "boolean": (lambda v: isinstance(v, bool), "must be true or false"),
    "integer": (lambda v: _number(v) and float(v).is_integer(), "must be a whole number"),
    "number": (_number, "must be a number"),
    "map": (
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "must be a map of strings (key: value)",
    ),
}
"""The schema's property types as Check enforces them (a value of another type is a CheckFailure naming the
property, before the core sees it). Unknown values (previews) are not judged."""


def typed(props: Mapping[str, Any], types: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``props`` without the values of the wrong type, and a (property, reason) for each of them."""
    kept, failures = {}, []
    for key, value in props.items():
        if value is None or value == UNKNOWN or key not in types:
            kept[key] = value
            continue
        accepts, rule = TYPE_RULES[types[key]]
        if accepts(value):
            kept[key] = value
        else:
            failures.append((key, f"{rule}; got {_kind(value)}"))
    return kept, failures


def _given(value: Any) -> bool:
    return value not in (None, "")


class ImmResourceProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, engine: str | None = None) -> None:
        self.engine = engine
        self.version = package_version()
        self.config = Config()
        schema = package_schema(self.version)
        schema["resources"][COMPONENT_TYPE] = component_schema()
        self._schema = json.dumps(schema)
        self._construct = ConstructServicer(FaceClusteringProvider(self.version, self._schema), [], engine or "")
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="imm-provider")
        self.cancelled = threading.Event()
        self.log = EngineLog(engine)

    def core(self, urn: str, redact: Redactor = Redactor()) -> tuple[ResourceSpec, ImmCrud]:  # noqa: B008
        spec = BY_TOKEN.get(resource_type(urn))
        if spec is None:
            raise ProviderError(
                f"unknown resource type {resource_type(urn)!r}; this provider serves {', '.join(sorted(BY_TOKEN))}"
            )
        pauses = EnginePauses(self.cancelled, lambda message: self.log.status(urn, redact(message)))
        return spec, spec.crud(self.config.source, pauses=pauses)

    async def _run(self, context: grpc.aio.ServicerContext, fn: Callable[[], T], redact: Redactor) -> T:
        """Run blocking core work on the provider's own pool; a failure becomes the RPC's error, its message
        shown (secret inputs hidden)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn)
        except InitFailedError as exc:
            await context.abort_with_status(exc.status(redact))
        except (ProviderError, ImmFacesError) as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, redact(str(exc)))
        except Exception as exc:  # a bug: still no secret in the message, and no traceback for the user
            await context.abort(grpc.StatusCode.UNKNOWN, redact(f"imm provider: {type(exc).__name__}: {exc}"))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- plugin and provider configuration

    async def GetPluginInfo(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=self.version)

    async def GetSchema(self, request: provider_pb2.GetSchemaRequest, context: Any) -> provider_pb2.GetSchemaResponse:
        return provider_pb2.GetSchemaResponse(schema=self._schema)

    async def CheckConfig(self, request: provider_pb2.CheckRequest, context: Any) -> provider_pb2.CheckResponse:
        news, secret = from_struct(request.news)
        redact = Redactor(news, secret)
        failures = [
            (key, "not a setting of the imm provider")
            for key in sorted(set(news) - {p.name for p in CONFIG} - {"version"})
        ]
        news, wrong = typed(news, {p.name: p.type for p in CONFIG})
        failures += wrong
        checks: tuple[tuple[str, Callable[[Any], Any]], ...] = (("region", check_region), ("endpoint", check_endpoint))
        for key, check in checks:
            value = news.get(key)
            if _given(value) and value != UNKNOWN:
                try:
                    check(value)
                except ValueError as exc:
                    failures.append((key, str(exc)))
        keys = {k: _given(news.get(k)) for k in ("access_key", "secret_key", "security_token")}
        if keys["access_key"] != keys["secret_key"]:
            missing, given = ("secret_key", "access_key") if keys["access_key"] else ("access_key", "secret_key")
            failures.append((missing, f"is required with `{camel(given)}` (an AccessKey is an ID and a secret)"))
        elif keys["security_token"] and not keys["access_key"]:
            failures.append(("security_token", "goes with `accessKey` and `secretKey` (the STS AccessKey it signs)"))
        return provider_pb2.CheckResponse(
            inputs=request.news,
            failures=[provider_pb2.CheckFailure(property=camel(k), reason=redact(r)) for k, r in failures],
        )

    async def DiffConfig(self, request: provider_pb2.DiffRequest, context: Any) -> provider_pb2.DiffResponse:
        olds, _ = from_struct(request.olds)
        news, _ = from_struct(request.news)
        changed = sorted(
            camel(k) for k in set(olds) | set(news) if not same(k, olds.get(k), news.get(k)) and k != "version"
        )
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if changed else provider_pb2.DiffResponse.DIFF_NONE,
            diffs=changed,
        )

    async def Configure(self, request: provider_pb2.ConfigureRequest, context: Any) -> provider_pb2.ConfigureResponse:
        if request.HasField("args"):
            values, _ = from_struct(request.args)
        else:  # older engines: "imm:config:region" -> "region"
            values = {snake(k.rsplit(":", 1)[-1]): v for k, v in request.variables.items()}
        try:
            self.config = Config(values)
        except ImmFacesError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=False, acceptOutputs=False
        )

    # --- resources

    async def Check(self, request: provider_pb2.CheckRequest, context: Any) -> provider_pb2.CheckResponse:
        spec, core = await self._resolve(request.urn, context)
        news, secret = from_struct(request.news)
        redact = Redactor(news, secret)
        failures = [(k, f"not an input of {spec.token}") for k in sorted(set(news) - spec.input_names())]
        news = {k: v for k, v in news.items() if k in spec.input_names()}
        news, wrong = typed(news, {p.name: p.type for p in spec.inputs})
        failures += wrong
        for key, value in self.config.where().items():
            if news.get(key) is None and value is not None:
                news[key] = value
        if isinstance(core, ClusteringTaskCrud) and not news.get("owner"):
            news["owner"] = owner_from_urn(request.urn)
        missing = [k for k in spec.required_inputs if not _given(news.get(k)) and k not in dict(wrong)]
        failures += [(k, "is required") for k in missing]
        inputs, problems = core.check({k: v for k, v in news.items() if k not in missing})  # said once
        failures += [(f.property, f.reason) for f in problems]
        if inputs.get("region") is None:
            failures.append(
                ("region", f"no region: set the provider's `imm:region` (or {REGION.env[0]}) or this input")
            )
        return provider_pb2.CheckResponse(
            inputs=to_struct(inputs, secret),
            failures=[provider_pb2.CheckFailure(property=camel(k), reason=redact(r)) for k, r in failures],
        )

    async def Diff(self, request: provider_pb2.DiffRequest, context: Any) -> provider_pb2.DiffResponse:
        _, core = await self._resolve(request.urn, context)
        olds, _ = from_struct(request.olds)
        news, _ = from_struct(request.news)
        plan = core.diff(olds, news)
        kind = provider_pb2.PropertyDiff
        detailed = {
            camel(k): kind(kind=kind.UPDATE_REPLACE if k in plan.replaces else kind.UPDATE, inputDiff=True)
            for k in plan.changed
        }
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if plan.changes else provider_pb2.DiffResponse.DIFF_NONE,
            replaces=[camel(k) for k in plan.replaces],
            deleteBeforeReplace=plan.delete_before_replace,
            diffs=[camel(k) for k in plan.changed],
            detailedDiff=detailed,
            hasDetailedDiff=True,
        )

    @staticmethod
    def _unknown_outputs(spec: ResourceSpec, props: Mapping[str, Any]) -> dict[str, Any]:
        """What a preview says: the inputs as given, everything IMM decides not known yet."""
        return {**{p.name: UNKNOWN for p in spec.outputs}, **props}

    async def Create(self, request: provider_pb2.CreateRequest, context: Any) -> provider_pb2.CreateResponse:
        props, secret = from_struct(request.properties)
        redact = Redactor(props, secret)
        spec, core = await self._resolve(request.urn, context, redact)
        if request.preview:
            return provider_pb2.CreateResponse(properties=to_struct(self._unknown_outputs(spec, props), secret))

        def create() -> Any:
            try:
                return core.create(props)
            except PartialCreateError as exc:
                raise InitFailedError(exc, props, secret) from None

        created = await self._run(context, create, redact)
        return provider_pb2.CreateResponse(id=created.id, properties=to_struct(created.outs, secret))

    async def Read(self, request: provider_pb2.ReadRequest, context: Any) -> provider_pb2.ReadResponse:
        props, secret = from_struct(request.properties)
        inputs, secret_inputs = from_struct(request.inputs)
        secret |= secret_inputs
        redact = Redactor({**inputs, **props}, secret)
        spec, core = await self._resolve(request.urn, context, redact)
        if not props and not inputs:  # `pulumi import`: the id is all there is
            seen = await self._run(context, lambda: core.import_(request.id, self.config.where()), redact)
        else:
            seen = await self._run(context, lambda: core.read(request.id, props or inputs), redact)
        if not seen.id:
            return provider_pb2.ReadResponse()  # gone: no id, no properties
        new_inputs = {k: v for k, v in (seen.inputs or inputs).items() if k in spec.input_names()}
        return provider_pb2.ReadResponse(
            id=seen.id, properties=to_struct(seen.outs, secret), inputs=to_struct(new_inputs, secret)
        )

    async def Update(self, request: provider_pb2.UpdateRequest, context: Any) -> provider_pb2.UpdateResponse:
        olds, old_secret = from_struct(request.olds)
        news, secret = from_struct(request.news)
        redact = Redactor({**olds, **news}, secret | old_secret)
        spec, core = await self._resolve(request.urn, context, redact)
        if request.preview:
            kept = {p.name: olds.get(p.name, UNKNOWN) for p in spec.outputs}
            if isinstance(core, ManagedObject):
                kept.update({k: UNKNOWN for k in core.reported if k != "create_time"})
            return provider_pb2.UpdateResponse(properties=to_struct({**kept, **news}, secret))

        def update() -> dict[str, Any]:
            try:
                return core.update(request.id, olds, news)
            except PartialCreateError as exc:
                raise InitFailedError(exc, news, secret) from None

        outs = await self._run(context, update, redact)
        return provider_pb2.UpdateResponse(properties=to_struct(outs, secret))

    async def Delete(self, request: provider_pb2.DeleteRequest, context: Any) -> empty_pb2.Empty:
        props, secret = from_struct(request.properties)
        redact = Redactor(props, secret)
        _, core = await self._resolve(request.urn, context, redact)
        await self._run(context, lambda: core.delete(request.id, props), redact)
        return empty_pb2.Empty()

    async def Construct(self, request: provider_pb2.ConstructRequest, context: Any) -> provider_pb2.ConstructResponse:
        """The component, through the SDK's own Construct servicer (it runs the Python program side of it)."""
        try:
            response: provider_pb2.ConstructResponse = await self._construct.Construct(request, context)
        except Exception as exc:  # the SDK appends the Python stack to the message: the first line is the error
            await context.abort(grpc.StatusCode.UNKNOWN, str(exc).split(":\n", 1)[0])
        return response

    async def Cancel(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        """Every wait ends now (and any later one at its first pause): its object is recorded as partially
        created, and the next `up` resumes it. The engine sends this on Ctrl-C and before it closes the plugin."""
        self.cancelled.set()
        return empty_pb2.Empty()

    async def _resolve(
        self, urn: str, context: grpc.aio.ServicerContext, redact: Redactor | None = None
    ) -> tuple[ResourceSpec, ImmCrud]:
        try:
            return self.core(urn, redact if redact is not None else Redactor())
        except ProviderError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise AssertionError("unreachable")  # pragma: no cover


# --- the process ------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The engine's command line: ``[--logtostderr] [-v=N] [--tracing EP] <engine address>`` (the SDK's own
    parser takes a ``--tracing`` endpoint for the engine address, so this one is ours)."""
    parser = argparse.ArgumentParser(prog="pulumi-resource-imm", description="The imm Pulumi resource provider.")
    parser.add_argument("engine", nargs="?", default=None, help="the Pulumi engine's gRPC address")
    parser.add_argument("--logtostderr", action="store_true")
    parser.add_argument("--logflow", action="store_true")
    parser.add_argument("-v", "--verbose", default=None)
    parser.add_argument("--tracing", default=None)
    parser.add_argument("--root", default=None)
    args, _unknown = parser.parse_known_args(argv)
    return args


async def serve(engine: str | None, announce: Callable[[int], None]) -> None:
    # The SDK's registrations of a constructed component's children run on the default executor; see SDK_WORKERS.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(SDK_WORKERS, thread_name_prefix="imm-sdk"))
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(ImmResourceProvider(engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    announce(port)
    await server.wait_for_termination()


def _announce(port: int) -> None:
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.engine, _announce))


if __name__ == "__main__":
    main()
