"""How an IMM operation is described: a name, a request model, a response model.

Every IMM 2020-09-30 operation this project uses is a ``POST /`` whose parameters all travel in the query
string. Scalars go as text; objects and arrays go as one compact JSON string each (the SDK's "shrink"
fields). A request field marked with :data:`JSON_STRING` travels that way, so which parameters are JSON is
read off the model rather than listed a second time.

The client encodes with :meth:`Request.to_params`; the emulator decodes with :meth:`Request.from_params`;
both render and parse responses with the same response models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import ValidationError

from imm_faces.runtime.models.base import WireModel


class _JsonString:
    """Marker (used in ``Annotated``) for a parameter that travels as one compact JSON string."""

    def __repr__(self) -> str:
        return "JSON_STRING"


JSON_STRING = _JsonString()


class ParameterError(ValueError):
    """A request parameter is missing or breaks a rule. ``code`` is the IMM error code for it."""

    def __init__(self, code: str, parameter: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.parameter = parameter
        self.message = message


class Request(WireModel):
    """Base of every operation's request model."""

    _json_params: ClassVar[frozenset[str]] = frozenset()
    _wire_names: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Computed once per model: from_params runs on every emulator request.
        cls._wire_names = frozenset(info.alias or name for name, info in cls.model_fields.items())
        cls._json_params = frozenset(
            info.alias or name
            for name, info in cls.model_fields.items()
            if any(m is JSON_STRING for m in info.metadata)
        )

    @classmethod
    def json_params(cls) -> frozenset[str]:
        """Wire names of the parameters that travel as JSON strings."""
        return cls._json_params

    def to_params(self) -> dict[str, str]:
        """Encode as IMM query parameters: wire names, text scalars, compact JSON for JSON parameters."""
        dumped = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        params: dict[str, str] = {}
        for key, value in dumped.items():
            if key in self._json_params:
                params[key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            elif isinstance(value, bool):
                params[key] = "true" if value else "false"
            elif isinstance(value, dict | list):
                # An unknown (extra) structured field: send it the way IMM sends every structure.
                params[key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            else:
                params[key] = str(value)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Self:
        """Decode query parameters as the service does; raise :class:`ParameterError` on bad input."""
        data: dict[str, Any] = {}
        for key, text in params.items():
            if key not in cls._wire_names:
                continue  # IMM ignores parameters an operation does not take
            if key in cls._json_params:
                try:
                    data[key] = json.loads(text)
                except ValueError:
                    raise ParameterError("InvalidJSON", key, f"Array parsing error, {key}") from None
            else:
                data[key] = text
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise parameter_error(cls, exc) from None


def parameter_error(model: type[WireModel], exc: ValidationError) -> ParameterError:
    """Turn pydantic's first error into IMM's wording, naming the parameter by its wire name."""
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    top = loc[0] if loc else "?"
    info = model.model_fields.get(top)
    wire = (info.alias or top) if info else top
    path = ".".join([wire, *loc[1:]])
    if err["type"] == "missing":
        if len(loc) == 1:
            return ParameterError("MissingParameter", wire, f"The parameter {wire} is required but not provided.")
        return ParameterError("InvalidArgument", wire, f"The parameter {path} is required but not provided.")
    reason = str(err["msg"]).removeprefix("Value error, ")
    return ParameterError("InvalidArgument", wire, f"The parameter {path} is invalid: {reason}")


class Response(WireModel):
    """Base of every operation's response model: each carries the service's RequestId."""

    request_id: str | None = None


ReqT = TypeVar("ReqT", bound=Request)
RespT = TypeVar("RespT", bound=Response)
OtherT = TypeVar("OtherT", bound=Response)


@dataclass(frozen=True)
class Operation(Generic[ReqT, RespT]):
    """One IMM API operation.

    ``page_items`` names the response attribute that holds a page of results, for operations that page
    with ``NextToken``; ``doc`` is a one-line summary used in the docs and the emulator's index.
    """

    name: str
    request: type[ReqT]
    response: type[RespT]
    doc: str
    page_items: str | None = None
    version: str = field(default="2020-09-30")

    @property
    def json_params(self) -> frozenset[str]:
        return self.request.json_params()

    def reading(self, response: type[OtherT]) -> Operation[ReqT, OtherT]:
        """The same operation with its answer parsed into ``response``, a view with fewer fields (to read many
        objects fast): same name, request, paging and version."""
        return Operation(self.name, self.request, response, self.doc, self.page_items, self.version)
