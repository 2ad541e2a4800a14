"""Where credentials come from: one chain for the IMM providers and for ``imm-faces verify`` (the front door of
:mod:`imm_faces.runtime.auth`, whose modules hold it: the values, the settings table, the chain, its sources).

The order (first source that applies wins; it matches pulumi-alicloud's, see the Terraform provider's
"Authentication" page, where the two overlap), as :data:`~imm_faces.runtime.auth.chain.CHAIN` lists it:

1. **Explicit settings**: arguments, or the stack's ``alicloud:accessKey`` / ``alicloud:secretKey`` /
   ``alicloud:securityToken``; else ``alicloud:assumeRoleWithOidc`` (AssumeRoleWithOIDC with its
   ``oidcToken`` or ``oidcTokenFile``); else ``alicloud:ecsRoleName`` (the ECS instance role).
2. **Environment AK/STS**: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` /
   ``ALIBABA_CLOUD_SECURITY_TOKEN``, then pulumi-alicloud's ``ALICLOUD_ACCESS_KEY`` / ``ALICLOUD_SECRET_KEY`` /
   ``ALICLOUD_SECURITY_TOKEN``.
3. **Environment OIDC** (RRSA, CI): ``ALIBABA_CLOUD_ROLE_ARN`` + ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN`` +
   ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` (all three, or it is an error), ``ALIBABA_CLOUD_ROLE_SESSION_NAME``.
4. **aliyun CLI profile** in ``~/.aliyun/config.json`` (``alicloud:sharedCredentialsFile``,
   ``ALICLOUD_SHARED_CREDENTIALS_FILE`` or ``ALIBABA_CLOUD_CONFIG_FILE`` name another file): the profile named by
   ``alicloud:profile`` / ``--profile``, else ``ALIBABA_CLOUD_PROFILE`` / ``ALICLOUD_PROFILE``, else the file's
   ``current``, else ``default``. Modes: ``AK``, ``StsToken``, ``RamRoleArn``, ``EcsRamRole``, ``OIDC``,
   ``ChainableRamRoleArn`` (every mode that needs no browser or external program).
5. **ECS instance role** named by ``ALIBABA_CLOUD_ECS_METADATA`` / ``ALICLOUD_ECS_ROLE_NAME``: the metadata
   service, asked for an IMDSv2 token first (IMDSv1 only when that fails and ``ALIBABA_CLOUD_IMDSV1_DISABLED``
   is not ``true``). The metadata service is never probed without a role name (pulumi-alicloud does not either):
   off ECS that would cost a connect timeout on every run.
6. **Credentials URI**: ``alicloud:credentialsUri`` / ``ALIBABA_CLOUD_CREDENTIALS_URI`` (a sidecar answering the
   metadata service's JSON document).

Then, **on top of whichever source was found**, ``alicloud:assumeRole`` (``roleArn``, ``sessionName``,
``externalId``, ``sessionExpiration``, ``policy``), else ``ALICLOUD_ASSUME_ROLE_ARN`` (with
``ALICLOUD_ASSUME_ROLE_SESSION_NAME`` / ``ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION``): AssumeRole signed by that
source, as pulumi-alicloud does, so the RAM resources it creates and the IMM resources land in the same account.

STS is ``alicloud:endpoints[].sts``, ``ALIBABA_CLOUD_STS_ENDPOINT`` / ``ALICLOUD_STS_ENDPOINT``, else
``sts[-vpc].<ALIBABA_CLOUD_STS_REGION>.aliyuncs.com`` (``-vpc`` with ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true``),
else ``sts.aliyuncs.com``.

Temporary credentials (every source but a fixed AccessKey or STS token) are a :class:`RefreshingCredentials`:
fetched on first use and again before they expire (a quarter of their lifetime ahead, at most 15 minutes),
so a long clustering wait never signs with an expired token. If a refresh fails while the current set is still
valid, the current set is used and the refresh is tried again on the next request.

When nothing applies, :class:`CredentialsNotFoundError` lists what was tried. No secret, token or OIDC token is
ever part of a repr, a str, a log line, an exception message or a pickle.

Why not Alibaba's ``alibabacloud-credentials`` package (read: 1.0.12, a dependency of the official SDK), whose
``DefaultCredentialsProvider`` implements most of this chain: (a) its STS calls hard-code ``https`` and the
``host`` header, so they cannot be pointed at a loopback STS, and the chain could not be tested end to end;
(b) importing it pulls in Tea, requests, aiohttp and APScheduler (about 0.3 s here), and every
``EcsRamRoleCredentialsProvider`` starts an APScheduler thread; (c) it attaches its own ``StreamHandler`` to
the ``credentials`` logger at import time and logs refresh failures with STS's answer, past our redaction;
(d) its order (env, OIDC, CLI profile, ``~/.alibabacloud/credentials.ini``, ECS probe, URI) is not
pulumi-alicloud's, and it has no assume-role on top of an arbitrary source nor the ``alicloud:*`` settings.
What it does and we follow: the environment variable names, the CLI profile modes and fields, the metadata
service's IMDSv2 token header and TTL, the credentials-URI document, and the refresh before expiry.
"""

from imm_faces.runtime.auth.chain import CHAIN, resolve_provider
from imm_faces.runtime.auth.config import CONFIG_KEYS, ENV_NAMES, SETTINGS
from imm_faces.runtime.auth.credentials import (
    Credentials,
    CredentialsNotFoundError,
    CredentialSource,
    LazyCredentials,
    NotTextError,
    RefreshingCredentials,
    redact,
)
from imm_faces.runtime.auth.settings import AssumeRole, CredentialSettings, OidcRole, config_keys_present

__all__ = [
    "CHAIN",
    "CONFIG_KEYS",
    "ENV_NAMES",
    "SETTINGS",
    "AssumeRole",
    "CredentialSettings",
    "CredentialSource",
    "Credentials",
    "CredentialsNotFoundError",
    "LazyCredentials",
    "NotTextError",
    "OidcRole",
    "RefreshingCredentials",
    "config_keys_present",
    "redact",
    "resolve_provider",
]
