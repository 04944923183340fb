"""Bodies of the projects API: the status machine, what a request may send, and what
a response shows.

Requests are validated by pydantic at the boundary: lengths that fit the columns,
text the databases can store (no lone surrogates, no NUL or other control
characters), a status among the five, and no unknown members (422 with
``invalid_params``). Responses are built straight from the stored row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator

from optimist.service import schema
from optimist.service.bodies import Line, Prose, text, timestamp
from optimist.sqlalchemy import Record

__all__ = [
    "TRANSITIONS",
    "Project",
    "ProjectChanges",
    "ProjectEnvelope",
    "ProjectIn",
    "ProjectPage",
    "ProjectPageEnvelope",
    "ProjectStatus",
    "representation",
    "sources",
]

ProjectStatus = Literal["draft", "estimating", "submitted", "accepted", "rejected"]
assert get_args(ProjectStatus) == schema.PROJECT_STATUSES

#: Seed 003's status machine: (from, to) pairs. Setting the current status again is
#: not a transition, and is always allowed.
TRANSITIONS: Final = frozenset(
    {
        ("draft", "estimating"),
        ("estimating", "submitted"),
        ("submitted", "accepted"),
        ("submitted", "rejected"),
        ("estimating", "draft"),
        ("submitted", "estimating"),
        ("rejected", "draft"),
    }
)


def sources(target: str) -> tuple[str, ...]:
    """The statuses from which a project may be set to ``target``: its own, and each
    status with a transition to it (the write's guard)."""
    return (target, *sorted(origin for origin, to in TRANSITIONS if to == target))


# -- requests --------------------------------------------------------------------------


Name = Annotated[str, Field(min_length=1, max_length=200), Line]
Customer = Annotated[str, Field(max_length=200), Line]
Description = Annotated[str, Field(max_length=10_000), Prose]

#: Bounds of a project's ``metadata`` object, so a hostile body stays cheap to store.
MAX_METADATA_MEMBERS: Final = 100
MAX_METADATA_BYTES: Final = 16_384


_LINE, _PROSE = text(multiline=False), text(multiline=True)


def _strings_checked(value: Any, path: str) -> None:
    """Hold every string inside ``value`` to the rule of every other string member:
    names (object keys) are single lines, string values may span lines."""
    if isinstance(value, str):
        _checked(_PROSE, value, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _strings_checked(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for name, item in value.items():
            _checked(_LINE, name, f"{path} member name {name[:40]!r}")
            _strings_checked(item, f"{path}.{name[:40]}")


def _checked(check: Callable[[str], str], value: str, path: str) -> None:
    try:
        check(value)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_METADATA_MEMBERS:
        raise ValueError(f"has more than {MAX_METADATA_MEMBERS} members")
    try:
        # RFC 8259 §6: NaN and Infinity are not JSON numbers (Python's parser admits them).
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ValueError("holds NaN or Infinity, which JSON cannot represent") from None
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"is larger than {MAX_METADATA_BYTES} bytes as JSON")
    _strings_checked(value, "metadata")
    return value


#: Free-form project metadata (seed 003: "Metadata modified" changes the ETag): a JSON
#: object whose members clients may change independently of each other.
Metadata = Annotated[dict[str, JsonValue], AfterValidator(_bounded_metadata)]


class ProjectIn(BaseModel):
    """A new project: its name, and optionally its customer and description."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    customer: Customer | None = None
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class ProjectChanges(BaseModel):
    """The fields a PUT changes; the fields it leaves out keep their values.

    ``customer`` and ``description`` may be set to null (cleared); ``name``,
    ``status`` and ``metadata`` may not. ``metadata`` is replaced as a whole.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    customer: Customer | None = None
    description: Description | None = None
    status: ProjectStatus | None = None
    metadata: Metadata | None = None

    @field_validator("name", "status", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only on fields that were sent: leaving one out keeps its value.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class Project(BaseModel):
    """A project as the API shows it; ``etag`` is the bare 16-hex entity tag."""

    project_id: str
    name: str
    customer: str | None
    description: str | None
    status: ProjectStatus
    metadata: dict[str, JsonValue]
    created_at: datetime
    updated_at: datetime
    etag: str


class ProjectEnvelope(BaseModel):
    """Seed 003's envelope around one project."""

    result: Project


class ProjectPage(BaseModel):
    """One page of projects, and the cursor of the next (null after the last)."""

    items: list[Project]
    next_cursor: str | None


class ProjectPageEnvelope(BaseModel):
    """Seed 003's envelope around a page of projects."""

    result: ProjectPage


def representation(record: Record) -> dict[str, Any]:
    """The JSON object of a stored project (what :class:`Project` describes)."""
    values = record.values
    return {
        "project_id": values["project_id"],
        "name": values["name"],
        "customer": values["customer"],
        "description": values["description"],
        "status": values["status"],
        "metadata": values["metadata"],
        "created_at": timestamp(values["created_at"]),
        "updated_at": timestamp(record.updated_at),
        "etag": record.etag.opaque,
    }
