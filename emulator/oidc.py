"""OIDC tokens checked as Alibaba Cloud's STS checks them for ``AssumeRoleWithOIDC``.

An OIDC provider is registered with RAM (its ARN, issuer URL, client ids, and the keys its issuer signs with);
the emulator is told about its providers in the RAM config (:func:`provider_from_config`: a JWKS, inline or in a
file, or a PEM public key). A token is accepted only when it is a JWS (three base64url segments; header and claims
JSON objects) signed with one of the provider's keys by an asymmetric algorithm (RS*, PS*, ES*: ``none`` and the
HMAC ones are "unknown" to STS, as its error table says), ``iss`` is the provider's issuer, ``aud`` names one of
its client ids, ``exp`` is in the future and ``nbf`` (when present) in the past; ``exp``, ``nbf`` and ``iat`` are
JSON numbers of seconds (RFC 7519's NumericDate) before the year 10000: a string, ``NaN``, an infinity or an
integer of 400 digits is refused, never read as "no expiry". Every refusal is one of STS's 401 codes
(``AuthenticationFail.OIDCToken.*``); which code a malformed claim gets where STS's table is silent is ours.

The signature is computed by PyJWT's algorithms (on ``cryptography``); the token is split and its JSON read here,
with a depth bound, so that no input reaches a parser's recursion limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.json_text import StrictJsonError, strict_json
from imm_faces.runtime.auth.sts import OIDC_PROVIDER_ARN_PATTERN

# Which algorithms each key type may verify (a JWK's own "alg" narrows it to that one).
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
}
MAX_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_TOKEN_DEPTH = 16  # a header or claims set nests a few levels; deeper is refused before it is parsed
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")
INVALID = "AuthenticationFail.OIDCToken.Invalid"


@dataclass(frozen=True)
class VerifyingKey:
    kid: str | None
    kty: str
    algorithms: tuple[str, ...]
    key: Any  # a cryptography public key


@dataclass(frozen=True)
class OidcProvider:
    arn: str
    issuer: str
    client_ids: tuple[str, ...]
    keys: tuple[VerifyingKey, ...]


@dataclass(frozen=True)
class Claims:
    issuer: str
    subject: str
    audiences: tuple[str, ...]


def _kty_of(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    raise ValueError("the public key must be an RSA or an EC key")


def _jwks_keys(jwks: Any, where: str) -> list[VerifyingKey]:
    from jwt import PyJWK
    from jwt.exceptions import PyJWKError

    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError(f'{where} must be a JWKS: {{"keys": [...]}} with at least one key')
    out = []
    for i, jwk in enumerate(jwks["keys"]):
        if not isinstance(jwk, dict) or jwk.get("kty") not in ALGORITHMS:
            raise ValueError(f"{where}.keys[{i}] must be an RSA or EC public key (kty RSA or EC)")
        if "d" in jwk:
            raise ValueError(f"{where}.keys[{i}] holds a private key: give the provider's public key")
        alg = jwk.get("alg")
        if alg is not None and alg not in ALGORITHMS[jwk["kty"]]:
            raise ValueError(f"{where}.keys[{i}]: alg {alg!r} is not an algorithm of a {jwk['kty']} key")
        try:
            key = PyJWK(jwk).key
        except (PyJWKError, ValueError, TypeError) as exc:
            raise ValueError(f"{where}.keys[{i}] is not a usable key ({exc})") from None
        kid = jwk.get("kid")
        out.append(
            VerifyingKey(
                kid if isinstance(kid, str) else None, jwk["kty"], (alg,) if alg else ALGORITHMS[jwk["kty"]], key
            )
        )
    return out


def _read(base: Path, name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where} must be a file name")
    try:
        return (base / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{where} {name} cannot be read ({reason})") from None


def provider_from_config(raw: Any, base: Path) -> OidcProvider:
    """A provider from its entry in the RAM config: ``arn``, ``issuer``, ``client_ids`` and one of ``jwks``
    (an object), ``jwks_file``, ``public_key`` (PEM text) or ``public_key_file`` (file names relative to
    ``base``). ``ValueError`` names the element that is wrong."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    sources = ("jwks", "jwks_file", "public_key", "public_key_file")
    if not isinstance(raw, dict) or not set(raw) <= {"arn", "issuer", "client_ids", *sources}:
        raise ValueError(f"must be an object with arn, issuer, client_ids and one of {', '.join(sources)}")
    arn, issuer, client_ids = raw.get("arn"), raw.get("issuer"), raw.get("client_ids")
    if not isinstance(arn, str) or not re.match(OIDC_PROVIDER_ARN_PATTERN, arn):
        raise ValueError("arn must be an OIDC provider ARN (acs:ram::<account>:oidc-provider/<name>)")
    if not isinstance(issuer, str) or not issuer.startswith("https://"):
        raise ValueError("issuer must be the issuer's https:// URL")
    if not isinstance(client_ids, list) or not client_ids or not all(isinstance(c, str) and c for c in client_ids):
        raise ValueError("client_ids must be a non-empty list of strings (the audiences tokens may name)")
    given = [s for s in sources if s in raw]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(sources)}")
    source = given[0]
    if source.startswith("jwks"):
        jwks = raw["jwks"] if source == "jwks" else _json_file(base, raw["jwks_file"], "jwks_file")
        keys = _jwks_keys(jwks, source)
    else:
        pem = raw["public_key"] if source == "public_key" else _read(base, raw["public_key_file"], source)
        if not isinstance(pem, str):
            raise ValueError("public_key must be PEM text")
        try:
            key = load_pem_public_key(pem.encode())
            kty = _kty_of(key)
        except ValueError as exc:
            raise ValueError(f"{source} is not a PEM public key of RSA or EC ({exc})") from None
        keys = [VerifyingKey(None, kty, ALGORITHMS[kty], key)]
    return OidcProvider(arn, issuer, tuple(client_ids), tuple(keys))


def _json_file(base: Path, name: Any, where: str) -> Any:
    try:
        return json.loads(_read(base, name, where))
    except ValueError as exc:
        raise ValueError(f"{where} {name} is not JSON ({exc})") from None


# ------------------------------------------------------------------------------------------------ tokens


def _invalid(detail: str) -> ApiError:
    return ApiError(INVALID, detail=detail)


def _segment_json(segment: str, what: str) -> dict[str, Any]:
    """A base64url segment holding a JSON object (strictly: no padding, no other character, UTF-8, no NaN,
    no key twice, nesting bounded)."""
    if not _SEGMENT.match(segment):
        raise _invalid(f"The {what} is not base64url.")
    try:
        text = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid(f"Cannot decode the {what} (not base64url of UTF-8 text).") from None
    try:
        value = strict_json(text, MAX_TOKEN_DEPTH)
    except StrictJsonError as exc:
        raise _invalid(f"The {what} {exc}.") from None
    except ValueError:
        raise _invalid(f"The {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise _invalid(f"The {what} is not a JSON object.")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or not 0 <= value <= MAX_NUMERIC_DATE
    ):
        raise _invalid(f"The claim {name} must be a number of seconds since 1970 (before the year 10000).")
    return float(value)


def _verify_signature(provider: OidcProvider, header: Mapping[str, Any], signing_input: bytes, signature: str) -> None:
    from jwt.algorithms import get_default_algorithms

    alg = header.get("alg")
    if not isinstance(alg, str) or not any(alg in k.algorithms for k in provider.keys):
        shown = alg if isinstance(alg, str) else type(alg).__name__
        raise _invalid(f"The algorithm {shown[:32]} that be specified in Jwt header is unknown.")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _invalid("The kid in the Jwt header must be a string.")
    candidates = [k for k in provider.keys if alg in k.algorithms and (kid is None or k.kid in (None, kid))]
    if not _SEGMENT.match(signature):
        raise _invalid("The signature is not base64url.")
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except binascii.Error:
        raise _invalid("The signature is not base64url.") from None
    algorithm = get_default_algorithms()[alg]
    for candidate in candidates:
        try:
            if algorithm.verify(signing_input, candidate.key, raw):
                return
        except (ValueError, TypeError):  # a signature of the wrong size for the key: not this key's
            continue
    raise ApiError("AuthenticationFail.OIDCToken.InvalidSignature")


def verify_token(provider: OidcProvider, token: str, now: float) -> Claims:
    """The token's claims if ``provider`` issued it for one of its client ids and it is valid at ``now``;
    otherwise STS's :class:`ApiError` (401)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid("The number of Jwt field should be divided into 3 parts with '.' .")
    header = _segment_json(parts[0], "Jwt header")
    claims = _segment_json(parts[1], "Jwt content")
    _verify_signature(provider, header, f"{parts[0]}.{parts[1]}".encode("ascii"), parts[2])
    issuer, subject, audience = claims.get("iss"), claims.get("sub"), claims.get("aud")
    if not isinstance(issuer, str) or not isinstance(subject, str) or not subject:
        raise _invalid("The claims iss and sub must be strings.")
    audiences = (audience,) if isinstance(audience, str) else audience
    if not isinstance(audiences, list | tuple) or not audiences or not all(isinstance(a, str) for a in audiences):
        raise _invalid("The claim aud must be a string or a non-empty list of strings.")
    if issuer != provider.issuer:
        raise ApiError("AuthenticationFail.OIDCToken.IssuerNotMatch")
    if not set(audiences) & set(provider.client_ids):
        raise ApiError("AuthenticationFail.OIDCToken.AudienceNotMatch")
    expires = _numeric_date(claims, "exp", required=True)
    not_before = _numeric_date(claims, "nbf", required=False)
    _numeric_date(claims, "iat", required=False)
    if expires is not None and expires <= now:
        raise ApiError("AuthenticationFail.OIDCToken.Expired")
    if not_before is not None and not_before > now:
        raise _invalid("The token is not valid yet (nbf is in the future).")
    return Claims(issuer, subject, tuple(audiences))
