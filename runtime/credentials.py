"""Where the AccessKey comes from, and how it is kept out of logs.

Resolution order (first complete set wins):

1. explicit arguments;
2. ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` / ``ALIBABA_CLOUD_SECURITY_TOKEN``;
3. pulumi-alicloud's ``ALICLOUD_ACCESS_KEY`` / ``ALICLOUD_SECRET_KEY`` / ``ALICLOUD_SECURITY_TOKEN``;
4. the aliyun CLI profile file ``~/.aliyun/config.json`` (modes ``AK`` and ``StsToken``), profile from the
   ``profile`` argument, else ``ALIBABA_CLOUD_PROFILE``, else the file's ``current``, else ``default``.

When none is complete, :class:`CredentialsNotFoundError` lists what was tried. The secret and the STS token are
never part of a repr, a str, a log line or an exception message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.redaction import MASK, secret_forms

CLI_CONFIG_PATH = Path("~/.aliyun/config.json")
ENV_NAMES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN")
"""The environment variables Alibaba's tools read (the SDK, the aliyun CLI, the Terraform provider)."""
LEGACY_ENV_NAMES = ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN")
_SUPPORTED_CLI_MODES = ("AK", "StsToken")


class Credentials:
    """An AccessKey pair, optionally with an STS token. ``source`` says where it was found.

    Immutable and comparable. The secret and the token are never shown: not by ``repr``/``str``, and
    ``vars()``, ``dataclasses.asdict`` and ``pickle`` refuse the object (it has no ``__dict__``, is not a
    dataclass, and cannot be pickled), so a secret cannot leave through a debugger dump or a serialised state.
    """

    __slots__ = ("_secret", "_token", "access_key_id", "source")

    access_key_id: str
    source: str
    _secret: _Hidden
    _token: _Hidden | None

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        source: str = "explicit arguments",
    ) -> None:
        set_ = object.__setattr__
        set_(self, "access_key_id", access_key_id)
        set_(self, "_secret", _Hidden(access_key_secret))
        set_(self, "_token", _Hidden(security_token) if security_token else None)
        set_(self, "source", source)

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
    """No source held a complete AccessKey pair."""


def redact(text: str, credentials: Credentials | None) -> str:
    """Replace any secret of ``credentials`` that appears in ``text``, in any of its :func:`secret_forms`."""
    if credentials is None:
        return text
    for secret in credentials.secrets():
        for form in sorted(secret_forms(secret), key=len, reverse=True):  # longest first: no partial leftovers
            text = text.replace(form, MASK)
    return text


def _from_env(env: Mapping[str, str], names: tuple[str, str, str], label: str) -> Credentials | None:
    key_id, secret, token = (env.get(n) or None for n in names)
    if key_id and secret:
        return Credentials(key_id, secret, token, source=f"environment ({names[0]})")
    return None


def _from_cli_profile(path: Path, profile: str | None, tried: list[str]) -> Credentials | None:
    label = f"aliyun CLI config {path}"
    if not path.is_file():
        tried.append(f"{label}: no such file")
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{label}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{label}: expected a JSON object at the top level")
    name = profile or config.get("current") or "default"
    profiles = [p for p in config.get("profiles", []) if isinstance(p, dict)]
    match = next((p for p in profiles if p.get("name") == name), None)
    if match is None:
        known = ", ".join(str(p.get("name")) for p in profiles) or "none"
        tried.append(f"{label}: no profile {name!r} (profiles: {known})")
        return None
    mode = match.get("mode", "AK")
    if mode not in _SUPPORTED_CLI_MODES:
        tried.append(f"{label}: profile {name!r} has mode {mode!r}; supported: {', '.join(_SUPPORTED_CLI_MODES)}")
        return None
    key_id, secret = match.get("access_key_id"), match.get("access_key_secret")
    token = match.get("sts_token") or None if mode == "StsToken" else None
    if not (key_id and secret) or (mode == "StsToken" and not token):
        tried.append(f"{label}: profile {name!r} ({mode}) is incomplete")
        return None
    return Credentials(key_id, secret, token, source=f"{label} profile {name!r} ({mode})")


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    cli_config: Path | None = None,
) -> Credentials:
    """Find credentials in the documented order; raise :class:`CredentialsNotFoundError` listing what was tried."""
    env = os.environ if env is None else env
    tried: list[str] = []
    if access_key_id or access_key_secret:
        if access_key_id and access_key_secret:
            return Credentials(access_key_id, access_key_secret, security_token or None)
        missing = "access_key_secret" if access_key_id else "access_key_id"
        raise CredentialsNotFoundError(f"explicit credentials are incomplete: {missing} is missing")
    tried.append("explicit arguments: none given")
    for names in (ENV_NAMES, LEGACY_ENV_NAMES):
        found = _from_env(env, names, names[0])
        if found:
            return found
        tried.append(f"environment {names[0]} and {names[1]}: not both set")
    path = cli_config or Path(env.get("ALIBABA_CLOUD_CONFIG_FILE", "") or CLI_CONFIG_PATH).expanduser()
    found = _from_cli_profile(path, profile or env.get("ALIBABA_CLOUD_PROFILE") or None, tried)
    if found:
        return found
    raise CredentialsNotFoundError("no Alibaba Cloud credentials found. Tried:\n  - " + "\n  - ".join(tried))
