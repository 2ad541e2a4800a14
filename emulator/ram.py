"""RAM in the emulator: policy documents, who may assume which role, and the decision on every request.

Alibaba Cloud decides each request against the caller's policies; the emulator does the same for what it is told
about (``--ram-config``, :func:`load_ram`): policies attached to an access key (a RAM user's), roles with their
trust policy and their policies, OIDC providers (:mod:`imm_faces.emulator.oidc`), and the session policy of the
credentials its STS issues (the ``Policy`` of AssumeRole / AssumeRoleWithOIDC). IMM requests are decided on
``imm:<Action>`` and the project's or dataset's ARN, OSS reads on ``oss:GetObject`` and the object's ARN, and
indexing reads on the project's service role (:class:`ServiceRoleReads`).

The policy language, as RAM documents it: ``{"Version": "1", "Statement": [...]}``; a statement has ``Effect``
(``Allow`` or ``Deny``), ``Action`` or ``NotAction``, ``Resource`` or ``NotResource`` (``Principal`` instead, in a
trust policy), and optionally ``Condition``. Actions and resources take ``*`` (any run of characters) and ``?``
(one character); actions compare without case, resources with it. Anything else (another key, another type, a
condition operator the emulator does not evaluate, a document over its size) refuses the whole document, as STS
refuses a session policy that fails its grammar check; the emulator evaluates the ``String*`` and ``Bool``
condition operators only (a policy using another is refused, never half-evaluated).

Decision (RAM's rules): an explicit ``Deny`` in any policy that applies wins; otherwise every policy set that
applies must allow the request (the identity's policies, and the session policy when the credentials carry one):
nothing allowed is denied. A caller with no policy set, the account's own keys and a role the emulator has no
entry for, may do anything (the emulator's owner, as before RAM existed here). A condition key the request does
not carry makes a positive operator false and a negated one (``StringNot...``) true: inferred from AWS's
documented semantics, RAM's docs are silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imm_faces.emulator.json_text import StrictJsonError, strict_json
from imm_faces.emulator.oidc import OidcProvider, provider_from_config
from imm_faces.runtime.auth.sts import ROLE_ARN_PATTERN
from imm_faces.runtime.rules import ACCOUNT_ID_PATTERN, IMM_SERVICE, POLICY_DOCUMENT_MAX_CHARS, split_oss_uri

EMULATOR_ACCOUNT_ID = "1000000000000001"
"""The account the emulator's own access keys (and its projects and objects) belong to."""
DEFAULT_REGION = "cn-hangzhou"
"""The region in the ARNs of the emulator's resources (it serves one region), unless the RAM config names another."""
ASSUME_ROLE_ACTION = "sts:AssumeRole"  # a trust policy names this action for AssumeRole and AssumeRoleWithOIDC
# Policies nest five levels (document, statements, statement, condition, operator); deeper is refused unparsed.
MAX_POLICY_DEPTH = 8
MAX_CONFIG_DEPTH = 16  # the RAM config: roles hold policies, providers a JWKS

Context = Mapping[str, Sequence[str]]
"""Condition keys (lower case) the request carries, each with its values."""
Decision = Literal["Allow", "Deny"] | None

_EFFECTS = ("Allow", "Deny")
_STATEMENT_KEYS = frozenset({"Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition"})
_PRINCIPAL_KINDS = ("RAM", "Service", "Federated")
_STRING_OPERATORS = {  # name -> (negated, compare without case, wildcards)
    "StringEquals": (False, False, False),
    "StringNotEquals": (True, False, False),
    "StringEqualsIgnoreCase": (False, True, False),
    "StringNotEqualsIgnoreCase": (True, True, False),
    "StringLike": (False, False, True),
    "StringNotLike": (True, False, True),
    "Bool": (False, True, False),
}
_ACTION = re.compile(r"^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$", re.IGNORECASE)
_CONDITION_KEY = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9_.-]+$")


class PolicyError(ValueError):
    """A policy document RAM would not accept; the message says where and why."""


class PolicySizeError(PolicyError):
    """A policy document longer than its limit."""


def _glob(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """A string or a non-empty list of non-empty strings (how RAM spells one value or several)."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise PolicyError(f"{where} must be a non-empty string or a non-empty list of them")
    return tuple(items)


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str  # lower case: condition keys compare without case
    values: tuple[str, ...]

    def holds(self, context: Context) -> bool:
        negated, ignore_case, wildcards = _STRING_OPERATORS[self.operator]
        present = context.get(self.key)
        if present is None:
            return negated
        if wildcards:
            patterns = [_glob(v, ignore_case) for v in self.values]
            hit = any(p.fullmatch(s) for p in patterns for s in present)
        elif ignore_case:
            hit = bool({v.casefold() for v in self.values} & {s.casefold() for s in present})
        else:
            hit = bool(set(self.values) & set(present))
        return hit != negated


def _conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(value, dict) or not value:
        raise PolicyError(f"{where} must be an object of operators")
    out: list[Condition] = []
    for operator, keys in value.items():
        if operator not in _STRING_OPERATORS:
            supported = ", ".join(_STRING_OPERATORS)
            raise PolicyError(f"{where}: the operator {operator!r} is not one the emulator evaluates ({supported})")
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{where}.{operator} must be an object of condition keys")
        for key, raw in keys.items():
            if not _CONDITION_KEY.match(key):
                raise PolicyError(f"{where}.{operator}: {key!r} is not a condition key (service:name)")
            items = raw if isinstance(raw, list) else [raw]
            if not items or not all(isinstance(v, str | bool) for v in items):
                raise PolicyError(f"{where}.{operator}.{key} must be a string, a boolean or a list of them")
            values = tuple(str(v).lower() if isinstance(v, bool) else v for v in items)
            out.append(Condition(operator, key.lower(), values))
    return tuple(out)


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[re.Pattern[str], ...]
    not_action: bool
    resources: tuple[re.Pattern[str], ...] | None  # None in a trust policy
    not_resource: bool
    principals: Mapping[str, tuple[re.Pattern[str], ...]] | None  # trust policies only
    conditions: tuple[Condition, ...]

    def applies(
        self, action: str, resource: str | None, context: Context, principals: Sequence[tuple[str, str]] = ()
    ) -> bool:
        if any(p.fullmatch(action) for p in self.actions) == self.not_action:
            return False
        if self.resources is not None and (
            resource is None or any(p.fullmatch(resource) for p in self.resources) == self.not_resource
        ):
            return False
        if self.principals is not None and not any(
            p.fullmatch(value) for kind, value in principals for p in self.principals.get(kind, ())
        ):
            return False
        return all(c.holds(context) for c in self.conditions)


def _one_of(raw: Mapping[str, Any], names: tuple[str, str], where: str) -> tuple[Any, bool]:
    given = [n for n in names if n in raw]
    if len(given) != 1:
        raise PolicyError(f"{where} must have exactly one of {' and '.join(names)}")
    return raw[given[0]], given[0] == names[1]


def _statement(raw: Any, where: str, trust: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object")
    if unknown := sorted(set(raw) - _STATEMENT_KEYS):
        raise PolicyError(f"{where}: unknown element {unknown[0]!r}")
    if raw.get("Effect") not in _EFFECTS:
        raise PolicyError(f"{where}.Effect must be Allow or Deny")
    action_value, not_action = _one_of(raw, ("Action", "NotAction"), where)
    actions = _strings(action_value, f"{where}.Action")
    if bad := [a for a in actions if not _ACTION.match(a)]:
        raise PolicyError(f"{where}.Action: {bad[0]!r} is not an action (service:Name, wildcards * and ?)")
    resources: tuple[re.Pattern[str], ...] | None = None
    not_resource = False
    principals: dict[str, tuple[re.Pattern[str], ...]] | None = None
    if trust:
        if "Resource" in raw or "NotResource" in raw:
            raise PolicyError(f"{where}: a trust policy names a Principal, not a Resource")
        principal = raw.get("Principal")
        if not isinstance(principal, dict) or not principal or not set(principal) <= set(_PRINCIPAL_KINDS):
            raise PolicyError(f"{where}.Principal must be an object of {', '.join(_PRINCIPAL_KINDS)}")
        principals = {
            k: tuple(_glob(v, False) for v in _strings(principal[k], f"{where}.Principal.{k}")) for k in principal
        }
    else:
        if "Principal" in raw:
            raise PolicyError(f"{where}: Principal belongs in a trust policy only")
        resource_value, not_resource = _one_of(raw, ("Resource", "NotResource"), where)
        resources = tuple(_glob(r, False) for r in _strings(resource_value, f"{where}.Resource"))
    conditions = _conditions(raw["Condition"], f"{where}.Condition") if "Condition" in raw else ()
    return Statement(
        raw["Effect"],
        tuple(_glob(a, True) for a in actions),
        not_action,
        resources,
        not_resource,
        principals,
        conditions,
    )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    def decide(
        self,
        action: str,
        resource: str | None,
        context: Context = {},  # noqa: B006 - read only
        principals: Sequence[tuple[str, str]] = (),
    ) -> Decision:
        """``Deny`` when a Deny statement applies, else ``Allow`` when an Allow one does, else None."""
        applying = [s.effect for s in self.statements if s.applies(action, resource, context, principals)]
        return "Deny" if "Deny" in applying else "Allow" if applying else None


def parse_policy(
    document: str | Mapping[str, Any], *, limit: int = POLICY_DOCUMENT_MAX_CHARS, trust: bool = False
) -> Policy:
    """A policy document (JSON text, or already parsed) checked against RAM's grammar; :class:`PolicySizeError`
    when its text is over ``limit`` characters (an object is measured as compact JSON), :class:`PolicyError`
    for anything else that is wrong. ``trust``: a role's trust policy (``Principal``, no ``Resource``)."""
    text = document if isinstance(document, str) else json.dumps(document, separators=(",", ":"))
    if len(text) > limit:
        raise PolicySizeError(f"the document has {len(text)} characters; at most {limit}")
    try:
        raw = strict_json(text, MAX_POLICY_DEPTH)
    except StrictJsonError as exc:
        raise PolicyError(f"the document {exc}") from None
    except ValueError:
        raise PolicyError("the document is not JSON") from None
    if not isinstance(raw, dict):
        raise PolicyError("the document must be a JSON object")
    if unknown := sorted(set(raw) - {"Version", "Statement"}):
        raise PolicyError(f"unknown element {unknown[0]!r}")
    if raw.get("Version") != "1":
        raise PolicyError('Version must be "1"')
    statements = raw.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise PolicyError("Statement must be a non-empty list")
    return Policy(tuple(_statement(s, f"Statement[{i}]", trust) for i, s in enumerate(statements)))


# ------------------------------------------------------------------------------------------------ identities


class AccessDeniedError(Exception):
    """RAM refuses ``action`` on ``resource``; ``reason`` says whether a Deny applied or nothing allowed it."""

    def __init__(self, action: str, resource: str, reason: str) -> None:
        self.action = action
        self.resource = resource
        self.reason = reason
        super().__init__(f"{action} on {resource} ({reason})")


@dataclass(frozen=True)
class Principal:
    """Who signs with a key, and the policy sets that decide what the key may do: ``policies`` (a RAM user's, or
    an assumed role's; None: no set applies, the account's owner) and ``session`` (STS credentials' ``Policy``)."""

    arn: str
    account_id: str
    policies: tuple[Policy, ...] | None = None
    session: Policy | None = None

    def authorize(self, action: str, resource: str, context: Context = {}) -> None:  # noqa: B006 - read only
        """Return if RAM allows ``action`` on ``resource``; raise :class:`AccessDeniedError` otherwise."""
        sets = [s for s in (self.policies, (self.session,) if self.session else None) if s is not None]
        decisions = [{p.decide(action, resource, context) for p in policies} for policies in sets]
        if any("Deny" in d for d in decisions):
            raise AccessDeniedError(action, resource, "explicitly denied")
        if any("Allow" not in d for d in decisions):
            raise AccessDeniedError(action, resource, "not allowed by any policy")

    def as_trusted(self) -> list[tuple[str, str]]:
        """What a trust policy's ``RAM`` principal may name to trust this caller: its account, or itself."""
        return [("RAM", f"acs:ram::{self.account_id}:root"), ("RAM", self.arn)]


def account_root(account_id: str) -> Principal:
    return Principal(f"acs:ram::{account_id}:root", account_id)


@dataclass(frozen=True)
class Role:
    arn: str
    trust: Policy
    policies: tuple[Policy, ...]

    def trusts(self, principals: Sequence[tuple[str, str]], context: Context = {}) -> bool:  # noqa: B006
        """Whether the trust policy lets one of ``principals`` (kind, value) assume the role."""
        return self.trust.decide(ASSUME_ROLE_ACTION, None, context, principals) == "Allow"


@dataclass
class Ram:
    """What the emulator knows of RAM: its account and region (the ARNs of its resources), the policies attached
    to its access keys, its roles (None: none configured, any role may be assumed by a known caller, with the
    account's full rights) and its OIDC providers (none: AssumeRoleWithOIDC is refused)."""

    account_id: str = EMULATOR_ACCOUNT_ID
    region: str = DEFAULT_REGION
    key_policies: dict[str, tuple[Policy, ...]] = field(default_factory=dict)
    roles: dict[str, Role] | None = None
    providers: dict[str, OidcProvider] = field(default_factory=dict)

    def principal_of_key(self, key_id: str) -> Principal:
        policies = self.key_policies.get(key_id)
        if policies is None:
            return account_root(self.account_id)
        return Principal(f"acs:ram::{self.account_id}:user/{key_id}", self.account_id, policies)

    def imm_resource(self, project: str | None, dataset: str | None) -> str:
        """The ARN an IMM request acts on: its dataset's, else its project's, else the region's (ListProjects)."""
        base = f"acs:imm:{self.region}:{self.account_id}:"
        if not project:
            return base + "*"
        return base + f"project/{project}" + (f"/dataset/{dataset}" if dataset else "")

    def oss_resource(self, bucket: str, key: str | None = None) -> str:
        """An OSS bucket's ARN, or an object's (``acs:oss:<region>:<account>:<bucket>/<key>``)."""
        return f"acs:oss:{self.region}:{self.account_id}:{bucket}" + (f"/{key}" if key is not None else "")


# ------------------------------------------------------------------------------------------------ indexing reads


class ServiceRoleReads:
    """IMM reads OSS for indexing as the project's service role (``ServiceRole``, default
    ``AliyunIMMDefaultRole``): when the emulator knows that role, its trust policy must let ``imm.aliyuncs.com``
    assume it and its policies must allow ``oss:ListObjects`` on the bucket (with ``oss:Prefix``) and
    ``oss:GetObject`` on each object. A role the emulator does not know reads everything (as before).
    ``service_role_of(project)`` gives the project's role name (None: the project is gone)."""

    def __init__(self, ram: Ram, service_role_of: Callable[[str], str | None]) -> None:
        self.ram = ram
        self.service_role_of = service_role_of

    def check(self, project: str, action: str, uri: str) -> None:
        """Raise :class:`AccessDeniedError` unless the project's service role may do ``action`` (``oss:GetObject``
        on the object, ``oss:ListObjects`` on the location's bucket and prefix) at ``uri``."""
        bucket, key = split_oss_uri(uri)
        listing = action == "oss:ListObjects"
        resource = self.ram.oss_resource(bucket, None if listing else key)
        role_name = self.service_role_of(project)
        if role_name is None:
            return  # the project is gone: nothing will be recorded
        role_arn = role_name if role_name.startswith("acs:") else f"acs:ram::{self.ram.account_id}:role/{role_name}"
        role = (self.ram.roles or {}).get(role_arn)
        if role is None:
            return
        if not role.trusts([("Service", IMM_SERVICE)]):
            raise AccessDeniedError(action, resource, f"not possible: the role {role_arn} does not trust {IMM_SERVICE}")
        context = {"oss:prefix": (key,)} if listing else {}
        Principal(role_arn, self.ram.account_id, role.policies).authorize(action, resource, context)


# ------------------------------------------------------------------------------------------------ the config file


class RamConfigError(ValueError):
    """The RAM config cannot be used; the message names the element and the problem."""


_CONFIG_KEYS = frozenset({"account_id", "region", "access_keys", "roles", "oidc_providers"})


def _policies(value: Any, where: str, limit: int = POLICY_DOCUMENT_MAX_CHARS) -> tuple[Policy, ...]:
    if not isinstance(value, list):
        raise RamConfigError(f"{where} must be a list of policy documents")
    out = []
    for i, document in enumerate(value):
        if not isinstance(document, str | dict):
            raise RamConfigError(f"{where}[{i}] must be a policy document (an object or its JSON text)")
        try:
            out.append(parse_policy(document, limit=limit))
        except PolicyError as exc:
            raise RamConfigError(f"{where}[{i}]: {exc}") from None
    return tuple(out)


def _role(raw: Any, where: str) -> Role:
    if not isinstance(raw, dict) or not set(raw) <= {"arn", "trust_policy", "policies"}:
        raise RamConfigError(f"{where} must be an object with arn, and optionally trust_policy and policies")
    arn = raw.get("arn")
    if not isinstance(arn, str) or not re.match(ROLE_ARN_PATTERN, arn):
        raise RamConfigError(f"{where}.arn must be a role ARN (acs:ram::<account>:role/<name>)")
    # RAM's default trust policy for a role of an account: that account's identities.
    trust_doc = raw.get("trust_policy") or {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ASSUME_ROLE_ACTION,
                "Principal": {"RAM": [f"acs:ram::{arn.split(':')[3]}:root"]},
            }
        ],
    }
    if not isinstance(trust_doc, str | dict):
        raise RamConfigError(f"{where}.trust_policy must be a policy document")
    try:
        trust = parse_policy(trust_doc, trust=True)
    except PolicyError as exc:
        raise RamConfigError(f"{where}.trust_policy: {exc}") from None
    return Role(arn, trust, _policies(raw.get("policies", []), f"{where}.policies"))


def ram_from_document(doc: Any, base: Path) -> Ram:
    """A :class:`Ram` from the config's JSON document (relative file names are read from ``base``)."""
    if not isinstance(doc, dict):
        raise RamConfigError("the config must be a JSON object")
    if unknown := sorted(set(doc) - _CONFIG_KEYS):
        raise RamConfigError(f"unknown element {unknown[0]!r} (known: {', '.join(sorted(_CONFIG_KEYS))})")
    ram = Ram()
    account = doc.get("account_id", ram.account_id)
    if not isinstance(account, str) or not re.fullmatch(ACCOUNT_ID_PATTERN, account):
        raise RamConfigError("account_id must be a string of ASCII digits")
    region = doc.get("region", ram.region)
    if not isinstance(region, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", region):
        raise RamConfigError("region must be a region id such as cn-hangzhou")
    ram.account_id, ram.region = account, region
    keys = doc.get("access_keys", {})
    if not isinstance(keys, dict) or not all(isinstance(v, dict) and set(v) == {"policies"} for v in keys.values()):
        raise RamConfigError('access_keys must map access key ids to {"policies": [...]}')
    ram.key_policies = {k: _policies(v["policies"], f"access_keys.{k}.policies") for k, v in keys.items()}
    if "roles" in doc:
        if not isinstance(doc["roles"], list):
            raise RamConfigError("roles must be a list")
        roles = [_role(r, f"roles[{i}]") for i, r in enumerate(doc["roles"])]
        ram.roles = {r.arn: r for r in roles}
    providers = doc.get("oidc_providers", [])
    if not isinstance(providers, list):
        raise RamConfigError("oidc_providers must be a list")
    for i, raw in enumerate(providers):
        try:
            provider = provider_from_config(raw, base)
        except ValueError as exc:
            raise RamConfigError(f"oidc_providers[{i}]: {exc}") from None
        ram.providers[provider.arn] = provider
    return ram


def load_ram(path: str | Path) -> Ram:
    """Read the RAM config file (JSON); :class:`RamConfigError` names what is wrong."""
    path = Path(path)
    try:
        doc = strict_json(path.read_text(encoding="utf-8"), MAX_CONFIG_DEPTH)
    except OSError as exc:
        raise RamConfigError(f"cannot be read ({exc.strerror})") from None
    except StrictJsonError as exc:
        raise RamConfigError(f"is JSON the emulator does not read: it {exc}") from None
    except (UnicodeDecodeError, ValueError):
        raise RamConfigError("is not JSON text") from None
    return ram_from_document(doc, path.parent)


def principals_of_keys(ram: Ram, key_ids: Iterable[str]) -> dict[str, Principal]:
    """The principal of each configured key; a policy for a key that is not configured is a config error."""
    ids = set(key_ids)
    if unknown := sorted(set(ram.key_policies) - ids):
        raise RamConfigError(f"access_keys.{unknown[0]}: no such access key is configured")
    return {key_id: ram.principal_of_key(key_id) for key_id in ids}
