"""IMM's naming rules and limits (2020-09-30 API), defined once.

The client checks them before sending, the emulator enforces them as the service does, and the Pulumi
components validate their arguments with them. Each check raises ``ValueError`` with a message that names
the rule; callers add the field name.
"""

from __future__ import annotations

import re

# ProjectName / DatasetName: 1-128 chars of letters, digits, '-' and '_', starting with a letter or '_'.
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
NAME_RULE = "1-128 characters: letters, digits, '-' and '_', starting with a letter or '_'"
DESCRIPTION_MAX = 256
USER_DATA_MAX_BYTES = 2048
BATCH_INDEX_MAX_FILES = 100
BATCH_GET_MAX_IDS = 100
TASK_RETENTION_DAYS = 7  # IMM keeps asynchronous task records (GetTask/ListTasks) this long
BATCH_DELETE_MAX_URIS = 100  # BatchDeleteFileMeta URIs
MERGE_MAX_FROMS = 100  # CreateFigureClustersMergingTask Froms
SIMPLE_QUERY_MAX_GROUPS = 2000  # SimpleQuery MaxResults when Aggregations are given
SIMPLE_QUERY_MAX_SORT_FIELDS = 5
OSS_URI_PATTERN = re.compile(r"^oss://(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")
OSS_URI_RULE = "oss://<bucket>[/<key>], bucket of 3-63 lowercase letters, digits and '-'"

# Quota parameters: (minimum, maximum, default) as documented for CreateProject/CreateDataset.
QUOTAS: dict[str, tuple[int, int, int]] = {
    "ProjectMaxDatasetCount": (1, 1_000_000_000, 1_000_000_000),
    "DatasetMaxBindCount": (1, 10, 10),
    "DatasetMaxFileCount": (1, 100_000_000, 100_000_000),
    "DatasetMaxEntityCount": (1, 2**63 - 1, 10_000_000_000),
    "DatasetMaxRelationCount": (1, 2**63 - 1, 100_000_000_000),
    "DatasetMaxTotalFileSize": (1, 2**63 - 1, 90_000_000_000_000_000),
}
MAX_PROJECTS_PER_REGION = 100  # per account, by default (raised by ticket)
PROJECT_QUERIES_PER_SECOND = 100
ENGINE_CONCURRENCY = 100
DEFAULT_SERVICE_ROLE = "AliyunIMMDefaultRole"

# Page sizes: (maximum, default when 0 or absent).
PAGE_LIMITS: dict[str, tuple[int, int]] = {
    "ListProjects": (200, 100),
    "ListDatasets": (200, 100),
    "ListBindings": (200, 100),
    "ListTasks": (100, 100),
    "QueryFigureClusters": (100, 100),
    "SimpleQuery": (100, 100),
}

REGIONS = frozenset(
    {
        "cn-qingdao",
        "cn-beijing",
        "cn-zhangjiakou",
        "cn-wulanchabu",
        "cn-hangzhou",
        "cn-shanghai",
        "cn-shenzhen",
        "cn-guangzhou",
        "cn-chengdu",
        "cn-hongkong",
        "ap-southeast-1",
        "ap-southeast-5",
        "ap-southeast-2",
        "eu-central-1",
        "eu-west-1",
        "us-east-1",
        "us-west-1",
        "ap-south-1",
    }
)


def check_name(value: str) -> str:
    """Validate a ProjectName or DatasetName."""
    if not NAME_PATTERN.match(value):
        raise ValueError(f"must be {NAME_RULE}; got {value!r}")
    return value


def check_seconds(value: object) -> float:
    """A positive duration in seconds (an int or a float, not a bool)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive number of seconds; got {value!r}")
    return float(value)


def whole_number(text: str, high: int) -> int | None:
    """``text`` as a whole number written in ASCII digits (``isdigit`` alone also takes ``²`` and other digits
    ``int`` refuses), or None when it is not one or is over ``high`` (checked on its length first, so a
    10,000-digit text is never converted)."""
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(high)):
        return None
    value = int(digits)
    return value if value <= high else None


def check_description(value: str) -> str:
    if not 1 <= len(value) <= DESCRIPTION_MAX:
        raise ValueError(f"must be 1-{DESCRIPTION_MAX} characters; got {len(value)}")
    return value


def check_user_data(value: str) -> str:
    if len(value.encode()) > USER_DATA_MAX_BYTES:
        raise ValueError(f"must be at most {USER_DATA_MAX_BYTES} bytes; got {len(value.encode())}")
    return value


def check_quota(name: str, value: int) -> int:
    low, high, _ = QUOTAS[name]
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}; got {value}")
    return value


def check_oss_uri(value: str, *, object_required: bool = False) -> str:
    """Validate ``oss://bucket[/prefix]``; with ``object_required`` a non-empty object key is needed."""
    match = OSS_URI_PATTERN.match(value)
    if not match or (object_required and not match.group("key")):
        rule = "oss://<bucket>/<key>" if object_required else OSS_URI_RULE
        raise ValueError(f"must be {rule}; got {value!r}")
    return value


def check_region(value: str) -> str:
    if value not in REGIONS:
        raise ValueError(f"must be an IMM region ({', '.join(sorted(REGIONS))}); got {value!r}")
    return value


def split_oss_uri(uri: str) -> tuple[str, str]:
    """``oss://bucket/a/b.jpg`` -> (``bucket``, ``a/b.jpg``); the key is empty for a bare bucket."""
    match = OSS_URI_PATTERN.match(uri)
    if not match:
        raise ValueError(f"must be {OSS_URI_RULE}; got {uri!r}")
    return match.group("bucket"), match.group("key") or ""


# Face groups (figure clusters). IMM's image FAQ ("Why does face clustering fail to group face images?"): a
# group is created only when the dataset holds at least FACE_GROUP_MIN_GOOD_FACES face images of one person
# whose face is larger than FACE_GROUP_MIN_SIDE x FACE_GROUP_MIN_SIDE pixels, with |Pitch|, |Roll| and |Yaw| of
# HeadPose all under FACE_GROUP_MAX_POSE degrees and FaceQuality over FACE_GROUP_MIN_QUALITY; once a group
# exists, faces that miss these criteria may still join it.
FACE_GROUP_MIN_GOOD_FACES = 3
FACE_GROUP_MIN_SIDE = 75
FACE_GROUP_MAX_POSE = 30.0
FACE_GROUP_MIN_QUALITY = 0.8


def is_good_face(width: float, height: float, pose: tuple[float, float, float] | None, quality: float) -> bool:
    """Whether a face counts towards starting a face group (the criteria above; all strict inequalities).

    A face without a HeadPose is not counted (the rule cannot be checked)."""
    return (
        width > FACE_GROUP_MIN_SIDE
        and height > FACE_GROUP_MIN_SIDE
        and pose is not None
        and all(abs(angle) < FACE_GROUP_MAX_POSE for angle in pose)
        and quality > FACE_GROUP_MIN_QUALITY
    )


# OSS image processing (IMG, the ``x-oss-process=image/...`` parameter of GetObject), the operations this project
# uses (:mod:`imm_faces.runtime.oss_process`). From OSS's IMG documentation: a source image of at most 20 MB,
# 30,000 pixels a side and 250 million pixels; a resized side of 1-16,384 pixels; quality 1-100.
IMG_MAX_SOURCE_BYTES = 20 * 1024 * 1024
IMG_MAX_SOURCE_SIDE = 30_000
IMG_MAX_SOURCE_PIXELS = 250_000_000
IMG_MAX_SIDE = 16_384
IMG_MAX_OUTPUT_PIXELS = 4096 * 4096  # OSS error 0040-00000007: "the resolution of an image can be up to 4,096 x 4,096"
IMG_QUALITY_RANGE = (1, 100)

# EXIF (not IMM, but read by the emulator's analysis, its image processing and the report): the Orientation tag,
# and the orientations that turn the image a quarter, so that its upright width is its stored height.
EXIF_ORIENTATION_TAG = 0x0112
EXIF_QUARTER_TURNS = (5, 6, 7, 8)


def upright_size(width: int, height: int, orientation: int | None) -> tuple[int, int]:
    """An image's size as shown, from its stored size and EXIF orientation."""
    return (height, width) if orientation in EXIF_QUARTER_TURNS else (width, height)


IMM_SERVICE = "imm.aliyuncs.com"  # the service principal a role's trust policy names to let IMM assume it

# RAM and STS (the emulator's authorization, emulator/ram.py and emulator/oidc.py). A session policy (the Policy
# parameter of AssumeRole / AssumeRoleWithOIDC) is 1-2,048 characters (STS's notice of 2022-09-19; before, 1,024;
# STS answers InvalidParameter.PolicySize past it); a custom policy document 1-6,144 characters (RAM CreatePolicy);
# an OIDC token 4-20,000 characters (AssumeRoleWithOIDC). Account ids are ASCII digits (``\d`` would also match
# other scripts' digits: Arabic-Indic, fullwidth...), at most 32 of them.
SESSION_POLICY_MAX_CHARS = 2048
POLICY_DOCUMENT_MAX_CHARS = 6144
OIDC_TOKEN_LENGTH = (4, 20_000)
ACCOUNT_ID_PATTERN = r"[0-9]{1,32}"

# Names of what the component creates or names, as RAM (CreateRole, CreatePolicy) and MNS (CreateTopic) document
# them. A role ARN's last part is a role name, so STS's RoleArn follows the same rule (runtime/auth/sts.py).
RAM_ROLE_NAME_PATTERN = r"[A-Za-z0-9.-]{1,64}"
RAM_ROLE_RULE = "1-64 characters: letters, digits, '.' and '-'"
RAM_POLICY_NAME_PATTERN = r"[A-Za-z0-9-]{1,128}"
RAM_POLICY_RULE = "1-128 characters: letters, digits and '-'"
MNS_TOPIC_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9-]{0,255}"
MNS_TOPIC_RULE = "1-256 characters: letters, digits and '-', starting with a letter or digit"
