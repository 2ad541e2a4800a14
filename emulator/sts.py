"""A local STS (2015-04-01), so every credential flow runs on loopback.

:class:`StsService` answers ``AssumeRole``, ``AssumeRoleWithOIDC`` and ``GetCallerIdentity`` on the emulator's
own port (the front door routes requests whose ``Version`` is 2015-04-01 here). Signed requests are checked by
the same :class:`~imm_faces.emulator.auth.Authenticator` as IMM's (signature, clock skew, nonce reuse), and the
credentials it issues are registered with it: IMM then accepts them until their ``Expiration`` and answers
``InvalidSecurityToken.Expired`` after. Request and response models are the client's
(:mod:`imm_faces.runtime.auth.sts`).

RAM (:mod:`imm_faces.emulator.ram`, ``--ram-config``): AssumeRole needs ``sts:AssumeRole`` on the role in the
caller's policies (when it has any) and a trust policy that names the caller's account or the caller; a role
listed in ``external_ids`` also requires that ExternalId (STS's ``NoPermission`` otherwise). Without roles in the
config, any role may be assumed by a known caller, as if every role trusted it. AssumeRoleWithOIDC needs a
provider the emulator was told about (``AuthenticationFail.NoPermission`` otherwise: with none configured it is
always refused), a token that provider signed and that is valid for it (:mod:`imm_faces.emulator.oidc`), and a
configured role whose trust policy names the provider (``Principal.Federated``) under conditions on ``oidc:iss``,
``oidc:aud`` and ``oidc:sub`` that hold. A ``Policy`` (session policy) is checked against RAM's grammar and
STS's 2,048-character limit (``InvalidParameter.PolicyGrammar``, ``InvalidParameter.PolicySize``) and then limits
the issued credentials, with the role's policies, on every IMM and OSS request. Issued credentials live in memory:
a restart forgets them. ``max_duration`` (tests only) caps their lifetime below STS's 900-second minimum, to
exercise refreshing.

The ECS metadata stand-in that issues credentials through it is :mod:`imm_faces.emulator.metadata`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from imm_faces.emulator import oidc
from imm_faces.emulator.asgi import Exchange, agree, render_json
from imm_faces.emulator.auth import Authenticator, IncomingRequest, parse_params
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.ram import (
    EMULATOR_ACCOUNT_ID,
    AccessDeniedError,
    Policy,
    PolicyError,
    PolicySizeError,
    Principal,
    Ram,
    Role,
    parse_policy,
)
from imm_faces.runtime.auth.sts import (
    ANONYMOUS,
    DEFAULT_DURATION,
    MAX_DURATION,
    STS_OPERATIONS,
    STS_VERSION,
    AssumedRoleUser,
    AssumeRoleRequest,
    AssumeRoleResponse,
    AssumeRoleWithOIDCRequest,
    AssumeRoleWithOIDCResponse,
    GetCallerIdentityResponse,
    OIDCTokenInfo,
    StsCredentials,
    account_of,
)
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import ParameterError
from imm_faces.runtime.rules import SESSION_POLICY_MAX_CHARS
from imm_faces.runtime.timestamps import utc_seconds

__all__ = ["EMULATOR_ACCOUNT_ID", "StsService", "claims"]
# Which parameter error becomes which STS code (STS names the parameter in the code).
_PARAMETER_CODES = {
    "RoleArn": "InvalidParameter.RoleArn",
    "RoleSessionName": "InvalidParameter.RoleSessionName",
    "DurationSeconds": "InvalidParameter.DurationSeconds",
    "OIDCProviderArn": "InvalidParameter.OIDCProviderArn",
    "ExternalId": "InvalidParameter.ExternalId",
    "OIDCToken": oidc.INVALID,
}


def claims(exchange: Exchange) -> bool:
    """Whether a request at ``/`` is for STS: its ``Version`` (query or ``x-acs-version``) is 2015-04-01. Looked
    for in the raw bytes first, so that an IMM request (every other one) pays nothing more; a query that does
    not decode is left to IMM, which refuses it."""
    if exchange.method not in ("GET", "POST"):
        return False
    version = STS_VERSION.encode()
    raw = exchange.raw_query
    if b"Version=" + version not in raw and exchange.headers.get("x-acs-version") != STS_VERSION:
        return False
    try:
        query = parse_params(raw.decode("latin-1"), "query string")
    except ApiError:
        return False
    return exchange.headers.get("x-acs-version") == STS_VERSION or any(
        k == "Version" and v == STS_VERSION for k, v in query
    )


@dataclass(frozen=True)
class Identity:
    account_id: str
    arn: str
    identity_type: str
    principal_id: str
    role_id: str | None = None


class StsService:
    def __init__(
        self, auth: Authenticator, *, ram: Ram | None = None, external_ids: Mapping[str, str] | None = None
    ) -> None:
        self.auth = auth
        self.ram = ram or Ram()
        self.account_id = self.ram.account_id
        self.external_ids = dict(external_ids or {})
        self.max_duration: float | None = None
        self._identities: dict[str, tuple[Identity, float]] = {}  # issued key id -> (who, expires)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- wire entry

    async def serve(self, exchange: Exchange) -> None:
        """Answer an STS request (the front door routes here what :func:`claims`): strict parameter decoding,
        the body size limit and error bodies with a ``Code`` are the front door's, as for IMM."""
        query = parse_params(exchange.query_string, "query string")
        incoming = IncomingRequest(exchange.method, "/", query, exchange.headers, await exchange.body())
        result = await to_thread.run_sync(self.handle, incoming)
        await exchange.respond(200, render_json({"RequestId": exchange.request_id, **result}))

    def handle(self, request: IncomingRequest) -> dict[str, Any]:
        """Authenticate (unless the action is anonymous), decode with the runtime's models, answer."""
        action = request.headers.get("x-acs-action") or dict(request.query).get("Action", "")
        if action in ANONYMOUS:
            params = dict(request.query + request.form)
            caller = None
        else:
            signed, params = self.auth.verify(request)
            caller = signed.access_key_id
            action = agree(request.headers.get("x-acs-action"), params.get("Action"), "Action")
        op = STS_OPERATIONS.get(action)
        if op is None:
            raise ApiError("InvalidAction.NotFound")
        try:
            decoded = op.request.from_params(params)
        except ParameterError as exc:
            code = exc.code if exc.code == "MissingParameter" else _PARAMETER_CODES.get(exc.parameter, exc.code)
            raise ApiError(code, detail=exc.message) from None
        if isinstance(decoded, AssumeRoleWithOIDCRequest):
            answer: Any = self.assume_role_with_oidc(decoded)
        elif isinstance(decoded, AssumeRoleRequest):
            answer = self.assume_role(decoded, caller or "")
        else:
            answer = self.caller_identity(caller or "")
        out: dict[str, Any] = answer.model_dump(by_alias=True, exclude_none=True, mode="json")
        return out

    # ---------------------------------------------------------------------------------------- operations

    def identity(self, key_id: str) -> Identity:
        with self._lock:
            found = self._identities.get(key_id)
        if found is not None:
            return found[0]
        if key_id in self.ram.key_policies:  # a key with policies is a RAM user's (named by its key id here)
            return Identity(self.account_id, self.auth.principal(key_id).arn, "RAMUser", key_id)
        return Identity(self.account_id, f"acs:ram::{self.account_id}:root", "Account", self.account_id)

    def caller_identity(self, key_id: str) -> GetCallerIdentityResponse:
        who = self.identity(key_id)
        return GetCallerIdentityResponse(
            account_id=who.account_id,
            user_id=who.principal_id,
            arn=who.arn,
            identity_type=who.identity_type,
            principal_id=who.principal_id,
            role_id=who.role_id,
        )

    def assume_role(self, request: AssumeRoleRequest, caller: str) -> AssumeRoleResponse:
        session = _session_policy(request.policy)
        who = self.auth.principal(caller)
        try:
            who.authorize("sts:AssumeRole", request.role_arn)
        except AccessDeniedError as exc:
            raise ApiError("NoPermission", detail=f"You should be authorized by RAM: {exc}.") from None
        required = self.external_ids.get(request.role_arn)
        if required is not None and request.external_id != required:
            raise ApiError("NoPermission", detail="The ExternalId does not match the role's trust policy.")
        role = self._role(request.role_arn)
        context = {"sts:externalid": (request.external_id,)} if request.external_id else {}
        if role is not None and not role.trusts(who.as_trusted(), context):
            raise ApiError("NoPermission", detail="The role's trust policy does not name the caller.")
        creds, user = self.issue(request.role_arn, request.role_session_name, request.duration_seconds, session)
        return AssumeRoleResponse(credentials=creds, assumed_role_user=user)

    def assume_role_with_oidc(self, request: AssumeRoleWithOIDCRequest) -> AssumeRoleWithOIDCResponse:
        session = _session_policy(request.policy)
        provider = self.ram.providers.get(request.oidc_provider_arn)
        if provider is None:
            raise ApiError("AuthenticationFail.NoPermission", detail="No such OIDC Provider registered.")
        if account_of(request.oidc_provider_arn) != account_of(request.role_arn):
            raise ApiError("InvalidParameter.OIDCProviderArn", detail="It is not in the role's account.")
        claims = oidc.verify_token(provider, request.oidc_token, time.time())
        role = self._role(request.role_arn) if self.ram.roles is not None else None
        if role is None:  # a role that trusts an OIDC provider is one the emulator was told about
            raise ApiError("EntityNotExist.Role", role=request.role_arn)
        context = {"oidc:iss": (claims.issuer,), "oidc:aud": claims.audiences, "oidc:sub": (claims.subject,)}
        if not role.trusts([("Federated", provider.arn)], context):
            raise ApiError("AuthenticationFail.NoPermission", detail="There is no permission")
        creds, user = self.issue(request.role_arn, request.role_session_name, request.duration_seconds, session)
        info = OIDCTokenInfo(subject=claims.subject, issuer=claims.issuer, client_ids=",".join(claims.audiences))
        return AssumeRoleWithOIDCResponse(credentials=creds, assumed_role_user=user, oidc_token_info=info)

    def _role(self, arn: str) -> Role | None:
        """The configured role (None when no roles are configured); ``EntityNotExist.Role`` for another."""
        if self.ram.roles is None:
            return None
        role = self.ram.roles.get(arn)
        if role is None:
            raise ApiError("EntityNotExist.Role", role=arn)
        return role

    def issue(
        self, role_arn: str, session: str, duration: int | None, session_policy: Policy | None = None
    ) -> tuple[StsCredentials, AssumedRoleUser]:
        """New temporary credentials for ``role_arn``, accepted by IMM (and STS) until they expire, with the
        role's policies (when the emulator knows the role) and ``session_policy``."""
        lifetime = float(min(duration or DEFAULT_DURATION, MAX_DURATION))
        if self.max_duration is not None:
            lifetime = min(lifetime, self.max_duration)
        expires = float(int(time.time() + lifetime))  # whole seconds: what Expiration tells the client
        key = Credentials(
            f"STS.{secrets.token_hex(12)}",
            secrets.token_urlsafe(30),
            secrets.token_urlsafe(192),
            source=f"emulator STS ({role_arn})",
            expiration=expires,
        )
        account = account_of(role_arn) or self.account_id
        role_name = role_arn.rsplit("/", 1)[-1]
        role_id = str(abs(hash(role_arn)) % 10**18)
        principal = f"{role_id}:{session}"
        identity = Identity(
            account, f"acs:ram::{account}:assumed-role/{role_name}/{session}", "AssumedRoleUser", principal, role_id
        )
        with self._lock:
            now = time.time()
            self._identities = {k: v for k, v in self._identities.items() if v[1] > now}
            self._identities[key.access_key_id] = (identity, expires)
        role = (self.ram.roles or {}).get(role_arn)
        self.auth.issue(key, Principal(identity.arn, account, role.policies if role else None, session_policy))
        creds = StsCredentials(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token or "",
            expiration=utc_seconds(expires),
        )
        return creds, AssumedRoleUser(arn=identity.arn, assumed_role_id=principal)


def _session_policy(text: str | None) -> Policy | None:
    """The ``Policy`` parameter, checked as STS checks it (its grammar, its 2,048 characters)."""
    if text is None:
        return None
    try:
        return parse_policy(text, limit=SESSION_POLICY_MAX_CHARS)
    except PolicySizeError:
        raise ApiError("InvalidParameter.PolicySize", limit=str(SESSION_POLICY_MAX_CHARS)) from None
    except PolicyError as exc:
        raise ApiError("InvalidParameter.PolicyGrammar", detail=f"{str(exc)[:200]}.") from None
