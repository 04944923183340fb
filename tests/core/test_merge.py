"""Three-way JSON merge and JSON Merge Patch (RFC 7396)."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.errors import MergeConflict
from optimist.merge import JSON, Path, apply_merge_patch, create_merge_patch, json_equal, merge

# -- strategies ---------------------------------------------------------------------------

# Few keys and few scalars, so that generated sides often touch the same paths.
_KEYS = st.sampled_from(["a", "b", "c"])
_SCALARS = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "x"])


def _json(leaves: st.SearchStrategy[Any] = _SCALARS) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=2) | st.dictionaries(_KEYS, children, max_size=3)
        ),
        max_leaves=8,
    )


_VALUES = _json()

# Arbitrary JSON as a server could send it: floats, unicode keys, deep nesting.
_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children)
    ),
    max_leaves=20,
)


@st.composite
def _edited(draw: st.DrawFn, doc: Any) -> Any:
    """A version of ``doc`` with some members kept, deleted, replaced, edited or added."""
    if not isinstance(doc, dict) or draw(st.integers(0, 4)) == 0:
        return draw(st.just(doc) | _VALUES)
    result: dict[str, Any] = {}
    for key, value in doc.items():
        action = draw(st.sampled_from(["keep", "keep", "delete", "replace", "edit"]))
        if action == "keep":
            result[key] = value
        elif action == "replace":
            result[key] = draw(_VALUES)
        elif action == "edit":
            result[key] = draw(_edited(value))
    for key in draw(st.lists(st.sampled_from(["c", "d"]), max_size=2)):
        if key not in doc:
            result[key] = draw(_VALUES)
    return result


_TRIPLES = _VALUES.flatmap(lambda base: st.tuples(st.just(base), _edited(base), _edited(base)))

# -- an oracle that reads documents path by path, independently of merge() ---------------

_ABSENT = object()
_OBJECT = "<object>"


def _paths(doc: Any, prefix: Path = ()) -> set[Path]:
    found = {prefix}
    if isinstance(doc, dict):
        for key, value in doc.items():
            found |= _paths(value, (*prefix, key))
    return found


def _at(doc: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return _ABSENT
        doc = doc[key]
    return doc


def _canon(value: Any) -> str | None:
    return None if value is _ABSENT else json.dumps(value, sort_keys=True)


def _conflicting_paths(base: Any, theirs: Any, mine: Any) -> set[Path]:
    """Paths where both sides changed the value differently and are not both objects."""
    found = set()
    for path in _paths(base) | _paths(theirs) | _paths(mine):
        b, t, m = (_at(doc, path) for doc in (base, theirs, mine))
        if len({_canon(b), _canon(t), _canon(m)}) == 3 and not (
            isinstance(t, dict) and isinstance(m, dict)
        ):
            found.add(path)
    return found


def _outcome(base: Any, theirs: Any, mine: Any) -> Any:
    """The merge, or the MergeConflict it raised, as a value to assert on."""
    try:
        return merge(base, theirs, mine)
    except MergeConflict as conflict:
        return conflict


def _flat(doc: Any) -> dict[Path, str]:
    """Every path of ``doc``; an object stands as a marker, its members as their own paths."""
    flat: dict[Path, str] = {}
    for path in _paths(doc):
        value = _at(doc, path)
        flat[path] = _OBJECT if isinstance(value, dict) else json.dumps(value, sort_keys=True)
    return flat


# -- merge: laws ----------------------------------------------------------------------------


@given(_TRIPLES)
def test_unchanged_theirs_gives_mine(triple: tuple[Any, Any, Any]) -> None:
    """When the server did not change the document, the merge is our version."""
    base, _, mine = triple
    assert merge(base, base, mine) == mine


@given(_TRIPLES)
def test_unchanged_mine_gives_theirs(triple: tuple[Any, Any, Any]) -> None:
    """When we did not change the document, the merge is the server's version."""
    base, theirs, _ = triple
    assert merge(base, theirs, base) == theirs


@given(_TRIPLES)
def test_merge_commutes_without_conflict(triple: tuple[Any, Any, Any]) -> None:
    """Swapping the two sides gives the same merge, or the same conflict."""
    base, theirs, mine = triple
    merged, swapped = _outcome(base, theirs, mine), _outcome(base, mine, theirs)
    if isinstance(merged, MergeConflict):
        assert isinstance(swapped, MergeConflict)
        assert set(swapped.paths) == set(merged.paths)
    else:
        assert json_equal(swapped, merged)


@given(_TRIPLES)
def test_conflict_iff_both_sides_changed_a_path_differently(triple: tuple[Any, Any, Any]) -> None:
    """A conflict is raised exactly when some path was changed differently by both sides."""
    base, theirs, mine = triple
    expected = _conflicting_paths(base, theirs, mine)
    outcome = _outcome(base, theirs, mine)
    if isinstance(outcome, MergeConflict):
        assert outcome.paths
        assert set(outcome.paths) <= expected
    else:
        assert not expected


@given(_TRIPLES)
def test_merge_keeps_every_change_of_both_sides(triple: tuple[Any, Any, Any]) -> None:
    """At every path the merge holds the side that changed it, or the base if neither did."""
    base, theirs, mine = triple
    merged = _outcome(base, theirs, mine)
    if isinstance(merged, MergeConflict):
        return
    b, t, m, r = _flat(base), _flat(theirs), _flat(mine), _flat(merged)
    assert set(r) <= set(b) | set(t) | set(m)
    for path in set(b) | set(t) | set(m):
        if t.get(path) != b.get(path):
            assert r.get(path) == t.get(path), path
        if m.get(path) != b.get(path):
            assert r.get(path) == m.get(path), path
        if t.get(path) == b.get(path) == m.get(path):
            assert r.get(path) == b.get(path), path


@given(_ANY_JSON, _ANY_JSON, _ANY_JSON)
def test_merge_raises_nothing_but_merge_conflict(base: Any, theirs: Any, mine: Any) -> None:
    """On arbitrary JSON, merge returns a value or raises MergeConflict, nothing else."""
    snapshot = copy.deepcopy((base, theirs, mine))
    with contextlib.suppress(MergeConflict):
        merge(base, theirs, mine)
    assert (base, theirs, mine) == snapshot


# -- merge: examples ------------------------------------------------------------------------


def test_different_fields_are_both_kept() -> None:
    """Changes to different members, nested ones included, are combined."""
    base = {"name": "a", "tags": ["x"], "owner": {"id": 1, "team": "ops"}}
    theirs = {"name": "b", "tags": ["x"], "owner": {"id": 1, "team": "dev"}}
    mine = {"name": "a", "tags": ["y"], "owner": {"id": 2, "team": "ops"}}
    assert merge(base, theirs, mine) == {
        "name": "b",
        "tags": ["y"],
        "owner": {"id": 2, "team": "dev"},
    }


@pytest.mark.parametrize(
    ("theirs", "mine", "merged"),
    [
        ({"b": 2}, {"a": 1, "b": 2}, {"b": 2}),
        ({"a": 1, "b": 2}, {"b": 2}, {"b": 2}),
        ({"b": 2}, {"b": 2}, {"b": 2}),
        ({"a": 1, "b": 3}, {"b": 2}, {"b": 3}),
    ],
    ids=["deleted-by-them", "deleted-by-me", "deleted-by-both", "deleted-and-other-changed"],
)
def test_deletion_against_an_unchanged_member_deletes(
    theirs: JSON, mine: JSON, merged: JSON
) -> None:
    """A member deleted on one side and unchanged on the other is deleted."""
    assert merge({"a": 1, "b": 2}, theirs, mine) == merged


def test_deletion_against_a_change_conflicts() -> None:
    """A member deleted on one side and changed on the other is a conflict."""
    with pytest.raises(MergeConflict) as raised:
        merge({"a": 1}, {}, {"a": 2})
    assert raised.value.paths == (("a",),)


def test_same_change_on_both_sides_is_not_a_conflict() -> None:
    """Both sides setting a member to the same value merge to that value."""
    assert merge({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 2, "b": 3}) == {"a": 2, "b": 3}


def test_conflict_reports_every_path_and_both_versions() -> None:
    """A conflict lists all conflicting paths and holds base, theirs and mine."""
    base = {"name": "a", "owner": {"team": "ops"}, "size": 1}
    theirs = {"name": "b", "owner": {"team": "dev"}, "size": 2}
    mine = {"name": "c", "owner": {"team": "qa"}, "size": 1}
    with pytest.raises(MergeConflict) as raised:
        merge(base, theirs, mine)
    conflict = raised.value
    assert conflict.paths == (("name",), ("owner", "team"))
    assert (conflict.base, conflict.theirs, conflict.mine) == (base, theirs, mine)
    assert conflict.status == 409


def test_lists_are_replaced_whole() -> None:
    """Two different edits of one list conflict at the list, not at its items."""
    with pytest.raises(MergeConflict) as raised:
        merge({"tags": ["a", "b"]}, {"tags": ["a", "c"]}, {"tags": ["b"]})
    assert raised.value.paths == (("tags",),)


def test_members_added_on_both_sides_merge() -> None:
    """Objects added at the same member by both sides are merged member by member."""
    merged = merge({}, {"meta": {"x": 1}}, {"meta": {"y": 2}})
    assert merged == {"meta": {"x": 1, "y": 2}}


def test_whole_document_conflict_has_the_root_path() -> None:
    """Two different scalar documents conflict at the root, ``()``."""
    with pytest.raises(MergeConflict) as raised:
        merge(1, 2, 3)
    assert raised.value.paths == ((),)


def test_true_and_one_are_different_values() -> None:
    """Changing ``1`` to ``true`` is a change, though Python finds them equal."""
    assert merge({"a": 1}, {"a": True}, {"a": 1}) == {"a": True}
    assert merge({"a": 1}, {"a": 1}, {"a": True}) == {"a": True}


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ([1, 2], (1, 2), True),
        ([1], {"0": 1}, False),
        ({"a": None}, {}, False),
        ("1", 1, False),
    ],
    ids=["int-float", "true-one", "false-zero", "member-order", "list-tuple", "list-object",
         "null-member", "string-number"],
)  # fmt: skip
def test_json_equal(a: JSON, b: JSON, equal: bool) -> None:
    """JSON equality differs from Python's on booleans and agrees on the rest."""
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal


# -- JSON Merge Patch -----------------------------------------------------------------------

_RFC7396_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(
    ("document", "patch", "result"),
    _RFC7396_APPENDIX_A,
    ids=[f"A.{n}" for n in range(1, len(_RFC7396_APPENDIX_A) + 1)],
)
def test_apply_merge_patch_rfc7396_examples(document: JSON, patch: JSON, result: JSON) -> None:
    """The examples of RFC 7396 Appendix A give the results the RFC lists."""
    assert apply_merge_patch(document, patch) == result


def test_apply_merge_patch_leaves_the_document_alone() -> None:
    """Applying a patch returns a new document and does not modify the one given."""
    document = {"a": {"b": 1}, "c": 2}
    apply_merge_patch(document, {"a": {"b": None}, "c": None})
    assert document == {"a": {"b": 1}, "c": 2}


_NO_NULLS = _json(st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "x"]))


@given(st.dictionaries(_KEYS, _NO_NULLS), st.dictionaries(_KEYS, _NO_NULLS))
def test_created_patch_turns_source_into_target(source: JSON, target: JSON) -> None:
    """Applying the patch created from source to target gives target (without nulls)."""
    assert json_equal(apply_merge_patch(source, create_merge_patch(source, target)), target)


@given(st.dictionaries(_KEYS, _VALUES))
def test_created_patch_of_equal_objects_is_empty(document: JSON) -> None:
    """Between equal objects the patch is ``{}``: there is nothing to send."""
    assert create_merge_patch(document, copy.deepcopy(document)) == {}


def test_created_patch_is_minimal() -> None:
    """The patch names only changed members, nested ones as nested patches."""
    source = {"a": 1, "b": {"x": 1, "y": 2}, "c": [1]}
    target = {"a": 1, "b": {"x": 1, "y": 3}, "d": True}
    assert create_merge_patch(source, target) == {"b": {"y": 3}, "c": None, "d": True}
