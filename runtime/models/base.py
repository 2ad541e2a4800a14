"""The base of every IMM wire model.

IMM speaks PascalCase JSON (``ProjectName``, ``OSSURI``, ``AgeSD``); Python code reads snake_case
(``project_name``, ``ossuri``, ``age_sd``). Every model here uses the wire names as aliases, accepts either
spelling on input, and keeps fields it does not know, so that a newer service response never breaks an
older client and nothing is lost when a response is parsed and dumped again.
"""

import re
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict

# Words IMM spells in capitals inside field names. Everything else is capitalised word by word.
_ACRONYMS = {
    "uri": "URI",
    "oss": "OSS",
    "exif": "EXIF",
    "sd": "SD",
    "ocr": "OCR",
    "crc64": "CRC64",
    "acl": "ACL",
    "url": "URL",
    "mns": "MNS",
    "mq": "MQ",
}
# Whole names that do not follow the word-by-word rule.
_EXCEPTIONS = {
    "ossuri": "OSSURI",
    "e_tag": "ETag",
    "rocket_mq": "RocketMQ",
    "extended_message_uri": "ExtendedMessageURI",
}


def wire_name(field_name: str) -> str:
    """Return IMM's PascalCase wire name for a snake_case attribute name (``age_sd`` -> ``AgeSD``)."""
    if field_name in _EXCEPTIONS:
        return _EXCEPTIONS[field_name]
    return "".join(_ACRONYMS.get(part, part[:1].upper() + part[1:]) for part in field_name.split("_"))


def snake_name(pascal: str) -> str:
    """``GetFigureCluster`` -> ``get_figure_cluster``, ``DatasetMaxFileCount`` -> ``dataset_max_file_count``:
    an operation's or a plain parameter's name as a Python name (acronym names are not round-tripped)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", pascal).lower()


def camel_name(snake: str) -> str:
    """``project_name`` -> ``projectName``: a snake_case name as Pulumi's schemas and SDKs spell properties."""
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# IMM declares many numbers as float (ages, confidences) yet sends integral values as JSON integers
# (``"AverageAge": 26``). Keeping ``int | float`` preserves what was received, so a dump gives back the
# very JSON that was parsed.
Number: TypeAlias = int | float


class WireModel(BaseModel):
    """A JSON object on IMM's wire: PascalCase aliases, snake_case attributes, unknown fields kept.

    Each model's validator and serializer are built when it is first used (``defer_build``), not at import: a
    process that calls a few operations (``imm-faces verify``) builds a few of the catalog's hundred models.
    Reading :data:`imm_faces.runtime.operations.CATALOG` builds them all (:func:`build_all`)."""

    model_config = ConfigDict(
        alias_generator=wire_name,
        populate_by_name=True,
        extra="allow",
        serialize_by_alias=True,
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """Dump by wire name, leaving out fields that were never set (``None`` set explicitly is kept)."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


class WireView(WireModel):
    """Part of a JSON object on IMM's wire: the declared fields are parsed, every other one is skipped (not
    kept), so reading many objects of which a few fields are needed costs a fraction of the whole model."""

    model_config = ConfigDict(extra="ignore")


def build_all() -> int:
    """Build every wire model defined so far that is not built yet (what the emulator, serving every operation
    from several threads, wants at start rather than on first use); returns how many were built."""
    built, pending = 0, list(WireModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if not model.__pydantic_complete__:
            model.model_rebuild()
            built += 1
    return built
