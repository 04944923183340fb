"""Three-way merge of JSON documents, and JSON Merge Patch (RFC 7396).

A client that lost a compare-and-set race (412) holds three versions of one resource:
``base`` (what it read), ``theirs`` (what the server holds now) and ``mine`` (``base``
with its own change applied). :func:`merge` keeps both sides' changes when they touch
different fields and raises :class:`~optimist.errors.MergeConflict` when they don't::

    base    {"name": "a", "tags": ["x"], "owner": {"id": 1, "team": "ops"}}
    theirs  {"name": "b", "tags": ["x"], "owner": {"id": 1, "team": "dev"}}
    mine    {"name": "a", "tags": ["y"], "owner": {"id": 2, "team": "ops"}}
    merged  {"name": "b", "tags": ["y"], "owner": {"id": 2, "team": "dev"}}

The rules, applied at every path from the root down:

* both sides agree (the same value, or both deleted) → that value;
* one side left the value as it was in ``base`` → the other side's value (a deletion
  included: a member deleted on one side and unchanged on the other is deleted);
* both sides hold objects → merged member by member (a ``base`` that is not an object
  counts as the empty object, so members added on both sides merge too);
* otherwise both changed the value differently: a conflict at this path.

Lists and scalars are values, replaced whole: two different edits of one list conflict.
Equality is JSON's: ``true`` is not ``1``, while ``1`` and ``1.0`` are the same number.
Every conflicting path is reported at once, as a tuple of member names (``()`` is the
whole document), so a conflict dialog can show them all.

A merge patch (RFC 7396) describes a change of an object by example: members to set,
``null`` for members to remove. :func:`apply_merge_patch` applies one;
:func:`create_merge_patch` computes the patch that turns one document into another,
which is what a client sends with ``PATCH`` after merging.

The functions never modify their arguments; results may share unchanged sub-values
with them, so treat results as read-only or copy them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from optimist.errors import MergeConflict

__all__ = ["JSON", "Path", "apply_merge_patch", "create_merge_patch", "json_equal", "merge"]

#: A JSON value as :func:`json.loads` returns it: dict, list, str, int, float, bool or None.
JSON: TypeAlias = Any

#: The member names leading from the root of a document to a value; ``()`` is the root.
Path: TypeAlias = tuple[str, ...]


class _Missing:
    """The value at a path that does not exist (a deleted or never-added member)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


def _is_array(value: object) -> bool:
    return isinstance(value, list | tuple)


def json_equal(a: JSON, b: JSON) -> bool:
    """Whether two JSON values are equal as JSON: ``true`` differs from ``1``, member order
    does not matter, ``1 == 1.0``."""
    if a is b:
        return True
    # Python says True == 1; JSON's true and 1 are different values.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(json_equal(value, b[key]) for key, value in a.items())
        )
    if _is_array(a):
        return _is_array(b) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(b, Mapping) or _is_array(b):
        return False
    return bool(a == b)


def merge(base: JSON, theirs: JSON, mine: JSON) -> JSON:
    """Merge two changes of ``base``: ``theirs`` (the server's) and ``mine`` (ours).

    Returns the merged document. Raises :class:`~optimist.errors.MergeConflict`, holding
    the three versions and every conflicting path, when both sides changed a path
    differently (see the module docstring for the rules).
    """
    conflicts: list[Path] = []
    merged = _merge(base, theirs, mine, (), conflicts)
    if conflicts:
        raise MergeConflict(base, theirs, mine, conflicts)
    return merged


def _merge(base: JSON, theirs: JSON, mine: JSON, path: Path, conflicts: list[Path]) -> JSON:
    if json_equal(theirs, mine):
        return theirs
    if json_equal(base, theirs):
        return mine
    if json_equal(base, mine):
        return theirs
    if isinstance(theirs, Mapping) and isinstance(mine, Mapping):
        parent: Mapping[str, JSON] = base if isinstance(base, Mapping) else {}
        merged: dict[str, JSON] = {}
        # Their member order first, then members only we added, so the result reads
        # like the server's document.
        keys = dict.fromkeys([*theirs, *mine, *parent])
        for key in keys:
            value = _merge(
                parent.get(key, _MISSING),
                theirs.get(key, _MISSING),
                mine.get(key, _MISSING),
                (*path, key),
                conflicts,
            )
            if value is not _MISSING:
                merged[key] = value
        return merged
    conflicts.append(path)
    return theirs


def apply_merge_patch(document: JSON, patch: JSON) -> JSON:
    """Apply a JSON Merge Patch to ``document`` and return the result (RFC 7396 §2)."""
    # RFC 7396 §2: a patch that is not an object replaces the target whole.
    if not isinstance(patch, Mapping):
        return patch
    # RFC 7396 §2: a target that is not an object is treated as the empty object.
    result: dict[str, JSON] = dict(document) if isinstance(document, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            # RFC 7396 §2: null removes the member (and is no error when it is absent).
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def create_merge_patch(source: JSON, target: JSON) -> JSON:
    """The merge patch that turns ``source`` into ``target``.

    For two objects the patch is an object, ``{}`` when they are equal; otherwise it is
    ``target`` itself, which replaces the whole document (RFC 7396 §2).

    RFC 7396 cannot set a member to ``null`` (``null`` means "remove"), so a member that
    is ``null`` in ``target`` is sent as ``null``: a merge-patch server removes it.
    """
    if not (isinstance(source, Mapping) and isinstance(target, Mapping)):
        return target
    patch: dict[str, JSON] = {key: None for key in source if key not in target}
    for key, value in target.items():
        if key not in source:
            patch[key] = value
        elif isinstance(source[key], Mapping) and isinstance(value, Mapping):
            nested = create_merge_patch(source[key], value)
            if nested:
                patch[key] = nested
        elif not json_equal(source[key], value):
            patch[key] = value
    return patch
