"""The one table of the settings the credential chain reads: each with its stack setting (pulumi-alicloud's
``alicloud:*`` key), its environment variables (first set wins) and its default.

After botocore's ``configprovider`` (one table, read by name): a variable is named here and nowhere else; the chain
(:mod:`.chain`), its sources (:mod:`.sources`) and the errors they raise read the names from :data:`SETTINGS`, as
do the components (``alicloud:assumeRole`` when they create RAM objects, the imm provider's region).
Where a setting holds an object (``alicloud:assumeRole``), its members are read by :mod:`.settings`. A leaf: it
imports nothing of this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One setting: ``config_key`` is the stack's (None: environment only), ``env`` its variables in the order
    they are read (the first set and not empty wins), ``default`` what holds when none is set."""

    name: str
    config_key: str | None
    env: tuple[str, ...] = ()
    default: str | None = None

    def from_env(self, env: Mapping[str, str]) -> str | None:
        """The value of the first of :attr:`env` that is set and not empty, else :attr:`default`."""
        return next((env[n] for n in self.env if env.get(n)), self.default)

    def enabled(self, env: Mapping[str, str]) -> bool:
        """A switch: ``true`` (any case, spaces around) turns it on; anything else, or nothing, leaves it off."""
        return (self.from_env(env) or "").strip().lower() == "true"


STS_ENDPOINTS_KEY = "alicloud:endpoints"

_TABLE = (
    # The AccessKey: the stack's, else ALIBABA_CLOUD_* (read together), else ALICLOUD_* (read together).
    Setting("access_key_id", "alicloud:accessKey", ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY")),
    Setting("access_key_secret", "alicloud:secretKey", ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY")),
    Setting("security_token", "alicloud:securityToken", ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN")),
    # The aliyun CLI's config file and profile.
    Setting("profile", "alicloud:profile", ("ALIBABA_CLOUD_PROFILE", "ALICLOUD_PROFILE")),
    Setting(
        "shared_credentials_file",
        "alicloud:sharedCredentialsFile",
        ("ALICLOUD_SHARED_CREDENTIALS_FILE", "ALIBABA_CLOUD_CONFIG_FILE"),
        default="~/.aliyun/config.json",
    ),
    # A role assumed on top of whichever source was found (the object's members: settings.ASSUME_ROLE_MEMBERS).
    Setting("assume_role", "alicloud:assumeRole", ("ALICLOUD_ASSUME_ROLE_ARN",)),
    Setting("assume_role_session_name", None, ("ALICLOUD_ASSUME_ROLE_SESSION_NAME",)),
    Setting("assume_role_session_expiration", None, ("ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION",)),
    # AssumeRoleWithOIDC: the stack's object, or the three variables together (RRSA, CI).
    Setting("assume_role_with_oidc", "alicloud:assumeRoleWithOidc"),
    Setting("role_arn", None, ("ALIBABA_CLOUD_ROLE_ARN",)),
    Setting("oidc_provider_arn", None, ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN",)),
    Setting("oidc_token_file", None, ("ALIBABA_CLOUD_OIDC_TOKEN_FILE",)),
    Setting("role_session_name", None, ("ALIBABA_CLOUD_ROLE_SESSION_NAME",)),
    # The ECS instance role (the metadata service is never asked without a role name).
    Setting("ecs_role_name", "alicloud:ecsRoleName", ("ALIBABA_CLOUD_ECS_METADATA", "ALICLOUD_ECS_ROLE_NAME")),
    Setting("ecs_metadata_disabled", None, ("ALIBABA_CLOUD_ECS_METADATA_DISABLED",)),
    Setting("imdsv1_disabled", None, ("ALIBABA_CLOUD_IMDSV1_DISABLED",)),
    # A sidecar answering the metadata service's document.
    Setting("credentials_uri", "alicloud:credentialsUri", ("ALIBABA_CLOUD_CREDENTIALS_URI",)),
    # Where STS is (the stack's is the ``sts`` entry of ``alicloud:endpoints``).
    Setting("sts_endpoint", STS_ENDPOINTS_KEY, ("ALIBABA_CLOUD_STS_ENDPOINT", "ALICLOUD_STS_ENDPOINT")),
    Setting("sts_region", None, ("ALIBABA_CLOUD_STS_REGION",)),
    Setting("vpc_endpoint_enabled", None, ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",)),
    # Not the chain's: the region the imm provider plugin falls back on when ``imm:region`` is not set.
    Setting("region", None, ("ALIBABA_CLOUD_REGION", "ALICLOUD_REGION")),
)
SETTINGS: Mapping[str, Setting] = {s.name: s for s in _TABLE}
if len(SETTINGS) != len(_TABLE):  # one row per setting: a second one would silently win
    raise RuntimeError("runtime.auth.config lists a setting twice")

ACCESS_KEY = tuple(SETTINGS[n] for n in ("access_key_id", "access_key_secret", "security_token"))
"""The AccessKey's three settings, in the order (id, secret, token)."""
ENV_NAMES = tuple(s.env[0] for s in ACCESS_KEY)
"""The environment variables Alibaba's tools read (the SDK, the aliyun CLI, the Terraform provider)."""
OIDC_ENV_NAMES = tuple(SETTINGS[n].env[0] for n in ("role_arn", "oidc_provider_arn", "oidc_token_file"))
"""AssumeRoleWithOIDC from the environment: all three, or none."""

CONFIG_KEYS: tuple[str, ...] = tuple(key for s in _TABLE if (key := s.config_key) and key != STS_ENDPOINTS_KEY)
"""The stack settings (pulumi-alicloud's) that decide which credentials are used."""
ALICLOUD_SETTINGS_KEYS = (*CONFIG_KEYS, STS_ENDPOINTS_KEY)
"""Every pulumi-alicloud setting the credential chain reads (``endpoints`` for its ``sts`` entry)."""
