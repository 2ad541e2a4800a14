"""Errors: what IMM returns, and what this project raises.

:data:`ERRORS` is the one table of IMM (and STS) error codes this project knows, with the HTTP status and message
the service uses; the client maps responses with it and the emulator renders errors from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from imm_faces.runtime.auth.redaction import REDACTOR


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    status: int
    message: str
    retryable: bool = False

    def format(self, **values: str) -> str:
        return self.message.format(**values)


RESOURCE_NOT_FOUND = "ResourceNotFound"
RESOURCE_ALREADY_EXISTS = "ResourceAlreadyExists"

_MISSING_PARAMETER = ErrorSpec("MissingParameter", 400, "{detail}")  # IMM's and STS's alike

_SPECS = (
    # IMM's own codes (IMM error handling page). ResourceNotFound / ResourceAlreadyExists are 400 there.
    ErrorSpec("InvalidArgument", 400, "{detail}"),
    _MISSING_PARAMETER,
    ErrorSpec("InvalidJSON", 400, "Array parsing error, {parameter}"),
    ErrorSpec("LimitExceededError", 400, "{detail}"),
    ErrorSpec(RESOURCE_NOT_FOUND, 400, "The specified resource {resource} is not found."),
    ErrorSpec(RESOURCE_ALREADY_EXISTS, 400, "The specified resource {resource} already exists."),
    # DeleteProject's documented answer while datasets or bindings remain (IMM's own spelling kept).
    ErrorSpec("StatusConflict", 400, "Message: cannot delete when sub resoures exist"),
    # The API gateway's codes, common to all Alibaba Cloud RPC APIs.
    ErrorSpec("IncompleteSignature", 400, "The request signature does not conform to Aliyun standards. {detail}"),
    ErrorSpec("SignatureDoesNotMatch", 400, "Specified signature is not matched with our calculation. {detail}"),
    ErrorSpec("SignatureNonceUsed", 400, "Specified signature nonce was used already.", retryable=True),
    ErrorSpec("InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired."),
    ErrorSpec("InvalidTimeStamp.Format", 400, "Specified time stamp or date value is not well formatted."),
    ErrorSpec("InvalidAccessKeyId.NotFound", 404, "Specified access key is not found."),
    ErrorSpec("InvalidSecurityToken.Mismatch", 400, "Specified security token does not match the access key."),
    # Inferred wording: the gateway's answer to an STS token used past its Expiration.
    ErrorSpec("InvalidSecurityToken.Expired", 400, "Specified SecurityToken is expired."),
    ErrorSpec("InvalidSignatureMethod", 400, "Specified signature method is not valid."),
    ErrorSpec("InvalidVersion", 400, "Specified parameter Version is not valid."),
    ErrorSpec("InvalidAction.NotFound", 404, "Specified api is not found, please check your url and method."),
    ErrorSpec("InvalidParameter.Format", 400, "Specified parameter format is not valid. {detail}"),
    # RAM refused the caller (the gateway's table; the detail names the action and resource, as IMM's FAQ shows).
    ErrorSpec(
        "Forbidden.RAM",
        403,
        "User not authorized to operate on the specified resource, or this API doesn't support RAM. {detail}",
    ),
    # Inferred (the gateway's wording for these is not documented): a method or a body the API never takes.
    ErrorSpec("UnsupportedHTTPMethod", 405, "Specified HTTP method {method} is not supported; use POST or GET."),
    ErrorSpec("RequestEntityTooLarge", 413, "The request body exceeds {limit} bytes."),
    ErrorSpec("Throttling", 429, "Request was denied due to request throttling.", retryable=True),
    ErrorSpec("InternalError", 500, "The request processing has failed due to some unknown error.", retryable=True),
    ErrorSpec("ServiceUnavailable", 503, "The request has failed due to a temporary failure of the server.", True),
)
# STS's own codes (STS API reference, "error codes" of each operation and STS's error-code page; the OIDC ones and
# their 401 from that page and ACK's RRSA troubleshooting table): clients and the emulator's STS read them here.
_STS_SPECS = (
    ErrorSpec("InvalidParameter.RoleArn", 400, "The parameter RoleArn is wrong. {detail}"),
    ErrorSpec("InvalidParameter.RoleSessionName", 400, "The parameter RoleSessionName is wrong. {detail}"),
    ErrorSpec("InvalidParameter.DurationSeconds", 400, "The Min/Max value of DurationSeconds is 15min/12hr."),
    ErrorSpec("InvalidParameter.OIDCProviderArn", 400, "The parameter OIDCProviderArn is wrong. {detail}"),
    ErrorSpec("InvalidParameter.ExternalId", 400, "The parameter ExternalId is wrong. {detail}"),
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
STS_ERRORS = (*_STS_SPECS, _MISSING_PARAMETER)
"""The codes STS answers with (its own and IMM's MissingParameter)."""

_ALL = (*_SPECS, *_STS_SPECS)
ERRORS: dict[str, ErrorSpec] = {spec.code: spec for spec in _ALL}
if len(ERRORS) != len(_ALL):  # one definition per code: a second entry would silently win
    twice = sorted({s.code for s in _ALL if [t.code for t in _ALL].count(s.code) > 1})
    raise RuntimeError(f"runtime.errors lists a code twice: {twice}")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_retryable_code(code: str) -> bool:
    """Whether a failure with this code may succeed when tried again (with a fresh nonce)."""
    spec = ERRORS.get(code)
    if spec is not None:
        return spec.retryable
    return code.startswith(("Throttling", "ServiceUnavailable", "InternalError"))  # e.g. Throttling.User


class ImmFacesError(Exception):
    """Base of every error this project raises on purpose. Its text never holds a secret a client was given:
    string arguments pass through the process-wide redactor when the error is made."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(REDACTOR(a) if isinstance(a, str) else a for a in args))


class ConfigError(ImmFacesError):
    """Bad configuration, usage or credentials (the CLI exits 2)."""


class ImmError(ImmFacesError):
    """IMM answered with an error. Carries the service's Code, Message, RequestId and HTTP status."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        request_id: str | None = None,
        host_id: str | None = None,
        recommend: str | None = None,
        action: str | None = None,
    ) -> None:
        self.code = code
        self.message = REDACTOR(message)
        self.status = status
        self.request_id = request_id
        self.host_id = host_id
        self.recommend = recommend
        self.action = action
        where = f"{action}: " if action else ""
        super().__init__(f"{where}{code}: {self.message} (HTTP {status}, RequestId {request_id or '-'})")

    @property
    def resource_not_found(self) -> bool:
        """The project, dataset, binding, file, task or cluster asked for does not exist (codes may carry a
        suffix, e.g. ``ResourceNotFound.Dataset``). An unknown AccessKey is a 404 too, but not this."""
        return self.code.startswith(RESOURCE_NOT_FOUND)

    @property
    def resource_already_exists(self) -> bool:
        return self.code.startswith(RESOURCE_ALREADY_EXISTS)

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES or is_retryable_code(self.code)


class ThrottlingError(ImmError):
    """The service asked the caller to slow down (HTTP 429 or a Throttling* code)."""


class ServerError(ImmError):
    """A 5xx answer."""


class TransportError(ImmFacesError):
    """The service could not be reached (connection refused, timeout, TLS...)."""


class DeadlineExceededError(ImmFacesError):
    """The caller's total time budget ran out (a request, a retry or a server-requested back-off would pass it).

    ``last_failure`` is the error that was being retried, if any."""

    def __init__(self, message: str, last_failure: Exception | None = None) -> None:
        super().__init__(message)
        self.last_failure = last_failure
