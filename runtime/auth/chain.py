"""The credential chain: :data:`CHAIN`, an ordered list of named finders, first match wins (after botocore's list
of credential providers). A finder gives a source, or the line it adds to the error listing what was tried;
:func:`resolve_provider` walks the list, then assumes ``alicloud:assumeRole`` (or ``ALICLOUD_ASSUME_ROLE_ARN``) on
top of whichever source was found. The order is pulumi-alicloud's where the two overlap (see
:mod:`imm_faces.runtime.credentials` for the whole of it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from imm_faces.runtime.auth.config import ACCESS_KEY, OIDC_ENV_NAMES, SETTINGS
from imm_faces.runtime.auth.credentials import Credentials, CredentialsNotFoundError, CredentialSource, reveal
from imm_faces.runtime.auth.profiles import Profile, read_config
from imm_faces.runtime.auth.settings import AssumeRole, CredentialSettings, OidcRole
from imm_faces.runtime.auth.sources import (
    ECS_METADATA_URL,
    Context,
    assume_role,
    credentials_uri,
    ecs_role,
    oidc_role,
)
from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.rules import whole_number

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Search:
    """One resolution: the explicit arguments and settings, and where the sources are fetched."""

    ctx: Context
    arguments: tuple[str | None, str | None, str | None]  # access key id, secret, token
    profile: str | None
    cli_config: Path | None

    @property
    def env(self) -> Mapping[str, str]:
        return self.ctx.env

    @property
    def settings(self) -> CredentialSettings:
        return self.ctx.settings


Found = CredentialSource | str
"""What a finder gives: a source, or the line it adds to "Tried:" (it did not apply)."""


@dataclass(frozen=True)
class Finder:
    name: str
    find: Callable[[Search], Found]
    key: str
    """The setting the docs name it by (a stack key, a variable, a file): the README lists the finders in
    :data:`CHAIN`'s order, each with its key (a test holds it to that)."""


def _explicit(search: Search) -> Found:
    """Arguments, else the stack's ``alicloud:accessKey`` / ``secretKey`` / ``securityToken``; else its
    ``alicloud:assumeRoleWithOidc``; else its ``alicloud:ecsRoleName``."""
    settings = search.settings
    key_id, secret, token = search.arguments
    label = "explicit arguments"
    if not (key_id or secret):
        label = settings.label
        key_id, secret = settings.access_key_id, reveal(settings.access_key_secret)
        token = reveal(settings.security_token)
    if key_id or secret:
        if not (key_id and secret):
            missing = "access_key_secret" if key_id else "access_key_id"
            raise CredentialsNotFoundError(f"{label}: explicit credentials are incomplete: {missing} is missing")
        return Credentials(key_id, secret, token or None, source=label)
    if settings.assume_role_with_oidc is not None:
        where = f"{label} ({SETTINGS['assume_role_with_oidc'].config_key})"
        return oidc_role(settings.assume_role_with_oidc, search.ctx, where)
    if settings.ecs_role_name:
        return ecs_role(settings.ecs_role_name, search.ctx, f"{label} ({SETTINGS['ecs_role_name'].config_key})")
    return f"{label}: no access key, OIDC role or ECS role"


def _environment_access_key(search: Search, which: int) -> Found:
    """The AccessKey from the environment variables of column ``which`` of the table (0: ``ALIBABA_CLOUD_*``,
    1: pulumi-alicloud's ``ALICLOUD_*``), the id and the secret both set."""
    names = tuple(s.env[which] for s in ACCESS_KEY)
    key_id, secret, token = (search.env.get(n) or None for n in names)
    if key_id and secret:
        return Credentials(key_id, secret, token, source=f"environment ({names[0]})")
    return f"environment {names[0]} and {names[1]}: not both set"


def _environment_oidc(search: Search) -> Found:
    """AssumeRoleWithOIDC from the three variables (RRSA, CI): all three, or it is an error."""
    present = [n for n in OIDC_ENV_NAMES if search.env.get(n)]
    if not present:
        return f"environment {', '.join(OIDC_ENV_NAMES)}: not set"
    if len(present) < len(OIDC_ENV_NAMES):
        missing = ", ".join(n for n in OIDC_ENV_NAMES if n not in present)
        raise CredentialsNotFoundError(f"OIDC role assumption from the environment is incomplete: {missing} not set")
    role_arn, provider_arn, token_file = (search.env[n] for n in OIDC_ENV_NAMES)
    session_name = SETTINGS["role_session_name"].from_env(search.env)
    role = OidcRole(role_arn, provider_arn, token_file=token_file, session_name=session_name)
    return oidc_role(role, search.ctx, f"environment ({OIDC_ENV_NAMES[2]})")


def _cli_profile(search: Search) -> Found:
    """The aliyun CLI config's profile: ``--profile``, the stack's, the environment's, else the file's current one,
    else ``default``."""
    settings, env = search.settings, search.env
    file = search.cli_config or settings.shared_credentials_file or SETTINGS["shared_credentials_file"].from_env(env)
    path = Path(file or "").expanduser()
    config = read_config(path)
    if config is None:
        return f"aliyun CLI config {path}: no such file"
    name = search.profile or settings.profile or SETTINGS["profile"].from_env(env)
    return Profile(config, name or config.get("current") or "default", path, search.ctx).source()


def _environment_ecs_role(search: Search) -> Found:
    """The ECS instance role named by the environment (the metadata service is never probed without a name)."""
    setting = SETTINGS["ecs_role_name"]
    role_name = setting.from_env(search.env)
    if role_name and not SETTINGS["ecs_metadata_disabled"].enabled(search.env):
        return ecs_role(role_name, search.ctx, f"environment ({setting.env[0]})")
    return f"ECS instance role: {' / '.join(setting.env)} not set"


def _credentials_uri(search: Search) -> Found:
    setting = SETTINGS["credentials_uri"]
    given = search.settings.credentials_uri
    uri = given or setting.from_env(search.env)
    if uri:
        where = f"{search.settings.label} ({setting.config_key})" if given else "environment"
        return credentials_uri(uri, search.ctx, where)
    return f"credentials URI: {' / '.join((setting.config_key or '', *setting.env))} not set"


CHAIN: tuple[Finder, ...] = (
    Finder("explicit settings", _explicit, SETTINGS["access_key_id"].config_key or ""),
    Finder("environment AccessKey", partial(_environment_access_key, which=0), ACCESS_KEY[0].env[0]),
    Finder(
        "environment AccessKey, pulumi-alicloud's names",
        partial(_environment_access_key, which=1),
        ACCESS_KEY[0].env[1],
    ),
    Finder("environment OIDC", _environment_oidc, OIDC_ENV_NAMES[0]),
    Finder("aliyun CLI profile", _cli_profile, SETTINGS["shared_credentials_file"].default or ""),
    Finder("ECS instance role", _environment_ecs_role, SETTINGS["ecs_role_name"].env[0]),
    Finder("credentials URI", _credentials_uri, SETTINGS["credentials_uri"].env[0]),
)
"""The finders, in the order they are tried."""


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
    ctx = Context(os.environ if env is None else env, settings or CredentialSettings(), metadata_url, transport)
    search = Search(ctx, (access_key_id, access_key_secret, security_token), profile, cli_config)
    tried: list[str] = []
    for finder in CHAIN:
        found = finder.find(search)
        if not isinstance(found, str):
            return _with_assumed_role(found, ctx)
        tried.append(found)
    raise CredentialsNotFoundError("no Alibaba Cloud credentials found. Tried:\n  - " + "\n  - ".join(tried))


def _with_assumed_role(source: CredentialSource, ctx: Context) -> CredentialSource:
    """``source``, or the role of ``alicloud:assumeRole`` (else ``ALICLOUD_ASSUME_ROLE_ARN``) assumed with it."""
    setting = SETTINGS["assume_role"]
    role = ctx.settings.assume_role
    label = f"{ctx.settings.label} ({setting.config_key})"
    if role is None and (role_arn := setting.from_env(ctx.env)):
        role = AssumeRole(
            role_arn,
            SETTINGS["assume_role_session_name"].from_env(ctx.env),
            duration=_seconds(SETTINGS["assume_role_session_expiration"].env[0], ctx.env),
        )
        label = f"environment ({setting.env[0]})"
    return source if role is None else assume_role(source, role, ctx, label)


def _seconds(name: str, env: Mapping[str, str]) -> int | None:
    text = env.get(name)
    duration = whole_number(text, 2**31) if text else None
    if text and duration is None:
        raise ConfigError(f"{name}: must be a whole number of seconds")
    return duration
