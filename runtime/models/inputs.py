"""Objects that appear only inside requests (sent as JSON-string parameters)."""

from typing import Annotated, Any

from pydantic import AfterValidator

from imm_faces.runtime.models.base import WireModel
from imm_faces.runtime.models.file import Address, Label
from imm_faces.runtime.rules import check_oss_uri


class Tag(WireModel):
    """A project tag in a request (responses spell it TagKey/TagValue)."""

    key: str
    value: str


class MNSTarget(WireModel):
    topic_name: str


class RocketMQTarget(WireModel):
    instance_id: str
    topic_name: str


class Notification(WireModel):
    """Where IMM publishes the result of an asynchronous operation."""

    mns: MNSTarget | None = None
    rocket_mq: RocketMQTarget | None = None
    extended_message_uri: str | None = None


class TimeRange(WireModel):
    """An interval of RFC3339 times; either end may be open."""

    start: str | None = None
    end: str | None = None


class InputFigure(WireModel):
    figure_id: str | None = None
    figure_cluster_id: str | None = None
    figure_type: str | None = None


class InputFile(WireModel):
    """A file to index. Only ``URI`` is required; the rest overrides what IMM would detect."""

    uri: Annotated[str, AfterValidator(lambda v: check_oss_uri(v, object_required=True))]
    custom_id: str | None = None
    custom_labels: dict[str, Any] | None = None
    media_type: str | None = None
    content_type: str | None = None
    file_hash: str | None = None
    ossuri: str | None = None
    produce_time: str | None = None
    lat_long: str | None = None
    title: str | None = None
    album: str | None = None
    album_artist: str | None = None
    artist: str | None = None
    composer: str | None = None
    performer: str | None = None
    addresses: list[Address] | None = None
    labels: list[Label] | None = None
    figures: list[InputFigure] | None = None
