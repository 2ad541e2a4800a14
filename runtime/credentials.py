"""Where credentials come from: one chain for the IMM providers and for ``imm-faces verify``.

The order (first source that applies wins; it matches pulumi-alicloud's, see the Terraform provider's
"Authentication" page, where the two overlap):

1. **Explicit settings**: arguments, or the stack's ``alicloud:accessKey`` / ``alicloud:secretKey`` /
   ``alicloud:securityToken``; else ``alicloud:assumeRoleWithOidc`` (AssumeRoleWithOIDC with its
   ``oidcToken`` or ``oidcTokenFile``); else ``alicloud:ecsRoleName`` (the ECS instance role).
2. **Environment AK/STS**: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` /
   ``ALIBABA_CLOUD_SECURITY_TOKEN``, then pulumi-alicloud's ``ALICLOUD_ACCESS_KEY`` / ``ALICLOUD_SECRET_KEY`` /
   ``ALICLOUD_SECURITY_TOKEN``.
3. **Environment OIDC** (RRSA, CI): ``ALIBABA_CLOUD_ROLE_ARN`` + ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN`` +
   ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` (all three, or it is an error), ``ALIBABA_CLOUD_ROLE_SESSION_NAME``.
4. **aliyun CLI profile** in ``~/.aliyun/config.json`` (``alicloud:sharedCredentialsFile``,
   ``ALICLOUD_SHARED_CREDENTIALS_FILE`` or ``ALIBABA_CLOUD_CONFIG_FILE`` name another file): the profile named by
   ``alicloud:profile`` / ``--profile``, else ``ALIBABA_CLOUD_PROFILE`` / ``ALICLOUD_PROFILE``, else the file's
   ``current``, else ``default``. Modes: ``AK``, ``StsToken``, ``RamRoleArn``, ``EcsRamRole``, ``OIDC``,
   ``ChainableRamRoleArn`` (every mode that needs no browser or external program).
5. **ECS instance role** named by ``ALIBABA_CLOUD_ECS_METADATA`` / ``ALICLOUD_ECS_ROLE_NAME``: the metadata
   service, asked for an IMDSv2 token first (IMDSv1 only when that fails and ``ALIBABA_CLOUD_IMDSV1_DISABLED``
   is not ``true``). The metadata service is never probed without a role name (pulumi-alicloud does not either):
   off ECS that would cost a connect timeout on every run.
6. **Credentials URI**: ``alicloud:credentialsUri`` / ``ALIBABA_CLOUD_CREDENTIALS_URI`` (a sidecar answering the
   metadata service's JSON document).

Then, **on top of whichever source was found**, ``alicloud:assumeRole`` (``roleArn``, ``sessionName``,
``externalId``, ``sessionExpiration``, ``policy``), else ``ALICLOUD_ASSUME_ROLE_ARN`` (with
``ALICLOUD_ASSUME_ROLE_SESSION_NAME`` / ``ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION``): AssumeRole signed by that
source, as pulumi-alicloud does, so the RAM resources it creates and the IMM resources land in the same account.

STS is ``alicloud:endpoints[].sts``, ``ALIBABA_CLOUD_STS_ENDPOINT`` / ``ALICLOUD_STS_ENDPOINT``, else
``sts[-vpc].<ALIBABA_CLOUD_STS_REGION>.aliyuncs.com`` (``-vpc`` with ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true``),
else ``sts.aliyuncs.com``.

Temporary credentials (every source but a fixed AccessKey or STS token) are a :class:`RefreshingCredentials`:
fetched on first use and again before they expire (a quarter of their lifetime ahead, at most 15 minutes),
so a long clustering wait never signs with an expired token. If a refresh fails while the current set is still
valid, the current set is used and the refresh is tried again on the next request.

When nothing applies, :class:`CredentialsNotFoundError` lists what was tried. No secret, token or OIDC token is
ever part of a repr, a str, a log line, an exception message or a pickle.

Why not Alibaba's ``alibabacloud-credentials`` package (read: 1.0.12, a dependency of the official SDK), whose
``DefaultCredentialsProvider`` implements most of this chain: (a) its STS calls hard-code ``https`` and the
``host`` header, so they cannot be pointed at a loopback STS, and the chain could not be tested end to end;
(b) importing it pulls in Tea, requests, aiohttp and APScheduler (about 0.3 s here), and every
``EcsRamRoleCredentialsProvider`` starts an APScheduler thread; (c) it attaches its own ``StreamHandler`` to
the ``credentials`` logger at import time and logs refresh failures with STS's answer, past our redaction;
(d) its order (env, OIDC, CLI profile, ``~/.alibabacloud/credentials.ini``, ECS probe, URI) is not
pulumi-alicloud's, and it has no assume-role on top of an arbitrary source nor the ``alicloud:*`` settings.
What it does and we follow: the environment variable names, the CLI profile modes and fields, the metadata
service's IMDSv2 token header and TTL, the credentials-URI document, and the refresh before expiry.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.redaction import MASK, REDACTOR, secret_forms
from imm_faces.runtime.rules import whole_number

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("imm_faces.credentials")

CLI_CONFIG_PATH = Path("~/.aliyun/config.json")
ENV_NAMES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN")
"""The environment variables Alibaba's tools read (the SDK, the aliyun CLI, the Terraform provider)."""
LEGACY_ENV_NAMES = ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN")
OIDC_ENV_NAMES = ("ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE")
CLI_MODES = ("AK", "StsToken", "RamRoleArn", "EcsRamRole", "OIDC", "ChainableRamRoleArn")
ECS_METADATA_URL = "http://100.100.100.200"
"""The ECS metadata service. Only tests point :func:`resolve_provider` elsewhere (its ``metadata_url``)."""
METADATA_TOKEN_TTL = 21600
METADATA_SECONDS = 5.0  # each exchange with the metadata service, whole (wall-clock, see runtime/bounded.py)
CREDENTIALS_URI_SECONDS = 10.0  # the exchange with a credentials URI, whole
MAX_ANSWER_BYTES = 64 * 1024  # a credentials document is about 2 KB; a larger answer is refused, never read whole
REFRESH_MARGIN = 15 * 60
DEFAULT_SESSION_NAME = "imm-faces"

CONFIG_KEYS = (
    "alicloud:accessKey", "alicloud:secretKey", "alicloud:securityToken", "alicloud:profile",
    "alicloud:sharedCredentialsFile", "alicloud:assumeRole", "alicloud:assumeRoleWithOidc", "alicloud:ecsRoleName",
    "alicloud:credentialsUri",
)  # fmt: skip
"""The stack settings (pulumi-alicloud's) that decide which credentials are used."""


class NotTextError(ConfigError, ValueError):
    """A key, secret or token that is not text: it came with a byte that is not UTF-8 (Python keeps such a byte of
    an environment variable or argument as a lone surrogate, which no signature can encode)."""


def _is_text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class Credentials:
    """An AccessKey pair, optionally with an STS token. ``source`` says where it was found.

    Immutable and comparable. The secret and the token are never shown: not by ``repr``/``str``, and
    ``vars()``, ``dataclasses.asdict`` and ``pickle`` refuse the object (it has no ``__dict__``, is not a
    dataclass, and cannot be pickled), so a secret cannot leave through a debugger dump or a serialised state.
    """

    __slots__ = ("_secret", "_token", "access_key_id", "expiration", "source")

    access_key_id: str
    source: str
    expiration: float | None
    _secret: _Hidden
    _token: _Hidden | None

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        source: str = "explicit arguments",
        expiration: float | None = None,
    ) -> None:
        for what, value in (("AccessKey id", access_key_id), ("AccessKey secret", access_key_secret),
                            ("security token", security_token)):  # fmt: skip
            if value is not None and not _is_text(value):
                raise NotTextError(f"{source}: the {what} holds a byte that is not UTF-8 text; set it again")
        set_ = object.__setattr__
        set_(self, "access_key_id", access_key_id)
        set_(self, "_secret", _Hidden(access_key_secret))
        set_(self, "_token", _Hidden(security_token) if security_token else None)
        set_(self, "source", source)
        set_(self, "expiration", expiration)  # epoch seconds, for temporary credentials

    @property
    def access_key_secret(self) -> str:
        return self._secret.value

    @property
    def security_token(self) -> str | None:
        return self._token.value if self._token else None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Credentials are immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Credentials are immutable; cannot delete {name!r}")

    def _key(self) -> tuple[str, str, str | None, str]:
        return (self.access_key_id, self.access_key_secret, self.security_token, self.source)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> NoReturn:
        raise TypeError("Credentials cannot be pickled: they hold a secret (resolve them again where needed)")

    def __copy__(self) -> Credentials:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Credentials:
        return self

    def __repr__(self) -> str:
        sts = ", security_token=<redacted>" if self._token else ""
        return (
            f"Credentials(access_key_id={self.access_key_id!r}, access_key_secret=<redacted>{sts}, "
            f"source={self.source!r})"
        )

    __str__ = __repr__

    def environment(self) -> dict[str, str]:
        """These credentials as the ``ALIBABA_CLOUD_*`` variables (for a child process that resolves its own)."""
        values = (self.access_key_id, self.access_key_secret, self.security_token)
        return {name: value for name, value in zip(ENV_NAMES, values, strict=True) if value}

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown (for redaction filters)."""
        return tuple(s for s in (self.access_key_secret, self.security_token) if s)

    # The CredentialSource protocol: a fixed set is its own source.
    def get(self) -> Credentials:
        return self

    def due(self) -> bool:
        return False


class _Hidden:
    """A secret string whose repr, str and pickle never reveal it (read it with ``.value``)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a secret cannot be pickled")


class CredentialsNotFoundError(ConfigError):
    """No source held a complete set of credentials."""


class CredentialSource(Protocol):
    """What a client signs with: :class:`Credentials` (fixed) or :class:`RefreshingCredentials`."""

    def get(self) -> Credentials:
        """The credentials to sign the next request with (fetched or refreshed when needed)."""
        ...

    def due(self) -> bool:
        """Whether :meth:`get` would fetch now (an async caller then calls it off the event loop)."""
        ...

    def secrets(self) -> tuple[str, ...]: ...


class RefreshingCredentials:
    """Temporary credentials from ``fetch``, fetched on first use and again before they expire.

    Thread-safe: one fetch at a time. Each new set's secrets are registered with the process-wide redactor
    before anything can print them. Cannot be pickled (it holds a secret).
    """

    __slots__ = ("_clock", "_current", "_fetch", "_lock", "_refresh_at", "source")

    def __init__(self, fetch: Callable[[], Credentials], source: str, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self.source = source
        self._clock = clock
        self._current: Credentials | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        return self._current is None or self._clock() >= self._refresh_at

    def get(self) -> Credentials:
        with self._lock:
            if not self.due():
                return self._current  # type: ignore[return-value]  # due() is False only with a current set
            fetched_at = self._clock()
            try:
                fresh = self._fetch()
            except ConfigError as exc:
                current = self._current
                if current is not None and (current.expiration is None or fetched_at < current.expiration - 5):
                    log.warning("refreshing credentials (%s) failed; using the current ones: %s", self.source, exc)
                    return current
                raise
            REDACTOR.add(fresh.secrets())
            expires = fresh.expiration
            if expires is None:
                self._refresh_at = float("inf")
            else:
                margin = min(REFRESH_MARGIN, max(1.0, (expires - fetched_at) / 4))
                self._refresh_at = expires - margin
            self._current = fresh
            return fresh

    def secrets(self) -> tuple[str, ...]:
        return self._current.secrets() if self._current is not None else ()

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials cannot be pickled: they hold a secret (resolve them again where needed)")

    def __repr__(self) -> str:
        return f"RefreshingCredentials(source={self.source!r})"


class LazyCredentials:
    """A source chosen on first use by ``choose`` (e.g. :func:`resolve_provider` with given settings), so that
    work that never calls the service (a preview's check and diff) never needs credentials. A failure to choose
    is raised by that first use, and again by the next (nothing is cached but success)."""

    __slots__ = ("_choose", "_lock", "_source")

    def __init__(self, choose: Callable[[], CredentialSource]) -> None:
        self._choose = choose
        self._source: CredentialSource | None = None
        self._lock = threading.Lock()

    def _chosen(self) -> CredentialSource:
        with self._lock:
            if self._source is None:
                self._source = self._choose()
            return self._source

    def get(self) -> Credentials:
        return self._chosen().get()

    def due(self) -> bool:
        return self._source is None or self._source.due()

    def secrets(self) -> tuple[str, ...]:
        return self._source.secrets() if self._source is not None else ()

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials cannot be pickled: they hold a secret (resolve them again where needed)")

    def __repr__(self) -> str:
        return f"LazyCredentials(source={getattr(self._source, 'source', 'not chosen yet')!r})"


def redact(text: str, credentials: CredentialSource | None) -> str:
    """Replace any secret of ``credentials`` that appears in ``text``, in any of its :func:`secret_forms`."""
    if credentials is None:
        return text
    for secret in credentials.secrets():
        for form in sorted(secret_forms(secret), key=len, reverse=True):  # longest first: no partial leftovers
            text = text.replace(form, MASK)
    return text


# ---------------------------------------------------------------------------------------------- settings


def _hide(value: str | _Hidden | None) -> _Hidden | None:
    return _Hidden(value) if isinstance(value, str) and value else (value or None)


def _reveal(value: str | _Hidden | None) -> str | None:
    return value.value if isinstance(value, _Hidden) else value


@dataclass(frozen=True)
class AssumeRole:
    """``alicloud:assumeRole`` (or an aliyun CLI RamRoleArn profile): AssumeRole on top of another source."""

    role_arn: str
    session_name: str | None = None
    external_id: str | None = None
    duration: int | None = None
    policy: str | None = None


@dataclass(frozen=True)
class OidcRole:
    """``alicloud:assumeRoleWithOidc`` (or the OIDC environment, or an OIDC profile)."""

    role_arn: str
    provider_arn: str
    token_file: str | None = None
    token: str | _Hidden | None = field(default=None, repr=False)  # kept hidden (see __post_init__)
    session_name: str | None = None
    duration: int | None = None
    policy: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _hide(self.token))

    def __reduce__(self) -> NoReturn:
        raise TypeError("OIDC settings cannot be pickled: they may hold a token")


@dataclass(frozen=True)
class CredentialSettings:
    """Explicit credential settings: pulumi-alicloud's ``alicloud:*`` keys (see :meth:`from_config`)."""

    access_key_id: str | None = None
    access_key_secret: str | _Hidden | None = field(default=None, repr=False)  # kept hidden (see __post_init__)
    security_token: str | _Hidden | None = field(default=None, repr=False)
    profile: str | None = None
    shared_credentials_file: str | None = None
    assume_role: AssumeRole | None = None
    assume_role_with_oidc: OidcRole | None = None
    ecs_role_name: str | None = None
    credentials_uri: str | None = None
    sts_endpoint: str | None = None
    label: str = "explicit arguments"

    def __post_init__(self) -> None:
        # Secrets are held as _Hidden: repr and vars() show <redacted>, dataclasses.asdict and pickle refuse.
        object.__setattr__(self, "access_key_secret", _hide(self.access_key_secret))
        object.__setattr__(self, "security_token", _hide(self.security_token))

    def __reduce__(self) -> NoReturn:
        raise TypeError("credential settings cannot be pickled: they may hold a secret")

    @classmethod
    def from_config(cls, get: Callable[[str], Any], label: str = "stack config") -> CredentialSettings:
        """Read pulumi-alicloud's settings with ``get`` (e.g. a dynamic provider's ``req.config.get``; structured
        values may arrive as JSON text). Raises :class:`ConfigError` naming the key and the rule."""

        def text(key: str) -> str | None:
            value = get(f"alicloud:{key}")
            if value is None or value == "":
                return None
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ConfigError(f"{label} alicloud:{key}: must be a string")
            return str(value)

        def obj(key: str) -> dict[str, Any] | None:
            value = get(f"alicloud:{key}")
            if value is None or value == "":
                return None
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise ConfigError(
                        f"{label} alicloud:{key}: must be an object (got text that is not JSON)"
                    ) from None
            if not isinstance(value, dict):
                raise ConfigError(f"{label} alicloud:{key}: must be an object")
            return value

        def member(key: str, data: dict[str, Any], name: str, *, number: bool = False) -> Any:
            value = data.get(name)
            if value is None or value == "":
                return None
            if number:
                try:
                    return int(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{label} alicloud:{key}.{name}: must be a whole number of seconds") from None
            if not isinstance(value, str):
                raise ConfigError(f"{label} alicloud:{key}.{name}: must be a string")
            return value

        def required(key: str, data: dict[str, Any], name: str) -> str:
            value = member(key, data, name)
            if not value:
                raise ConfigError(f"{label} alicloud:{key}.{name}: is required")
            return str(value)

        assume = None
        if (data := obj("assumeRole")) is not None:
            assume = AssumeRole(
                role_arn=required("assumeRole", data, "roleArn"),
                session_name=member("assumeRole", data, "sessionName"),
                external_id=member("assumeRole", data, "externalId"),
                duration=member("assumeRole", data, "sessionExpiration", number=True),
                policy=member("assumeRole", data, "policy"),
            )
        oidc = None
        if (data := obj("assumeRoleWithOidc")) is not None:
            oidc = OidcRole(
                role_arn=required("assumeRoleWithOidc", data, "roleArn"),
                provider_arn=required("assumeRoleWithOidc", data, "oidcProviderArn"),
                token_file=member("assumeRoleWithOidc", data, "oidcTokenFile"),
                token=member("assumeRoleWithOidc", data, "oidcToken"),
                session_name=member("assumeRoleWithOidc", data, "roleSessionName"),
                duration=member("assumeRoleWithOidc", data, "sessionExpiration", number=True),
                policy=member("assumeRoleWithOidc", data, "policy"),
            )
            if not (oidc.token or oidc.token_file):
                raise ConfigError(f"{label} alicloud:assumeRoleWithOidc: set oidcToken or oidcTokenFile")
        sts = None
        endpoints = get("alicloud:endpoints")
        if isinstance(endpoints, str) and endpoints:
            try:
                endpoints = json.loads(endpoints)
            except ValueError:
                raise ConfigError(f"{label} alicloud:endpoints: must be a list of objects") from None
        for entry in endpoints if isinstance(endpoints, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("sts"), str) and entry["sts"]:
                sts = entry["sts"]
        return cls(
            access_key_id=text("accessKey"),
            access_key_secret=text("secretKey"),
            security_token=text("securityToken"),
            profile=text("profile"),
            shared_credentials_file=text("sharedCredentialsFile"),
            assume_role=assume,
            assume_role_with_oidc=oidc,
            ecs_role_name=text("ecsRoleName"),
            credentials_uri=text("credentialsUri"),
            sts_endpoint=sts,
            label=label,
        )


def config_keys_present(get: Callable[[str], Any]) -> tuple[str, ...]:
    """Which of :data:`CONFIG_KEYS` are set (names only, never values)."""
    return tuple(k for k in CONFIG_KEYS if get(k) not in (None, ""))


# ---------------------------------------------------------------------------------------------- sources


@dataclass
class _Context:
    env: Mapping[str, str]
    settings: CredentialSettings
    metadata_url: str
    transport: httpx.BaseTransport | None
    tried: list[str]

    @property
    def sts_endpoint(self) -> str:
        """Computed only for a source that calls STS: plain AccessKeys never import the STS client."""
        return _sts_endpoint(self.settings, self.env)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _sts_endpoint(settings: CredentialSettings, env: Mapping[str, str]) -> str:
    from imm_faces.runtime.sts import sts_endpoint

    explicit = settings.sts_endpoint or env.get("ALIBABA_CLOUD_STS_ENDPOINT") or env.get("ALICLOUD_STS_ENDPOINT")
    region = env.get("ALIBABA_CLOUD_STS_REGION") or None
    return sts_endpoint(explicit or None, region, _truthy(env.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED")))


def _request(model: Any, label: str, **values: Any) -> Any:
    """An STS request model, or a :class:`ConfigError` naming the setting and the rule."""
    from pydantic import ValidationError

    from imm_faces.runtime.operations._base import parameter_error

    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = parameter_error(model, exc)
        raise ConfigError(f"{label}: {err.message}") from None


def _temporary(answer: Any, source: str) -> Credentials:
    creds = answer.credentials if hasattr(answer, "credentials") else answer
    REDACTOR.add((creds.access_key_secret, creds.security_token))
    return Credentials(creds.access_key_id, creds.access_key_secret, creds.security_token, source=source,
                       expiration=creds.expires_at)  # fmt: skip


def assume_role(base: CredentialSource, role: AssumeRole, ctx: _Context, label: str) -> RefreshingCredentials:
    """AssumeRole signed by ``base`` (refreshed before the role's credentials expire)."""
    from imm_faces.runtime.sts import ASSUME_ROLE, AssumeRoleRequest, StsClient

    request = _request(AssumeRoleRequest, label, RoleArn=role.role_arn,
                       RoleSessionName=role.session_name or DEFAULT_SESSION_NAME, DurationSeconds=role.duration,
                       ExternalId=role.external_id, Policy=role.policy)  # fmt: skip
    client = StsClient(ctx.sts_endpoint, transport=ctx.transport)
    source = f"{label}: role {role.role_arn} assumed with {getattr(base, 'source', 'credentials')}"

    def fetch() -> Credentials:
        signer = base.get()
        REDACTOR.add(signer.secrets())  # STS's error answers pass the redactor: it must know the signer's secrets
        return _temporary(client.call(ASSUME_ROLE, request, signer), source)

    return RefreshingCredentials(fetch, source)


def oidc_role(role: OidcRole, ctx: _Context, label: str) -> RefreshingCredentials:
    """AssumeRoleWithOIDC; the token file is read again at every refresh (the platform rotates it)."""
    from imm_faces.runtime.sts import ASSUME_ROLE_WITH_OIDC, AssumeRoleWithOIDCRequest, StsClient

    client = StsClient(ctx.sts_endpoint, transport=ctx.transport)
    source = f"{label}: role {role.role_arn} assumed with an OIDC token"

    def fetch() -> Credentials:
        token = _reveal(role.token)
        if role.token_file:
            try:
                token = Path(role.token_file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{label}: cannot read the OIDC token file {role.token_file} ({exc.strerror})"
                ) from None
        if not token:
            raise ConfigError(f"{label}: the OIDC token is empty")
        REDACTOR.add((token,))
        request = _request(AssumeRoleWithOIDCRequest, label, RoleArn=role.role_arn, OIDCProviderArn=role.provider_arn,
                           OIDCToken=token, RoleSessionName=role.session_name or DEFAULT_SESSION_NAME,
                           DurationSeconds=role.duration, Policy=role.policy)  # fmt: skip
        return _temporary(client.call(ASSUME_ROLE_WITH_OIDC, request, None), source)

    return RefreshingCredentials(fetch, source)


def ecs_role(role_name: str | None, ctx: _Context, label: str) -> RefreshingCredentials:
    """The ECS instance's RAM role from the metadata service: an IMDSv2 token first (PUT /latest/api/token),
    IMDSv1 only when that fails and ``ALIBABA_CLOUD_IMDSV1_DISABLED`` is not true. Without a role name, the
    instance's role is read from the service."""
    import httpx

    from imm_faces.runtime import bounded
    from imm_faces.runtime.sts import MetadataCredentials, StsError, parse_answer

    base = ctx.metadata_url.rstrip("/")
    v1_allowed = not _truthy(ctx.env.get("ALIBABA_CLOUD_IMDSV1_DISABLED"))
    source = f"{label}: ECS instance role {role_name or '(the instance’s)'}"
    path = "/latest/meta-data/ram/security-credentials/"

    def fetch() -> Credentials:
        timeout = httpx.Timeout(METADATA_SECONDS, connect=1.0)
        from imm_faces.runtime.client import tls_context

        def ask(http: httpx.Client, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
            request = http.build_request(method, url, headers=headers)
            return bounded.send(http, request, seconds=METADATA_SECONDS, max_bytes=MAX_ANSWER_BYTES)

        # One connection per request (the watchdog of a bounded exchange watches the connection it opens).
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=timeout, transport=ctx.transport, trust_env=False, verify=tls_context(),
                          limits=limits) as http:  # fmt: skip
            headers: dict[str, str] = {}
            try:
                ttl = {"X-aliyun-ecs-metadata-token-ttl-seconds": str(METADATA_TOKEN_TTL)}
                answer = ask(http, "PUT", base + "/latest/api/token", ttl)
                if answer.status_code == 200 and answer.text.strip():
                    headers["X-aliyun-ecs-metadata-token"] = answer.text.strip()
                elif not v1_allowed:
                    raise StsError(f"{source}: the metadata service gave no IMDSv2 token (HTTP {answer.status_code})"
                                   " and ALIBABA_CLOUD_IMDSV1_DISABLED is true")  # fmt: skip
                role = role_name
                if not role:
                    found = ask(http, "GET", base + path, headers)
                    role = found.text.strip().splitlines()[0] if found.status_code == 200 and found.text.strip() else ""
                    if not role:
                        raise StsError(f"{source}: the instance has no RAM role (HTTP {found.status_code})")
                got = ask(http, "GET", base + path + role, headers)
            except httpx.TransportError as exc:
                raise StsError(f"{source}: cannot reach the ECS metadata service ({bounded.reason(exc)})") from None
        answer_model = parse_answer("ECS metadata", MetadataCredentials, got.status_code, got.content, "the service")
        if answer_model.code != "Success":
            raise StsError(f"{source}: the metadata service answered Code {answer_model.code!r}")
        return _temporary(answer_model, source)

    return RefreshingCredentials(fetch, source)


def credentials_uri(uri: str, ctx: _Context, label: str) -> RefreshingCredentials:
    """A sidecar that answers GET with the metadata service's document (``Code: Success`` and the keys)."""
    import httpx

    from imm_faces.runtime import bounded
    from imm_faces.runtime.client import tls_context
    from imm_faces.runtime.sts import MetadataCredentials, StsError, parse_answer

    shown = httpx.URL(uri).copy_with(query=None, username=None, password=None)
    source = f"{label}: credentials URI {shown}"

    def fetch() -> Credentials:
        try:
            with httpx.Client(timeout=httpx.Timeout(CREDENTIALS_URI_SECONDS, connect=5.0), transport=ctx.transport,
                              trust_env=False, verify=tls_context()) as h:  # fmt: skip
                got = bounded.send(h, h.build_request("GET", uri), seconds=CREDENTIALS_URI_SECONDS,
                                   max_bytes=MAX_ANSWER_BYTES)  # fmt: skip
        except httpx.TransportError as exc:
            raise StsError(f"{source}: unreachable ({bounded.reason(exc)})") from None
        answer = parse_answer("credentials URI", MetadataCredentials, got.status_code, got.content, str(shown))
        if answer.code != "Success":
            raise StsError(f"{source}: answered Code {answer.code!r}")
        return _temporary(answer, source)

    return RefreshingCredentials(fetch, source)


def _from_env(env: Mapping[str, str], names: tuple[str, str, str]) -> Credentials | None:
    key_id, secret, token = (env.get(n) or None for n in names)
    if key_id and secret:
        return Credentials(key_id, secret, token, source=f"environment ({names[0]})")
    return None


def _oidc_from_env(ctx: _Context) -> CredentialSource | None:
    present = [n for n in OIDC_ENV_NAMES if ctx.env.get(n)]
    if not present:
        ctx.tried.append(f"environment {', '.join(OIDC_ENV_NAMES)}: not set")
        return None
    if len(present) < len(OIDC_ENV_NAMES):
        missing = ", ".join(n for n in OIDC_ENV_NAMES if n not in present)
        raise CredentialsNotFoundError(f"OIDC role assumption from the environment is incomplete: {missing} not set")
    role_arn, provider_arn, token_file = (ctx.env[n] for n in OIDC_ENV_NAMES)
    role = OidcRole(role_arn, provider_arn, token_file=token_file,
                    session_name=ctx.env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME") or None)  # fmt: skip
    return oidc_role(role, ctx, "environment (ALIBABA_CLOUD_OIDC_TOKEN_FILE)")


def _profile_source(config: dict[str, Any], name: str, path: Path, ctx: _Context, seen: tuple[str, ...] = ()
                    ) -> CredentialSource:  # fmt: skip
    label = f"aliyun CLI config {path} profile {name!r}"
    profiles = [p for p in config.get("profiles", []) if isinstance(p, dict)]
    match = next((p for p in profiles if p.get("name") == name), None)
    if match is None:
        known = ", ".join(str(p.get("name")) for p in profiles) or "none"
        raise CredentialsNotFoundError(f"aliyun CLI config {path}: no profile {name!r} (profiles: {known})")
    mode = match.get("mode") or "AK"
    label = f"{label} ({mode})"

    def value(key: str) -> str | None:
        got = match.get(key)
        return str(got) if got not in (None, "") else None

    def number(key: str) -> int | None:
        got = match.get(key)
        return int(got) if isinstance(got, int | float) and got else None

    def need(*keys: str) -> None:
        if missing := [k for k in keys if not value(k)]:
            raise CredentialsNotFoundError(f"{label} is incomplete: {', '.join(missing)} not set")

    def role() -> AssumeRole:
        need("ram_role_arn")
        return AssumeRole(value("ram_role_arn") or "", value("ram_session_name"), value("external_id"),
                          number("expired_seconds"), value("policy"))  # fmt: skip

    if mode == "AK":
        need("access_key_id", "access_key_secret")
        return Credentials(value("access_key_id") or "", value("access_key_secret") or "", source=label)
    if mode == "StsToken":
        need("access_key_id", "access_key_secret", "sts_token")
        return Credentials(value("access_key_id") or "", value("access_key_secret") or "", value("sts_token"),
                           source=label)  # fmt: skip
    if mode == "RamRoleArn":
        need("access_key_id", "access_key_secret")
        base = Credentials(value("access_key_id") or "", value("access_key_secret") or "", value("sts_token"),
                           source=label)  # fmt: skip
        return assume_role(base, role(), ctx, label)
    if mode == "EcsRamRole":
        return ecs_role(value("ram_role_name"), ctx, label)
    if mode == "OIDC":
        need("ram_role_arn", "oidc_provider_arn", "oidc_token_file")
        oidc = OidcRole(value("ram_role_arn") or "", value("oidc_provider_arn") or "",
                        token_file=value("oidc_token_file"), session_name=value("role_session_name"),
                        duration=number("expired_seconds"), policy=value("policy"))  # fmt: skip
        return oidc_role(oidc, ctx, label)
    if mode == "ChainableRamRoleArn":
        need("source_profile")
        parent = value("source_profile") or ""
        if parent in (*seen, name):
            raise CredentialsNotFoundError(f"{label}: source_profile {parent!r} makes a loop")
        return assume_role(_profile_source(config, parent, path, ctx, (*seen, name)), role(), ctx, label)
    raise CredentialsNotFoundError(
        f"{label}: mode {mode!r} is not supported (it needs a browser or an external program); supported: "
        f"{', '.join(CLI_MODES)}"
    )


def _from_cli_profile(path: Path, profile: str | None, ctx: _Context) -> CredentialSource | None:
    label = f"aliyun CLI config {path}"
    if not path.is_file():
        ctx.tried.append(f"{label}: no such file")
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{label}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{label}: expected a JSON object at the top level")
    return _profile_source(config, profile or config.get("current") or "default", path, ctx)


def resolve_provider(
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    *,
    profile: str | None = None,
    settings: CredentialSettings | None = None,
    env: Mapping[str, str] | None = None,
    cli_config: Path | None = None,
    metadata_url: str = ECS_METADATA_URL,
    transport: httpx.BaseTransport | None = None,
) -> CredentialSource:
    """Choose the source in the documented order (no network: temporary credentials are fetched on first use).

    ``settings`` are the explicit ``alicloud:*`` settings; the arguments win over them. ``metadata_url`` and
    ``transport`` exist for tests. Raises :class:`CredentialsNotFoundError` listing what was tried."""
    env = os.environ if env is None else env
    settings = settings or CredentialSettings()
    ctx = _Context(env, settings, metadata_url, transport, [])
    label = settings.label
    source: CredentialSource | None = None
    if access_key_id or access_key_secret:
        label = "explicit arguments"
    else:
        access_key_id, access_key_secret = settings.access_key_id, _reveal(settings.access_key_secret)
        security_token = _reveal(settings.security_token)
    if access_key_id or access_key_secret:
        if not (access_key_id and access_key_secret):
            missing = "access_key_secret" if access_key_id else "access_key_id"
            raise CredentialsNotFoundError(f"{label}: explicit credentials are incomplete: {missing} is missing")
        source = Credentials(access_key_id, access_key_secret, security_token or None, source=label)
    elif settings.assume_role_with_oidc is not None:
        source = oidc_role(settings.assume_role_with_oidc, ctx, f"{label} (alicloud:assumeRoleWithOidc)")
    elif settings.ecs_role_name:
        source = ecs_role(settings.ecs_role_name, ctx, f"{label} (alicloud:ecsRoleName)")
    else:
        ctx.tried.append(f"{label}: no access key, OIDC role or ECS role")
        source = _from_environment(settings, profile, cli_config, ctx)
    if source is None:
        raise CredentialsNotFoundError("no Alibaba Cloud credentials found. Tried:\n  - " + "\n  - ".join(ctx.tried))
    return _with_assumed_role(source, settings, ctx)


def _from_environment(settings: CredentialSettings, profile: str | None, cli_config: Path | None, ctx: _Context
                      ) -> CredentialSource | None:  # fmt: skip
    """Steps 2 to 6 of the order."""
    env = ctx.env
    for names in (ENV_NAMES, LEGACY_ENV_NAMES):
        found = _from_env(env, names)
        if found:
            return found
        ctx.tried.append(f"environment {names[0]} and {names[1]}: not both set")
    if oidc := _oidc_from_env(ctx):
        return oidc
    file = (cli_config or settings.shared_credentials_file or env.get("ALICLOUD_SHARED_CREDENTIALS_FILE")
            or env.get("ALIBABA_CLOUD_CONFIG_FILE") or CLI_CONFIG_PATH)  # fmt: skip
    name = profile or settings.profile or env.get("ALIBABA_CLOUD_PROFILE") or env.get("ALICLOUD_PROFILE") or None
    if found_profile := _from_cli_profile(Path(file).expanduser(), name, ctx):
        return found_profile
    role_name = env.get("ALIBABA_CLOUD_ECS_METADATA") or env.get("ALICLOUD_ECS_ROLE_NAME")
    if role_name and not _truthy(env.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED")):
        return ecs_role(role_name, ctx, "environment (ALIBABA_CLOUD_ECS_METADATA)")
    ctx.tried.append("ECS instance role: ALIBABA_CLOUD_ECS_METADATA / ALICLOUD_ECS_ROLE_NAME not set")
    uri = settings.credentials_uri or env.get("ALIBABA_CLOUD_CREDENTIALS_URI")
    if uri:
        where = f"{settings.label} (alicloud:credentialsUri)" if settings.credentials_uri else "environment"
        return credentials_uri(uri, ctx, where)
    ctx.tried.append("credentials URI: alicloud:credentialsUri / ALIBABA_CLOUD_CREDENTIALS_URI not set")
    return None


def _with_assumed_role(source: CredentialSource, settings: CredentialSettings, ctx: _Context) -> CredentialSource:
    role = settings.assume_role
    label = f"{settings.label} (alicloud:assumeRole)"
    if role is None and ctx.env.get("ALICLOUD_ASSUME_ROLE_ARN"):
        text = ctx.env.get("ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION")
        duration = whole_number(text, 2**31) if text else None
        if text and duration is None:
            raise ConfigError("ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION: must be a whole number of seconds")
        role = AssumeRole(ctx.env["ALICLOUD_ASSUME_ROLE_ARN"], ctx.env.get("ALICLOUD_ASSUME_ROLE_SESSION_NAME") or None,
                          duration=duration)  # fmt: skip
        label = "environment (ALICLOUD_ASSUME_ROLE_ARN)"
    return source if role is None else assume_role(source, role, ctx, label)


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    *,
    profile: str | None = None,
    settings: CredentialSettings | None = None,
    env: Mapping[str, str] | None = None,
    cli_config: Path | None = None,
    metadata_url: str = ECS_METADATA_URL,
    transport: httpx.BaseTransport | None = None,
) -> Credentials:
    """:func:`resolve_provider`, then the credentials it gives now (fetching temporary ones)."""
    return resolve_provider(access_key_id, access_key_secret, security_token, profile=profile, settings=settings,
                            env=env, cli_config=cli_config, metadata_url=metadata_url,
                            transport=transport).get()  # fmt: skip
