"""Explicit credential settings: pulumi-alicloud's ``alicloud:*`` keys as a stack (or a provider's config) holds
them, read into :class:`CredentialSettings`. Which keys there are is :mod:`.config`'s table; what an object key
(``alicloud:assumeRole``, ``alicloud:assumeRoleWithOidc``) holds is the member tables here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from imm_faces.runtime.auth.config import CONFIG_KEYS, SETTINGS
from imm_faces.runtime.auth.credentials import Hidden, hide
from imm_faces.runtime.errors import ConfigError


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
    token: str | Hidden | None = field(default=None, repr=False)  # kept hidden (see __post_init__)
    session_name: str | None = None
    duration: int | None = None
    policy: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", hide(self.token))

    def __reduce__(self) -> NoReturn:
        raise TypeError("OIDC settings cannot be pickled: they may hold a token")


Kind = Literal["required", "text", "seconds"]
Member = tuple[str, str, Kind]
"""One member of an object setting: the dataclass field, the member's name, its kind."""
_ROLE_ARN: Member = ("role_arn", "roleArn", "required")
_DURATION: Member = ("duration", "sessionExpiration", "seconds")
_POLICY: Member = ("policy", "policy", "text")
ASSUME_ROLE_MEMBERS: tuple[Member, ...] = (
    _ROLE_ARN,
    ("session_name", "sessionName", "text"),
    ("external_id", "externalId", "text"),
    _DURATION,
    _POLICY,
)
"""``alicloud:assumeRole``'s members (:class:`AssumeRole`'s fields)."""
OIDC_ROLE_MEMBERS: tuple[Member, ...] = (
    _ROLE_ARN,
    ("provider_arn", "oidcProviderArn", "required"),
    ("token_file", "oidcTokenFile", "text"),
    ("token", "oidcToken", "text"),
    ("session_name", "roleSessionName", "text"),
    _DURATION,
    _POLICY,
)
"""``alicloud:assumeRoleWithOidc``'s members (:class:`OidcRole`'s fields)."""


@dataclass(frozen=True)
class CredentialSettings:
    """Explicit credential settings: pulumi-alicloud's ``alicloud:*`` keys (see :meth:`from_config`)."""

    access_key_id: str | None = None
    access_key_secret: str | Hidden | None = field(default=None, repr=False)  # kept hidden (see __post_init__)
    security_token: str | Hidden | None = field(default=None, repr=False)
    profile: str | None = None
    shared_credentials_file: str | None = None
    assume_role: AssumeRole | None = None
    assume_role_with_oidc: OidcRole | None = None
    ecs_role_name: str | None = None
    credentials_uri: str | None = None
    sts_endpoint: str | None = None
    label: str = "explicit arguments"

    def __post_init__(self) -> None:
        # Secrets are held as Hidden: repr and vars() show <redacted>, dataclasses.asdict and pickle refuse.
        object.__setattr__(self, "access_key_secret", hide(self.access_key_secret))
        object.__setattr__(self, "security_token", hide(self.security_token))

    def __reduce__(self) -> NoReturn:
        raise TypeError("credential settings cannot be pickled: they may hold a secret")

    @classmethod
    def from_config(cls, get: Callable[[str], Any], label: str = "stack config") -> CredentialSettings:
        """Read pulumi-alicloud's settings with ``get`` (e.g. a dynamic provider's ``req.config.get``; structured
        values may arrive as JSON text). Raises :class:`ConfigError` naming the key and the rule."""
        read = _ConfigReader(get, label)
        # The objects first: of several bad settings, the first one named is the same as it always was.
        assume = read.assume_role()
        oidc = read.oidc_role()
        sts = read.sts_endpoint()
        texts = ("access_key_id", "access_key_secret", "security_token", "profile", "shared_credentials_file")
        return cls(
            **{name: read.text(name) for name in texts},
            assume_role=assume,
            assume_role_with_oidc=oidc,
            ecs_role_name=read.text("ecs_role_name"),
            credentials_uri=read.text("credentials_uri"),
            sts_endpoint=sts,
            label=label,
        )


_UNSET: Any = object()


class _ConfigReader:
    """One config's ``alicloud:*`` settings, read by the name of their row in :data:`~.config.SETTINGS`; every
    error names the key (``<label> alicloud:<key>[.<member>]``) and the rule."""

    def __init__(self, get: Callable[[str], Any], label: str) -> None:
        self._get = get
        self._label = label

    def _key(self, name: str) -> str:
        return SETTINGS[name].config_key or name

    def _error(self, key: str, rule: str) -> ConfigError:
        return ConfigError(f"{self._label} {key}: {rule}")

    def text(self, name: str) -> str | None:
        key = self._key(name)
        value = self._get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self._error(key, "must be a string")
        return str(value)

    def _decoded(self, key: str, expected: str) -> Any:
        """The setting, decoded when it arrives as JSON text; :data:`_UNSET` when it is not set."""
        value = self._get(key)
        if value is None or value == "":
            return _UNSET
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise self._error(key, f"must be {expected}") from None
        return value

    def _object(self, name: str) -> dict[str, Any] | None:
        key = self._key(name)
        value = self._decoded(key, "an object (got text that is not JSON)")
        if value is _UNSET:
            return None
        if not isinstance(value, dict):
            raise self._error(key, "must be an object")
        return value

    def _members(self, name: str, data: dict[str, Any], members: tuple[Member, ...]) -> dict[str, Any]:
        key = self._key(name)
        return {attr: self._member(f"{key}.{member}", data.get(member), kind) for attr, member, kind in members}

    def _member(self, key: str, value: Any, kind: Kind) -> Any:
        if value is None or value == "":
            if kind == "required":
                raise self._error(key, "is required")
            return None
        if kind == "seconds":
            try:
                return int(value)
            except (TypeError, ValueError):
                raise self._error(key, "must be a whole number of seconds") from None
        if not isinstance(value, str):
            raise self._error(key, "must be a string")
        return value

    def assume_role(self) -> AssumeRole | None:
        data = self._object("assume_role")
        return None if data is None else AssumeRole(**self._members("assume_role", data, ASSUME_ROLE_MEMBERS))

    def oidc_role(self) -> OidcRole | None:
        data = self._object("assume_role_with_oidc")
        if data is None:
            return None
        oidc = OidcRole(**self._members("assume_role_with_oidc", data, OIDC_ROLE_MEMBERS))
        if not (oidc.token or oidc.token_file):
            raise self._error(self._key("assume_role_with_oidc"), "set oidcToken or oidcTokenFile")
        return oidc

    def sts_endpoint(self) -> str | None:
        """The ``sts`` entry of ``alicloud:endpoints`` (the last one, when several name it)."""
        entries = self._decoded(self._key("sts_endpoint"), "a list of objects")
        found = None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("sts"), str) and entry["sts"]:
                found = entry["sts"]
        return found


def config_keys_present(get: Callable[[str], Any]) -> tuple[str, ...]:
    """Which of :data:`~.config.CONFIG_KEYS` are set (names only, never values)."""
    return tuple(k for k in CONFIG_KEYS if get(k) not in (None, ""))
