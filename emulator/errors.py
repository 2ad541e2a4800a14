"""Errors the emulator answers with, rendered from ``imm_faces.runtime.errors.ERRORS`` (one table for both sides)."""

from __future__ import annotations

from typing import Any

from imm_faces.runtime.errors import ERRORS, RESOURCE_ALREADY_EXISTS, RESOURCE_NOT_FOUND


class ApiError(Exception):
    """An IMM error answer: code, HTTP status and message, as the service spells them."""

    def __init__(self, code: str, message: str | None = None, **values: str) -> None:
        spec = ERRORS[code]
        self.code = code
        self.status = spec.status
        self.message = message if message is not None else spec.format(**values)
        super().__init__(f"{code}: {self.message}")

    def body(self, request_id: str, host: str) -> dict[str, Any]:
        return {
            "RequestId": request_id,
            "HostId": host,
            "Code": self.code,
            "Message": self.message,
            "Recommend": f"https://next.api.aliyun.com/troubleshoot?q={self.code}&product=imm",
        }


def not_found(resource: str) -> ApiError:
    return ApiError(RESOURCE_NOT_FOUND, resource=resource)


def already_exists(resource: str) -> ApiError:
    return ApiError(RESOURCE_ALREADY_EXISTS, resource=resource)


def invalid(detail: str) -> ApiError:
    return ApiError("InvalidArgument", detail=detail)
