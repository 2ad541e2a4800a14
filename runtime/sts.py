"""Alibaba Cloud STS (2015-04-01, RPC style), the few operations the credential chain needs.

One definition for both sides: :mod:`imm_faces.runtime.credentials` calls these operations with
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

import calendar
import json
import re
import time
from typing import Annotated, Any

import httpx
from pydantic import Field, ValidationError

from imm_faces.runtime.credentials import CredentialSource
from imm_faces.runtime.errors import ERRORS, ConfigError, ErrorSpec
from imm_faces.runtime.operations._base import Operation, Request, Response
from imm_faces.runtime.redaction import REDACTOR
from imm_faces.runtime.rules import ACCOUNT_ID_PATTERN, OIDC_TOKEN_LENGTH
from imm_faces.runtime.signing import RpcV2Auth, encode_query, utc_timestamp

STS_VERSION = "2015-04-01"
MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
STS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
STS_MAX_ANSWER_BYTES = 256 * 1024  # ours: an answer is a few KB (the token ~2 KB); a larger one is refused unread
# Account ids are ASCII digits: ``\d`` would also match other scripts' digits (Arabic-Indic, fullwidth...).
ROLE_ARN_PATTERN = rf"^acs:ram::{ACCOUNT_ID_PATTERN}:role/[A-Za-z0-9._-]{{1,64}}$"
OIDC_PROVIDER_ARN_PATTERN = rf"^acs:ram::{ACCOUNT_ID_PATTERN}:oidc-provider/[A-Za-z0-9._-]{{1,128}}$"
SESSION_NAME_PATTERN = r"^[A-Za-z0-9.@_-]{2,64}$"

# STS's error codes (STS API reference, "error codes" of each operation and STS's error-code page; the
# OIDC ones and their 401 from that page and ACK's RRSA troubleshooting table), added to the one table in
# :mod:`imm_faces.runtime.errors` so that clients and the emulator read them from the same place.
STS_ERRORS = (
    ErrorSpec("InvalidParameter.RoleArn", 400, "The parameter RoleArn is wrong. {detail}"),
    ErrorSpec("InvalidParameter.RoleSessionName", 400, "The parameter RoleSessionName is wrong. {detail}"),
    ErrorSpec("InvalidParameter.DurationSeconds", 400, "The Min/Max value of DurationSeconds is 15min/12hr."),
    ErrorSpec("InvalidParameter.OIDCProviderArn", 400, "The parameter OIDCProviderArn is wrong. {detail}"),
    ErrorSpec("InvalidParameter.ExternalId", 400, "The parameter ExternalId is wrong. {detail}"),
    ErrorSpec("MissingParameter", 400, "{detail}"),
    ErrorSpec("InvalidParameter.PolicyGrammar", 400, "The parameter Policy has not passed grammar check. {detail}"),
    ErrorSpec("InvalidParameter.PolicySize", 400, "The size of Policy must be smaller than {limit} bytes."),
    ErrorSpec("AuthenticationFail.OIDCToken.Invalid", 401, "The OIDCToken is invalid. {detail}"),
    ErrorSpec("AuthenticationFail.OIDCToken.Expired", 401, "This JsonWebToken is expired."),
    ErrorSpec("AuthenticationFail.OIDCToken.InvalidSignature", 401, "OIDC token validate failed: invalid signature."),
    ErrorSpec(
        "AuthenticationFail.OIDCToken.IssuerNotMatch",
        401,
        "The issuer in the OIDC Token doesn't match the OIDC Provider registered.",
    ),
    ErrorSpec("AuthenticationFail.OIDCToken.AudienceNotMatch", 401, "Invalid audience."),
    ErrorSpec("AuthenticationFail.NoPermission", 401, "{detail}"),
    ErrorSpec("EntityNotExist.Role", 404, "The role not exists: {role}."),  # the status is inferred
    ErrorSpec("NoPermission", 403, "You are not authorized to do this action. {detail}"),
)
for _spec in STS_ERRORS:
    ERRORS.setdefault(_spec.code, _spec)


def parse_expiration(text: str) -> float:
    """STS's ``Expiration`` (``2026-11-25T12:00:00Z``, UTC) as epoch seconds."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def format_expiration(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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
    oidc_token: Annotated[str, Field(alias="OIDCToken", min_length=OIDC_TOKEN_LENGTH[0],
                                     max_length=OIDC_TOKEN_LENGTH[1], repr=False)]  # fmt: skip
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
        return parse_expiration(self.expiration)


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
ASSUME_ROLE_WITH_OIDC = Operation("AssumeRoleWithOIDC", AssumeRoleWithOIDCRequest, AssumeRoleWithOIDCResponse,
                                  "assume a RAM role with an OIDC token", version=STS_VERSION)  # fmt: skip
GET_CALLER_IDENTITY = Operation("GetCallerIdentity", GetCallerIdentityRequest, GetCallerIdentityResponse,
                                "who the caller is", version=STS_VERSION)  # fmt: skip
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
        from imm_faces.runtime.client import explicit_base_url

        return explicit_base_url(endpoint, "STS endpoint")
    prefix = "sts-vpc" if vpc else "sts"
    return f"https://{prefix}.{region}.aliyuncs.com/" if region else "https://sts.aliyuncs.com/"


class StsClient:
    """Calls STS at ``endpoint`` (see :func:`sts_endpoint`). ``transport`` is for tests."""

    def __init__(self, endpoint: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        self._transport = transport

    def call(self, op: Operation[Any, Any], request: Request, signer: CredentialSource | None) -> Any:
        """Send ``request`` (signed by ``signer``, a :class:`~imm_faces.runtime.credentials.Credentials`,
        unless the operation is anonymous); return the parsed response or raise :class:`StsError`."""
        params = request.to_params()
        headers = {"x-acs-action": op.name, "x-acs-version": STS_VERSION, "accept": "application/json"}
        auth: httpx.Auth | None = None
        if op.name in ANONYMOUS:
            params.update(Action=op.name, Version=STS_VERSION, Format="JSON", Timestamp=utc_timestamp())
        elif signer is None:
            raise TypeError(f"STS {op.name} must be signed")
        else:
            auth = RpcV2Auth(signer)
        url = httpx.URL(self.endpoint).copy_with(query=encode_query(params).encode())
        try:
            from imm_faces.runtime.bounded import reason, send
            from imm_faces.runtime.client import tls_context

            with httpx.Client(timeout=STS_TIMEOUT, transport=self._transport, trust_env=False,
                              verify=tls_context()) as http:  # fmt: skip
                # The whole exchange within STS_TIMEOUT's read time, wall-clock, and its answer size-bounded.
                response = send(http, httpx.Request("POST", url, headers=headers), auth=auth,
                                seconds=STS_TIMEOUT.read or 10.0, max_bytes=STS_MAX_ANSWER_BYTES)  # fmt: skip
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
