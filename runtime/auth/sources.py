"""Where temporary credentials are fetched: STS (AssumeRole on top of another source, AssumeRoleWithOIDC), the ECS
metadata service, a credentials URI. Each is a :class:`~.credentials.RefreshingCredentials` whose first fetch is
its first use: choosing a source costs no request.

Every exchange is bounded in wall-clock time and in size (:mod:`imm_faces.runtime.bounded`), and cut to the
caller's deadline when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from imm_faces.runtime import bounded
from imm_faces.runtime.auth.config import SETTINGS
from imm_faces.runtime.auth.credentials import Credentials, CredentialSource, RefreshingCredentials, reveal
from imm_faces.runtime.auth.redaction import REDACTOR
from imm_faces.runtime.auth.settings import AssumeRole, CredentialSettings, OidcRole
from imm_faces.runtime.auth.sts import (
    ASSUME_ROLE,
    ASSUME_ROLE_WITH_OIDC,
    METADATA_CREDENTIALS_PATH,
    METADATA_TOKEN_HEADER,
    METADATA_TOKEN_PATH,
    METADATA_TOKEN_TTL,
    METADATA_TOKEN_TTL_HEADER,
    AssumeRoleRequest,
    AssumeRoleWithOIDCRequest,
    MetadataCredentials,
    StsClient,
    StsError,
    parse_answer,
    sts_endpoint,
)
from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.http import tls_context
from imm_faces.runtime.operations.base import parameter_error

ECS_METADATA_URL = "http://100.100.100.200"
"""The ECS metadata service. Only tests point :func:`~.chain.resolve_provider` elsewhere (its ``metadata_url``)."""
METADATA_SECONDS = 5.0  # each exchange with the metadata service, whole (wall-clock, see runtime/bounded.py)
CREDENTIALS_URI_SECONDS = 10.0  # the exchange with a credentials URI, whole
MAX_ANSWER_BYTES = 64 * 1024  # a credentials document is about 2 KB; a larger answer is refused, never read whole
DEFAULT_SESSION_NAME = "imm-faces"


@dataclass(frozen=True)
class Context:
    """What every source is fetched with: the environment, the explicit settings (for STS's endpoint), and for
    tests the metadata service's URL and the HTTP transport."""

    env: Mapping[str, str]
    settings: CredentialSettings
    metadata_url: str = ECS_METADATA_URL
    transport: httpx.BaseTransport | None = None

    @property
    def sts_endpoint(self) -> str:
        """The stack's ``alicloud:endpoints[].sts``, else the environment's endpoint, else the region's."""
        explicit = self.settings.sts_endpoint or SETTINGS["sts_endpoint"].from_env(self.env)
        region = SETTINGS["sts_region"].from_env(self.env)
        return sts_endpoint(explicit or None, region, SETTINGS["vpc_endpoint_enabled"].enabled(self.env))

    def sts(self) -> StsClient:
        return StsClient(self.sts_endpoint, transport=self.transport)


def _request(model: Any, label: str, **values: Any) -> Any:
    """An STS request model, or a :class:`ConfigError` naming the setting and the rule."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = parameter_error(model, exc)
        raise ConfigError(f"{label}: {err.message}") from None


def _temporary(answer: Any, source: str) -> Credentials:
    creds = answer.credentials if hasattr(answer, "credentials") else answer
    REDACTOR.add((creds.access_key_secret, creds.security_token))
    return Credentials(
        creds.access_key_id, creds.access_key_secret, creds.security_token, source=source, expiration=creds.expires_at
    )


def assume_role(base: CredentialSource, role: AssumeRole, ctx: Context, label: str) -> RefreshingCredentials:
    """AssumeRole signed by ``base`` (refreshed before the role's credentials expire)."""
    request = _request(
        AssumeRoleRequest,
        label,
        RoleArn=role.role_arn,
        RoleSessionName=role.session_name or DEFAULT_SESSION_NAME,
        DurationSeconds=role.duration,
        ExternalId=role.external_id,
        Policy=role.policy,
    )
    client = ctx.sts()
    source = f"{label}: role {role.role_arn} assumed with {getattr(base, 'source', 'credentials')}"

    def fetch() -> Credentials:
        signer = base.get()
        REDACTOR.add(signer.secrets())  # STS's error answers pass the redactor: it must know the signer's secrets
        return _temporary(client.call(ASSUME_ROLE, request, signer), source)

    return RefreshingCredentials(fetch, source)


def oidc_role(role: OidcRole, ctx: Context, label: str) -> RefreshingCredentials:
    """AssumeRoleWithOIDC; the token file is read again at every refresh (the platform rotates it)."""
    client = ctx.sts()
    source = f"{label}: role {role.role_arn} assumed with an OIDC token"

    def fetch() -> Credentials:
        token = _oidc_token(role, label)
        request = _request(
            AssumeRoleWithOIDCRequest,
            label,
            RoleArn=role.role_arn,
            OIDCProviderArn=role.provider_arn,
            OIDCToken=token,
            RoleSessionName=role.session_name or DEFAULT_SESSION_NAME,
            DurationSeconds=role.duration,
            Policy=role.policy,
        )
        return _temporary(client.call(ASSUME_ROLE_WITH_OIDC, request, None), source)

    return RefreshingCredentials(fetch, source)


def _oidc_token(role: OidcRole, label: str) -> str:
    """The token given, or the token file's text as it is now; registered with the redactor before any use."""
    token = reveal(role.token)
    if role.token_file:
        try:
            token = Path(role.token_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{label}: cannot read the OIDC token file {role.token_file} ({exc.strerror})") from None
    if not token:
        raise ConfigError(f"{label}: the OIDC token is empty")
    REDACTOR.add((token,))
    return token


def ecs_role(role_name: str | None, ctx: Context, label: str) -> RefreshingCredentials:
    """The ECS instance's RAM role from the metadata service: an IMDSv2 token first (PUT /latest/api/token),
    IMDSv1 only when that fails and ``ALIBABA_CLOUD_IMDSV1_DISABLED`` is not true. Without a role name, the
    instance's role is read from the service."""
    metadata = _MetadataService(ctx, f"{label}: ECS instance role {role_name or '(the instance’s)'}")
    return RefreshingCredentials(lambda: metadata.credentials(role_name), metadata.source)


class _MetadataService:
    """One fetch from the ECS metadata service: a token, the role's name when not given, its credentials."""

    def __init__(self, ctx: Context, source: str) -> None:
        self.ctx = ctx
        self.source = source
        self.base = ctx.metadata_url.rstrip("/")
        self.v1_allowed = not SETTINGS["imdsv1_disabled"].enabled(ctx.env)

    def credentials(self, role_name: str | None) -> Credentials:
        # One connection per request (the watchdog of a bounded exchange watches the connection it opens).
        with httpx.Client(
            timeout=httpx.Timeout(METADATA_SECONDS, connect=1.0),
            transport=self.ctx.transport,
            trust_env=False,
            verify=tls_context(),
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http:
            try:
                headers = self._token(http)
                role = role_name or self._role_name(http, headers)
                got = self._ask(http, "GET", METADATA_CREDENTIALS_PATH + role, headers)
            except httpx.TransportError as exc:
                raise StsError(
                    f"{self.source}: cannot reach the ECS metadata service ({bounded.reason(exc)})"
                ) from None
        answer = parse_answer("ECS metadata", MetadataCredentials, got.status_code, got.content, "the service")
        if answer.code != "Success":
            raise StsError(f"{self.source}: the metadata service answered Code {answer.code!r}")
        return _temporary(answer, self.source)

    def _ask(self, http: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        request = http.build_request(method, self.base + path, headers=headers)
        return bounded.send(http, request, seconds=METADATA_SECONDS, max_bytes=MAX_ANSWER_BYTES)

    def _token(self, http: httpx.Client) -> dict[str, str]:
        """The headers of the next requests: an IMDSv2 token's, or none (IMDSv1) when that is allowed."""
        ttl = {METADATA_TOKEN_TTL_HEADER: str(METADATA_TOKEN_TTL)}
        answer = self._ask(http, "PUT", METADATA_TOKEN_PATH, ttl)
        if answer.status_code == 200 and answer.text.strip():
            return {METADATA_TOKEN_HEADER: answer.text.strip()}
        if not self.v1_allowed:
            disabled = SETTINGS["imdsv1_disabled"].env[0]
            raise StsError(
                f"{self.source}: the metadata service gave no IMDSv2 token (HTTP {answer.status_code})"
                f" and {disabled} is true"
            )
        return {}

    def _role_name(self, http: httpx.Client, headers: dict[str, str]) -> str:
        found = self._ask(http, "GET", METADATA_CREDENTIALS_PATH, headers)
        role = found.text.strip().splitlines()[0] if found.status_code == 200 and found.text.strip() else ""
        if not role:
            raise StsError(f"{self.source}: the instance has no RAM role (HTTP {found.status_code})")
        return role


def credentials_uri(uri: str, ctx: Context, label: str) -> RefreshingCredentials:
    """A sidecar that answers GET with the metadata service's document (``Code: Success`` and the keys)."""
    shown = httpx.URL(uri).copy_with(query=None, username=None, password=None)
    source = f"{label}: credentials URI {shown}"

    def fetch() -> Credentials:
        try:
            with httpx.Client(
                timeout=httpx.Timeout(CREDENTIALS_URI_SECONDS, connect=5.0),
                transport=ctx.transport,
                trust_env=False,
                verify=tls_context(),
            ) as h:
                request = h.build_request("GET", uri)
                got = bounded.send(h, request, seconds=CREDENTIALS_URI_SECONDS, max_bytes=MAX_ANSWER_BYTES)
        except httpx.TransportError as exc:
            raise StsError(f"{source}: unreachable ({bounded.reason(exc)})") from None
        answer = parse_answer("credentials URI", MetadataCredentials, got.status_code, got.content, str(shown))
        if answer.code != "Success":
            raise StsError(f"{source}: answered Code {answer.code!r}")
        return _temporary(answer, source)

    return RefreshingCredentials(fetch, source)
