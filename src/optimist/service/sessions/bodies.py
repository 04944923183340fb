"""The bodies of the test-sessions API: what a client sends, and what it reads back.

Writes are strict (:class:`~optimist.service.bodies.Strict`): a ``building_id`` is a
UUID in its hyphenated hex form only, ``notes`` bounded and free of control characters.
A PATCH is a JSON merge patch (RFC 7396) in which ``notes: null`` clears the notes.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from optimist.service import schema
from optimist.service.bodies import Prose, Strict, timestamp
from optimist.sqlalchemy import Record, clock_of

__all__ = [
    "MAX_NOTES",
    "NewSession",
    "Session",
    "SessionPage",
    "SessionPatch",
    "SessionReplacement",
    "SessionStatus",
    "columns",
    "representation",
]

SessionStatus = Literal["scheduled", "in_progress", "completed", "cancelled"]
assert get_args(SessionStatus) == schema.SESSION_STATUSES

#: The longest ``notes``, in characters.
MAX_NOTES: Final = 10_000

# RFC 9562 §4: the 8-4-4-4-12 hex form; ids are issued (and stored) lower-case.
_UUID_TEXT: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _uuid_text(value: object) -> object:
    """Only the hyphenated hex form is a UUID here (pydantic also takes braces, URNs…)."""
    if isinstance(value, str) and _UUID_TEXT.fullmatch(value) is None:
        raise ValueError("must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
    return value


BuildingId = Annotated[uuid.UUID, BeforeValidator(_uuid_text)]
Notes = Annotated[str, Field(max_length=MAX_NOTES), Prose]


class NewSession(Strict):
    """A new session: the building it tests, and optionally notes; it starts ``scheduled``."""

    building_id: BuildingId
    notes: Notes | None = None


class SessionReplacement(Strict):
    """A PUT body: every editable field; ``notes`` left out is cleared."""

    building_id: BuildingId
    status: SessionStatus
    notes: Notes | None = None


class SessionPatch(Strict):
    """A PATCH body (a JSON merge patch, RFC 7396): the fields to change.

    ``notes: null`` clears the notes; ``building_id`` and ``status`` cannot be null.
    """

    building_id: BuildingId | None = None
    status: SessionStatus | None = None
    notes: Notes | None = None

    @field_validator("building_id", "status", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only on members that were sent: leaving one out keeps its value.
        if value is None:
            raise ValueError("cannot be null; leave the member out to keep its value")
        return value


def columns(body: BaseModel) -> dict[str, Any]:
    """The members ``body`` sets, as column values (a UUID as its canonical text)."""
    values = body.model_dump(exclude_unset=True)
    if "building_id" in values:
        values["building_id"] = str(values["building_id"])
    return values


class Session(BaseModel):
    """A test session as the API shows it."""

    id: uuid.UUID
    building_id: uuid.UUID
    status: SessionStatus
    notes: str | None
    created_at: datetime
    updated_at: datetime
    vector_clock: dict[str, int]


class SessionPage(BaseModel):
    """One page of sessions, oldest first, and the cursor of the next (null after the last)."""

    data: list[Session]
    next_cursor: str | None


def representation(record: Record) -> dict[str, Any]:
    """The JSON object of a stored session (what :class:`Session` describes)."""
    values = record.values
    return {
        "id": values["id"],
        "building_id": values["building_id"],
        "status": values["status"],
        "notes": values["notes"],
        "created_at": timestamp(values["created_at"]),
        "updated_at": timestamp(record.updated_at),
        "vector_clock": dict(clock_of(schema.test_sessions, record)),
    }
