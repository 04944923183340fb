"""Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a resent write gets the
first one's answer, never a second effect. Values and decisions; storing is the stores'.

* :func:`parse` reads the field into an :class:`IdempotencyKey`, an Item of type String
  (RFC 9651 §3.3.3). Parameters on the Item are accepted and ignored: the grammar allows
  them, the draft defines none, and ignoring them lets a later revision add one without
  breaking this server. RFC 9651 §4.2 ignores a field that fails to parse; a malformed
  key is refused with 400 instead, as the draft asks a server to validate keys, and
  reading it as absent would quietly make a retry-safe write unsafe.
* :class:`Fingerprint` tells a resend from a reuse of the key. It covers the
  preconditions because they are part of the attempt: a resend carries the same
  If-Match and gets the stored answer though that If-Match no longer matches (RFC 9110
  §13.1.1 allows a 2xx where the change verifiably succeeded; the record committed with
  the write is the proof); a new attempt after a merge carries the new ETag and needs a
  new key, so the same key with another If-Match is a reuse (422).
* :class:`StoredResponse` is what a replay sends, marked by :data:`REPLAYED_HEADER`.
* :func:`decide` maps the record stored for (scope, key) to :class:`Proceed`,
  :class:`Replay`, :class:`Conflict` (409) or :class:`Mismatch` (422). The scope (the
  client's identity at least) is the store's; the fingerprint has method and target,
  so a key reused on another route is told apart even in a scope without them.
* A record answers for :data:`DEFAULT_TTL` (24 hours, the published default).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

from optimist import _structured
from optimist.errors import (
    CorruptRecord,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)

__all__ = [
    "DEFAULT_TTL",
    "HEADER",
    "MAX_KEY_LENGTH",
    "REPLAYED_FIELDS",
    "REPLAYED_HEADER",
    "REPLAYED_VALUE",
    "STORED_CLIENT_ERRORS",
    "Completed",
    "Conflict",
    "Decision",
    "Fingerprint",
    "IdempotencyKey",
    "InFlight",
    "Mismatch",
    "Proceed",
    "Record",
    "Replay",
    "StoredResponse",
    "decide",
    "expired",
    "parse",
    "storable",
]

#: The request field that carries the key.
HEADER: Final = "Idempotency-Key"
#: The longest key accepted, in characters: Stripe's limit, room for any UUID or ULID.
MAX_KEY_LENGTH: Final = 255
#: How long a record answers for its key; the draft asks a server to publish this.
DEFAULT_TTL: Final = timedelta(hours=24)
#: The response field that marks a replay, with Stripe's name and value: clients written
#: against Stripe's API already look for it, and the draft defines no marker.
REPLAYED_HEADER: Final = "Idempotent-Replayed"
REPLAYED_VALUE: Final = "true"
#: The response fields a replay repeats (lower-case): those that describe the stored body
#: or the resource the write left. Date, Content-Length and caching fields belong to the
#: replay itself; Set-Cookie and the like are not an outcome of the write.
REPLAYED_FIELDS: Final = (
    "content-encoding",
    "content-language",
    "content-location",
    "content-type",
    "etag",
    "last-modified",
    "location",
)
#: The client errors that are stored (see :func:`storable`).
STORED_CLIENT_ERRORS: Final = frozenset({404, 409, 410, 412})

_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """One idempotency key: printable ASCII, 1 to :data:`MAX_KEY_LENGTH` characters."""

    value: str

    def __post_init__(self) -> None:
        for index, ch in enumerate(self.value):
            if not " " <= ch <= "~":
                raise InvalidIdempotencyKey(HEADER, self.value, f"{ch!r} is not printable", index)
        _check_length(self.value, self.value, 0)

    def serialize(self) -> str:
        """The field value a client sends: the key as an sf-string (RFC 9651 §4.1.6)."""
        return _structured.serialize_string(self.value)


def _check_length(key: str, line: str, position: int) -> None:
    if not key:
        raise InvalidIdempotencyKey(HEADER, line, "the key is empty", position)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(
            HEADER, line, f"the key is longer than {MAX_KEY_LENGTH} characters", position
        )


def parse(header_values: str | Iterable[str] | None) -> IdempotencyKey | None:
    """The key in the field lines of a request, or None when there are none.

    Raises :class:`~optimist.errors.InvalidIdempotencyKey` (400) for an empty line, an
    empty or too long key, lines that carry different keys, and anything RFC 9651 does
    not parse as Strings; the position is within the line that failed.
    """
    lines = [header_values] if isinstance(header_values, str) else list(header_values or ())
    found: IdempotencyKey | None = None
    for line in lines:
        members = _structured.parse_strings(line, field=HEADER, error=InvalidIdempotencyKey)
        if not members:
            raise InvalidIdempotencyKey(HEADER, line, "the field is empty", 0)
        for position, value in members:
            _check_length(value, line, position)
            if found is None:
                found = IdempotencyKey(value)
            elif value != found.value:
                # The field is one Item: of two different keys, neither is certainly meant.
                raise InvalidIdempotencyKey(HEADER, line, "a second, different key", position)
    return found


#: The parts :meth:`Fingerprint.differences` names otherwise than by their attribute.
_NAMES: Final = {"media_type": "Content-Type", "body_sha256": "body"}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What makes two requests with one key the same request; build it with :meth:`of`.

    The method and the target (path and query as sent) are kept as sent. The entity-tag
    lists are kept in one canonical form when they parse, the dates as their field lines,
    the media type with its case-insensitive parts lower-cased (see :meth:`of`).
    """

    method: str
    target: str
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: tuple[str, ...] | None = None
    if_unmodified_since: tuple[str, ...] | None = None
    media_type: str | None = None
    body_sha256: str = _EMPTY_SHA256

    @classmethod
    def of(
        cls,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        media_type: str | None = None,
        if_match: str | Sequence[str] | None = None,
        if_none_match: str | Sequence[str] | None = None,
        if_modified_since: str | Sequence[str] | None = None,
        if_unmodified_since: str | Sequence[str] | None = None,
    ) -> Fingerprint:
        """The fingerprint of a request; each field is a value, its lines, or None if absent.

        Field values compare alike only where they certainly mean the same (If-Match lines
        joined or spaced otherwise); dates compare as sent, as a two-digit rfc850 year
        means another year as time passes (RFC 9110 §5.6.7).
        """
        return cls(
            method=method,
            target=target,
            if_match=_structured.tag_list(if_match),
            if_none_match=_structured.tag_list(if_none_match),
            if_modified_since=_structured.lines(if_modified_since),
            if_unmodified_since=_structured.lines(if_unmodified_since),
            media_type=_structured.media_type(media_type),
            body_sha256=hashlib.sha256(body).hexdigest(),
        )

    def differences(self, other: Fingerprint) -> tuple[str, ...]:
        """The parts in which ``other`` differs, by the names a client knows them by."""
        return tuple(
            _NAMES.get(name, name.replace("_", "-").title() if name[:3] == "if_" else name)
            for name in (part.name for part in fields(self))
            if getattr(self, name) != getattr(other, name)
        )

    def to_text(self) -> str:
        """A stable text form for storage: one JSON object, ASCII, keys in a fixed order."""
        members: dict[str, Any] = {"v": 1}
        for part in fields(self):
            value = getattr(self, part.name)
            members[part.name] = list(value) if isinstance(value, tuple) else value
        return json.dumps(members, ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> Fingerprint:
        """The fingerprint :meth:`to_text` wrote; :class:`CorruptRecord` for anything else."""
        try:
            members = json.loads(text)
            if members.pop("v") != 1 or set(members) != {part.name for part in fields(cls)}:
                raise ValueError("not a fingerprint of version 1")
            if not _SHA256_RE.fullmatch(_text(members["body_sha256"])):
                raise ValueError("body_sha256 is not a SHA-256")
            return cls(
                method=_text(members["method"]),
                target=_text(members["target"]),
                if_match=_optional(members["if_match"]),
                if_none_match=_optional(members["if_none_match"]),
                if_modified_since=_optional_lines(members["if_modified_since"]),
                if_unmodified_since=_optional_lines(members["if_unmodified_since"]),
                media_type=_optional(members["media_type"]),
                body_sha256=members["body_sha256"],
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise CorruptRecord("fingerprint", str(error)) from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)


def _optional_lines(value: object) -> tuple[str, ...] | None:
    if value is None or isinstance(value, list):
        return None if value is None else tuple(_text(line) for line in value)
    raise TypeError(f"expected a list of lines, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as a replay sends it again: status, fields (lower-case names), body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status code")

    @classmethod
    def capture(
        cls,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes | bytearray | memoryview,
        *,
        replayed: Iterable[str] = REPLAYED_FIELDS,
    ) -> StoredResponse:
        """Keep of a response what a replay repeats: the fields named in ``replayed``."""
        keep = {name.lower() for name in replayed}
        kept = tuple((name.lower(), value) for name, value in headers if name.lower() in keep)
        return cls(status, kept, bytes(body))

    def to_bytes(self) -> bytes:
        """A stable form for storage: a JSON line (status, fields), then the body as is."""
        head = {"v": 1, "status": self.status, "headers": [list(pair) for pair in self.headers]}
        line = json.dumps(head, ensure_ascii=True, separators=(",", ":"))
        return line.encode() + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredResponse:
        """The response :meth:`to_bytes` wrote; :class:`CorruptRecord` for anything else."""
        head, newline, body = bytes(data).partition(b"\n")
        try:
            members = json.loads(head) if newline else None
            if not isinstance(members, dict) or members.get("v") != 1:
                raise ValueError("not a stored response of version 1")
            status, pairs = members["status"], members["headers"]
            if type(status) is not int or not isinstance(pairs, list):
                raise TypeError("the status or the fields have the wrong type")
            headers = tuple((_text(name), _text(value)) for name, value in pairs)
            return cls(status, headers, body)
        except (ValueError, TypeError, KeyError) as error:
            raise CorruptRecord("response", str(error)) from None


def storable(status: int) -> bool:
    """Whether a response with ``status`` is recorded for its key, and replayed after.

    Recorded: what the endpoint answered once it ran against the resource, as the draft
    replays "success or an error": 2xx (the write committed, the record with it) and the
    state the request met, :data:`STORED_CLIENT_ERRORS`. Not recorded, as at Stripe: 5xx
    (nothing committed; a resend may succeed), errors found before the endpoint ran (400,
    401, 403, 413, 415, 422, 428, 429: the client corrects the request and may resend it
    with the same key), the 409/422 of the key's own checks, and 1xx/3xx.
    """
    return 200 <= status <= 299 or status in STORED_CLIENT_ERRORS


def expired(created_at: datetime, now: datetime, ttl: timedelta = DEFAULT_TTL) -> bool:
    """Whether a record from ``created_at`` is past ``ttl`` at ``now`` (naive times: UTC)."""
    return _aware(now) - _aware(created_at) >= ttl


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class InFlight:
    """A record of a request that has begun and has not been answered."""

    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Completed:
    """A record of a request that was answered with ``response``."""

    fingerprint: Fingerprint
    response: StoredResponse


#: What a store holds for (scope, key), when it holds anything.
Record: TypeAlias = InFlight | Completed


@dataclass(frozen=True, slots=True)
class Proceed:
    """The key is new: run the request, and record its response if :func:`storable`."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The same request was answered: send ``response`` again, with :data:`REPLAYED_HEADER`."""

    response: StoredResponse


@dataclass(frozen=True, slots=True)
class Conflict:
    """The same request is still being processed: answer 409, or wait and decide again."""

    def error(
        self, key: IdempotencyKey, documentation: str | None = None
    ) -> IdempotencyKeyInFlight:
        """The 409 to raise."""
        return IdempotencyKeyInFlight(key.value, documentation)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was first used for another request: answer 422."""

    stored: Fingerprint
    incoming: Fingerprint

    def error(self, key: IdempotencyKey, documentation: str | None = None) -> IdempotencyKeyReused:
        """The 422 to raise, naming the parts of the request that differ."""
        return IdempotencyKeyReused(
            key.value, self.stored.differences(self.incoming), documentation
        )


#: What :func:`decide` returns.
Decision: TypeAlias = Proceed | Replay | Conflict | Mismatch


def decide(record: Record | None, fingerprint: Fingerprint) -> Decision:
    """What to do with a request whose key has ``record`` (None: none, or expired)."""
    # The draft's "Idempotency Enforcement": a first request is processed normally.
    if record is None:
        return Proceed()
    # Its "Error Handling": the key reused for another request is 422, in flight or not;
    # waiting for the first would not make this one the same.
    if record.fingerprint != fingerprint:
        return Mismatch(record.fingerprint, fingerprint)
    # A retry while the first is being processed: 409, no correction needed.
    if isinstance(record, InFlight):
        return Conflict()
    # A retry after it completed: its result, success or error. A resend whose If-Match
    # the write itself made stale gets the stored 2xx, not 412 (RFC 9110 §13.1.1).
    return Replay(record.response)
