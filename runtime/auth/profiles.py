"""The aliyun CLI's profiles (``~/.aliyun/config.json``): each mode that needs no browser or external program, as
one entry of :data:`MODES`, with the profile fields the CLI writes for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imm_faces.runtime.auth.credentials import Credentials, CredentialsNotFoundError, CredentialSource
from imm_faces.runtime.auth.settings import AssumeRole, OidcRole
from imm_faces.runtime.auth.sources import Context, assume_role, ecs_role, oidc_role
from imm_faces.runtime.errors import ConfigError


def read_config(path: Path) -> dict[str, Any] | None:
    """The CLI's config file (None when there is none); a file that is not a JSON object is a :class:`ConfigError`."""
    label = f"aliyun CLI config {path}"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{label}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{label}: expected a JSON object at the top level")
    return config


class Profile:
    """One profile of a config file: its fields read as the CLI writes them (empty is unset)."""

    def __init__(self, config: dict[str, Any], name: str, path: Path, ctx: Context, seen: tuple[str, ...] = ()) -> None:
        profiles = [p for p in config.get("profiles", []) if isinstance(p, dict)]
        match = next((p for p in profiles if p.get("name") == name), None)
        if match is None:
            known = ", ".join(str(p.get("name")) for p in profiles) or "none"
            raise CredentialsNotFoundError(f"aliyun CLI config {path}: no profile {name!r} (profiles: {known})")
        self.config, self.name, self.path, self.ctx, self.seen = config, name, path, ctx, seen
        self.fields = match
        self.mode: Any = match.get("mode") or "AK"
        self.label = f"aliyun CLI config {path} profile {name!r} ({self.mode})"

    def value(self, key: str) -> str | None:
        got = self.fields.get(key)
        return str(got) if got not in (None, "") else None

    def number(self, key: str) -> int | None:
        got = self.fields.get(key)
        return int(got) if isinstance(got, int | float) and got else None

    def need(self, *keys: str) -> tuple[str, ...]:
        """The values of ``keys``, all set, or a :class:`CredentialsNotFoundError` naming the missing ones."""
        if missing := [k for k in keys if not self.value(k)]:
            raise CredentialsNotFoundError(f"{self.label} is incomplete: {', '.join(missing)} not set")
        return tuple(self.value(k) or "" for k in keys)

    def role(self) -> AssumeRole:
        (role_arn,) = self.need("ram_role_arn")
        return AssumeRole(
            role_arn,
            self.value("ram_session_name"),
            self.value("external_id"),
            self.number("expired_seconds"),
            self.value("policy"),
        )

    def source(self) -> CredentialSource:
        make = MODES.get(self.mode) if isinstance(self.mode, str) else None
        if make is None:
            raise CredentialsNotFoundError(
                f"{self.label}: mode {self.mode!r} is not supported (it needs a browser or an external program); "
                f"supported: {', '.join(MODES)}"
            )
        return make(self)


def _access_key(p: Profile) -> CredentialSource:
    key_id, secret = p.need("access_key_id", "access_key_secret")
    return Credentials(key_id, secret, source=p.label)


def _sts_token(p: Profile) -> CredentialSource:
    key_id, secret, token = p.need("access_key_id", "access_key_secret", "sts_token")
    return Credentials(key_id, secret, token, source=p.label)


def _ram_role_arn(p: Profile) -> CredentialSource:
    key_id, secret = p.need("access_key_id", "access_key_secret")
    return assume_role(Credentials(key_id, secret, p.value("sts_token"), source=p.label), p.role(), p.ctx, p.label)


def _ecs_ram_role(p: Profile) -> CredentialSource:
    return ecs_role(p.value("ram_role_name"), p.ctx, p.label)


def _oidc(p: Profile) -> CredentialSource:
    role_arn, provider_arn, token_file = p.need("ram_role_arn", "oidc_provider_arn", "oidc_token_file")
    oidc = OidcRole(
        role_arn,
        provider_arn,
        token_file=token_file,
        session_name=p.value("role_session_name"),
        duration=p.number("expired_seconds"),
        policy=p.value("policy"),
    )
    return oidc_role(oidc, p.ctx, p.label)


def _chainable_ram_role_arn(p: Profile) -> CredentialSource:
    (parent,) = p.need("source_profile")
    if parent in (*p.seen, p.name):
        raise CredentialsNotFoundError(f"{p.label}: source_profile {parent!r} makes a loop")
    base = Profile(p.config, parent, p.path, p.ctx, (*p.seen, p.name)).source()
    return assume_role(base, p.role(), p.ctx, p.label)


MODES: dict[str, Callable[[Profile], CredentialSource]] = {
    "AK": _access_key,
    "StsToken": _sts_token,
    "RamRoleArn": _ram_role_arn,
    "EcsRamRole": _ecs_ram_role,
    "OIDC": _oidc,
    "ChainableRamRoleArn": _chainable_ram_role_arn,
}
"""The profile modes read, in the CLI's order: every one that needs no browser or external program."""
