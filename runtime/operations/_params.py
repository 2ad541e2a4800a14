"""Parameter types shared by several operations, each carrying its IMM rule."""

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from imm_faces.runtime.rules import (
    PAGE_LIMITS,
    check_description,
    check_name,
    check_oss_uri,
    check_quota,
    check_user_data,
)

NewName = Annotated[str, AfterValidator(check_name)]
"""A ProjectName or DatasetName being created: IMM's name rule applies."""

Description = Annotated[str, AfterValidator(check_description)]
UserData = Annotated[str, AfterValidator(check_user_data)]
OssLocation = Annotated[str, AfterValidator(check_oss_uri)]
OssObject = Annotated[str, AfterValidator(lambda v: check_oss_uri(v, object_required=True))]
"""An OSS object's URI (``oss://bucket/key``, key required)."""


def quota(name: str) -> object:
    """A validator for one of IMM's quota parameters (bounds from :data:`imm_faces.runtime.rules.QUOTAS`)."""
    return AfterValidator(lambda v: check_quota(name, v))


ProjectMaxDatasetCount = Annotated[int, quota("ProjectMaxDatasetCount")]
DatasetMaxBindCount = Annotated[int, quota("DatasetMaxBindCount")]
DatasetMaxFileCount = Annotated[int, quota("DatasetMaxFileCount")]
DatasetMaxEntityCount = Annotated[int, quota("DatasetMaxEntityCount")]
DatasetMaxRelationCount = Annotated[int, quota("DatasetMaxRelationCount")]
DatasetMaxTotalFileSize = Annotated[int, quota("DatasetMaxTotalFileSize")]


def max_results(operation: str) -> Any:
    """``MaxResults`` bounds of a paging operation (:data:`imm_faces.runtime.rules.PAGE_LIMITS`; 0: default)."""
    return Field(ge=0, le=PAGE_LIMITS[operation][0])
