"""Alibaba Cloud STS (2015-04-01, RPC style), the few operations the credential chain needs.

One definition for both sides: :mod:`.sources` calls these operations with
:class:`StsClient`; the emulator (:mod:`imm_faces.emulator.sts`) decodes the same request models and answers
with the same response models. Also here: the answer of the ECS metadata service's
``/latest/meta-data/ram/security-credentials/<role>`` and of a credentials URI (the same JSON document).

Requests are signed with the legacy RPC signature (HMAC-SHA1, every parameter in the query), as Alibaba's
credentials libraries send them. ``AssumeRoleWithOIDC`` is anonymous: the OIDC token is the proof, so it is
never signed. Parameter names and response fields follow the STS API reference (AssumeRole,
AssumeRoleWithOIDC, GetCallerIdentity). Error codes marked *inferred* below are ours where the reference is
silent.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import httpx
from pydantic import Field, ValidationError

from imm_faces.runtime.auth.credentials import CredentialSource
from imm_faces.runtime.auth.redaction import REDACTOR
from imm_faces.runtime.auth.signing import RpcV2Auth, encode_query
from imm_faces.runtime.bounded import reason, send
from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.http import explicit_base_url, tls_context
from imm_faces.runtime.operations.base import Operation, Request, Response
from imm_faces.runtime.rules import ACCOUNT_ID_PATTERN, OIDC_TOKEN_LENGTH, RAM_ROLE_NAME_PATTERN
from imm_faces.runtime.timestamps import parse_utc_seconds, utc_seconds

STS_VERSION = "2015-04-01"
MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
STS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
STS_MAX_ANSWER_BYTES = 256 * 1024  # ours: an answer is a few KB (the token ~2 KB); a larger one is refused unread
ROLE_ARN_PATTERN = rf"^acs:ram::{ACCOUNT_ID_PATTERN}:role/{RAM_ROLE_NAME_PATTERN}$"
OIDC_PROVIDER_ARN_PATTERN = rf"^acs:ram::{ACCOUNT_ID_PATTERN}:oidc-provider/[A-Za-z0-9._-]{{1,128}}$"
SESSION_NAME_PATTERN = r"^[A-Za-z0-9.@_-]{2,64}$"

# The ECS metadata service, as its documentation and Alibaba's credentials library have it: the client asks for
# an IMDSv2 token of the longest lifetime, the emulator's stand-in serves the same paths and headers.
METADATA_TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a path
METADATA_CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"
"""``GET`` it for the instance's role name; ``GET`` it with the role name appended for the role's credentials."""
METADATA_TOKEN_HEADER = "X-aliyun-ecs-metadata-token"  # noqa: S105 - a header name
METADATA_TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"  # noqa: S105 - a header name
METADATA_TOKEN_TTL = 21600
"""The longest lifetime (seconds) of an IMDSv2 token, which the client asks for."""


# ------------------------------------------------------------------------------------------------ models

Duration = Annotated[int, Field(ge=MIN_DURATION, le=MAX_DURATION)]


class AssumeRoleRequest(Request):
    role_arn: Annotated[str, Field(pattern=ROLE_ARN_PATTERN)]
    role_session_name: Annotated[str, Field(pattern=SESSION_NAME_PATTERN)]
    duration_seconds: Duration | None = None
    policy: str | None = None
    external_id: Annotated[str, Field(min_length=2, max_length=1224)] | None = None


class AssumeRoleWithOIDCRequest(Request):
    role_arn: Annotated[str, Field(pattern=ROLE_ARN_PATTERN)]
    oidc_provider_arn: Annotated[str, Field(alias="OIDCProviderArn", pattern=OIDC_PROVIDER_ARN_PATTERN)]
    oidc_token: Annotated[
        str, Field(alias="OIDCToken", min_length=OIDC_TOKEN_LENGTH[0], max_length=OIDC_TOKEN_LENGTH[1], repr=False)
    ]
    role_session_name: Annotated[str, Field(pattern=SESSION_NAME_PATTERN)]
    duration_seconds: Duration | None = None
    policy: str | None = None


class GetCallerIdentityRequest(Request):
    pass


class StsCredentials(Response):
    """Temporary credentials as STS (and the ECS metadata service, and a credentials URI) returns them."""

    access_key_id: str
    access_key_secret: Annotated[str, Field(repr=False)]
    security_token: Annotated[str, Field(repr=False)]
    expiration: str

    @property
    def expires_at(self) -> float:
        return parse_utc_seconds(self.expiration)


class AssumedRoleUser(Response):
    arn: str
    assumed_role_id: str


class OIDCTokenInfo(Response):
    subject: str | None = None
    issuer: str | None = None
    client_ids: str | None = None


class AssumeRoleResponse(Response):
    credentials: StsCredentials
    assumed_role_user: AssumedRoleUser


class AssumeRoleWithOIDCResponse(AssumeRoleResponse):
    oidc_token_info: Annotated[OIDCTokenInfo | None, Field(alias="OIDCTokenInfo")] = None


class GetCallerIdentityResponse(Response):
    account_id: str
    user_id: str
    arn: str
    identity_type: str
    principal_id: str | None = None
    role_id: str | None = None


class MetadataCredentials(StsCredentials):
    """The ECS metadata service's and a credentials URI's answer: the credentials plus ``Code``."""

    code: str
    last_updated: str | None = None


ASSUME_ROLE = Operation("AssumeRole", AssumeRoleRequest, AssumeRoleResponse, "assume a RAM role", version=STS_VERSION)
ASSUME_ROLE_WITH_OIDC = Operation(
    "AssumeRoleWithOIDC",
    AssumeRoleWithOIDCRequest,
    AssumeRoleWithOIDCResponse,
    "assume a RAM role with an OIDC token",
    version=STS_VERSION,
)
GET_CALLER_IDENTITY = Operation(
    "GetCallerIdentity", GetCallerIdentityRequest, GetCallerIdentityResponse, "who the caller is", version=STS_VERSION
)
STS_OPERATIONS: dict[str, Operation[Any, Any]] = {
    op.name: op for op in (ASSUME_ROLE, ASSUME_ROLE_WITH_OIDC, GET_CALLER_IDENTITY)
}
ANONYMOUS = frozenset({"AssumeRoleWithOIDC"})
"""Operations that carry no signature (their proof is in the parameters)."""


def account_of(arn: str) -> str | None:
    """The account id in an ``acs:ram::<account>:...`` ARN."""
    parts = arn.split(":")
    return parts[3] if len(parts) >= 5 and parts[0] == "acs" and re.fullmatch(ACCOUNT_ID_PATTERN, parts[3]) else None


# ------------------------------------------------------------------------------------------------ client


class StsError(ConfigError):
    """STS refused a request (or answered something that is not STS): the credentials cannot be obtained."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def sts_endpoint(endpoint: str | None = None, region: str | None = None, vpc: bool = False) -> str:
    """The STS base URL: an explicit endpoint (``https://`` unless it names a scheme), else the region's
    (``sts[-vpc].<region>.aliyuncs.com``), else the global ``sts.aliyuncs.com``."""
    if endpoint:
        return explicit_base_url(endpoint, "STS endpoint")
    prefix = "sts-vpc" if vpc else "sts"
    return f"https://{prefix}.{region}.aliyuncs.com/" if region else "https://sts.aliyuncs.com/"


class StsClient:
    """Calls STS at ``endpoint`` (see :func:`sts_endpoint`). ``transport`` is for tests."""

    def __init__(self, endpoint: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        self._transport = transport

    def call(self, op: Operation[Any, Any], request: Request, signer: CredentialSource | None) -> Any:
        """Send ``request`` (signed by ``signer``, a :class:`~.credentials.Credentials`,
        unless the operation is anonymous); return the parsed response or raise :class:`StsError`."""
        params = request.to_params()
        headers = {"x-acs-action": op.name, "x-acs-version": STS_VERSION, "accept": "application/json"}
        auth: httpx.Auth | None = None
        if op.name in ANONYMOUS:
            params.update(Action=op.name, Version=STS_VERSION, Format="JSON", Timestamp=utc_seconds())
        elif signer is None:
            raise TypeError(f"STS {op.name} must be signed")
        else:
            auth = RpcV2Auth(signer)
        url = httpx.URL(self.endpoint).copy_with(query=encode_query(params).encode())
        try:
            with httpx.Client(
                timeout=STS_TIMEOUT, transport=self._transport, trust_env=False, verify=tls_context()
            ) as http:
                # The whole exchange within STS_TIMEOUT's read time, wall-clock, and its answer size-bounded.
                response = send(
                    http,
                    httpx.Request("POST", url, headers=headers),
                    auth=auth,
                    seconds=STS_TIMEOUT.read or 10.0,
                    max_bytes=STS_MAX_ANSWER_BYTES,
                )
        except httpx.TransportError as exc:
            raise StsError(f"STS {op.name}: cannot reach {self.endpoint} ({reason(exc)})") from None
        return parse_answer(op.name, op.response, response.status_code, response.content, f"STS at {self.endpoint}")


def parse_answer(what: str, model: type[Response], status: int, body: bytes, where: str) -> Any:
    """Parse a JSON answer into ``model``; an error answer or a malformed one becomes :class:`StsError` (its
    text passes the redactor: an error message may echo a token)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise StsError(f"{what}: {where} answered HTTP {status} without a JSON object")
    if status >= 400 or data.get("Code") not in (None, "Success"):
        code = str(data.get("Code") or f"HTTP{status}")
        message = REDACTOR(str(data.get("Message") or ""))
        raise StsError(f"{what}: {where} refused it: {code}: {message}", code)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise StsError(f"{what}: {where} answered without a valid {field or 'body'} ({first['type']})") from None
