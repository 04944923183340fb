"""Versioned tables: which columns carry a row's version, and how new versions are named.

A versioned table is any SQLAlchemy Core :class:`~sqlalchemy.Table` with three extra
columns, which :func:`versioned_table` declares (or :class:`Versioned` finds on a table
an application declared itself):

``etag``
    the opaque-tag of the row's current entity tag (without quotes or ``W/``), indexed.
    Whether the table's tags are weak is a property of the table (:attr:`Versioned.weak`),
    not of each row, so a condition compiles to a plain ``etag IN (…)``.
``updated_at``
    when the row was last written: timezone-aware UTC with microseconds on both backends
    (:class:`UTCDateTime`); it is what ``Last-Modified`` and If-Unmodified-Since use.
``created_seq``
    the row's place in the table's write sequence (:mod:`optimist.sqlalchemy._sequence`),
    unique and immutable: the total order of keyset pagination.

Every write computes the new tag in Python *before* its statement, with the table's
:class:`EtagRecipe`, so that the write stays one statement. :func:`sha256_tag` is the
default recipe: the first *n* hex digits of SHA-256 over the primary key, the new
``updated_at`` and 16 random bytes. The random nonce makes each tag unique per write,
even for two writes of one row within the same microsecond, and independent of the
row's content. With the default 16 hex digits (64 bits) the chance that a write
produces the tag of one particular earlier version is 2⁻⁶⁴, and the chance that any
two of *n* versions of one resource share a tag is at most n²/2⁶⁵ (about 3·10⁻⁸ for a
million writes to one row).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.schema import SchemaItem

from optimist.conditions import ResourceState
from optimist.etag import EntityTag
from optimist.sqlalchemy._sequence import sequences

__all__ = [
    "EtagRecipe",
    "Record",
    "UTCDateTime",
    "Versioned",
    "sha256_tag",
    "versioned_table",
]


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime with microseconds, on SQLite (text) and PostgreSQL (timestamptz).

    A naive value is taken to be UTC, as HTTP dates are.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite stores the text of a naive value; one fixed zone keeps it comparable.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EtagRecipe(Protocol):
    """Names a new version: the opaque-tag for a row with ``key`` written at ``updated_at``.

    Called once per write, before the statement; it must return a different value on
    every call (a random nonce does that) made only of ``etagc`` characters.
    """

    def __call__(self, key: tuple[Any, ...], updated_at: datetime) -> str: ...


@dataclass(frozen=True, slots=True)
class _Sha256Tag:
    length: int

    def __call__(self, key: tuple[Any, ...], updated_at: datetime) -> str:
        digest = hashlib.sha256()
        digest.update(repr(key).encode())
        digest.update(updated_at.isoformat().encode())
        digest.update(secrets.token_bytes(16))
        return digest.hexdigest()[: self.length]


def sha256_tag(length: int = 16) -> EtagRecipe:
    """The recipe of this module's docstring: ``length`` hex digits of SHA-256, 8 to 64."""
    if not 8 <= length <= 64:
        raise ValueError(f"length must be between 8 and 64 hex digits, not {length}")
    return _Sha256Tag(length)


@dataclass(frozen=True, slots=True)
class Record:
    """A row as a write or a read returned it, with its version as an entity tag."""

    values: Mapping[str, Any]
    etag: EntityTag
    updated_at: datetime

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def state(self) -> ResourceState:
        """The row as :func:`optimist.preconditions.evaluate` sees a current resource."""
        return ResourceState(exists=True, etag=self.etag, last_modified=self.updated_at)


@dataclass(frozen=True, eq=False)
class Versioned:
    """A table together with the columns that version it and how versions are named.

    ``resource`` names the rows in errors (default: the table's name). The column
    arguments name the version columns when a table calls them something else;
    ``clock`` names the vector-clock column of a table whose versions are clocks.
    """

    table: Table
    weak: bool = False
    recipe: EtagRecipe = field(default_factory=sha256_tag)
    resource: str = ""
    etag_column: str = "etag"
    updated_at_column: str = "updated_at"
    created_seq_column: str = "created_seq"
    clock_column: str | None = None

    def __post_init__(self) -> None:
        if not self.resource:
            object.__setattr__(self, "resource", self.table.name)
        names = [self.etag_column, self.updated_at_column, self.created_seq_column]
        if self.clock_column is not None:
            names.append(self.clock_column)
        missing = [name for name in names if name not in self.table.c]
        if missing:
            raise ValueError(f"table {self.table.name!r} has no column {', '.join(missing)}")
        if not self.table.primary_key.columns:
            raise ValueError(f"table {self.table.name!r} has no primary key")
        # The counter table lives in the same metadata, so create_all creates it too.
        sequences(self.table.metadata)

    @property
    def etag(self) -> Column[Any]:
        """The column of opaque-tags."""
        return self.table.c[self.etag_column]

    @property
    def updated_at(self) -> Column[Any]:
        """The column of modification times."""
        return self.table.c[self.updated_at_column]

    @property
    def created_seq(self) -> Column[Any]:
        """The column of write-sequence numbers, the order of pages."""
        return self.table.c[self.created_seq_column]

    @property
    def clock(self) -> Column[Any] | None:
        """The column of canonical vector clocks, if versions are clocks."""
        return None if self.clock_column is None else self.table.c[self.clock_column]

    @property
    def key(self) -> tuple[Column[Any], ...]:
        """The primary-key columns, in declaration order."""
        return tuple(self.table.primary_key.columns)

    @property
    def counters(self) -> Table:
        """The counter table that numbers this table's creates."""
        return sequences(self.table.metadata)

    @property
    def sequence_name(self) -> str:
        """This table's row in :attr:`counters`."""
        return self.table.fullname

    def key_of(self, key: object) -> tuple[Any, ...]:
        """A key as a tuple: a scalar for a one-column key, a tuple for a composite one."""
        values = key if isinstance(key, tuple) else (key,)
        if len(values) != len(self.key):
            raise ValueError(f"{self.resource} keys have {len(self.key)} parts, not {len(values)}")
        return values

    def tag(self, opaque: str) -> EntityTag:
        """The entity tag of a stored opaque-tag."""
        return EntityTag(opaque, weak=self.weak)

    def record(self, row: Mapping[str, Any] | RowMapping) -> Record:
        """A returned row as a :class:`Record`."""
        return self._record(dict(row))

    def _record(self, values: dict[str, Any]) -> Record:
        """:meth:`record` of a row this library fetched: a dict no one else holds, which
        becomes the record's values as it is."""
        return Record(
            values=values,
            etag=self.tag(values[self.etag_column]),
            updated_at=values[self.updated_at_column],
        )


def versioned_table(
    name: str,
    metadata: MetaData,
    *columns: SchemaItem,
    weak: bool = False,
    recipe: EtagRecipe | None = None,
    resource: str | None = None,
    scope: Sequence[str] = (),
    clock: bool = False,
    **table_kwargs: Any,
) -> Versioned:
    """Declare a table with ``columns`` plus the version columns, and describe it.

    ``scope`` names the columns a caller filters every request by (e.g. ``tenant_id``);
    the page index then leads with them so that a tenant's deep page stays an index
    range. ``clock=True`` adds a ``vector_clock`` text column for clock-versioned rows
    (written by :mod:`optimist.sqlalchemy.clocks`); their ``etag`` is the clock's tag.
    """
    extra: list[SchemaItem] = [
        # A clock's tag grows with its nodes (up to ~5 400 characters), too long for
        # a B-tree entry; clocked rows are found by key and compared by clock anyway.
        Column("etag", Text, nullable=False)
        if clock
        else Column("etag", String(255), nullable=False, index=True),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("created_seq", BigInteger, nullable=False, unique=True),
    ]
    if clock:
        extra.append(Column("vector_clock", Text, nullable=False))
    table = Table(name, metadata, *columns, *extra, **table_kwargs)
    if scope:
        Index(f"ix_{name}_scope_created_seq", *(table.c[s] for s in scope), table.c.created_seq)
    return Versioned(
        table,
        weak=weak,
        recipe=recipe or sha256_tag(),
        resource=resource or name,
        clock_column="vector_clock" if clock else None,
    )
