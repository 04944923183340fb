"""``/admin/feature-flags``: a tenant's feature flags (SPEC §4.1, seed 002).

``GET``/``POST /admin/feature-flags``, ``GET``/``PATCH /admin/feature-flags/{key}``. A
flag is ``{"key", "enabled", "description", "rollout_percentage", "updated_at"}``; the
client chooses the key, unique in the tenant. ``If-None-Match: *`` makes a create
conditional (RFC 9110 §13.1.2): a taken key is then a 412 instead of a 409. Writes need
the ``admin`` or ``editor`` role. PATCH is a JSON merge patch (RFC 7396).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from optimist.fastapi import (
    PrecedenceRoute,
    conditional,
    lookup,
    problem_responses,
    representation_responses,
)
from optimist.service import schema
from optimist.service.admin.collection import (
    COMPARISON,
    AdminConditions,
    Collection,
    Limit,
    PageCursor,
)
from optimist.service.admin.identity import Identity, IdentityDep, writer
from optimist.service.bodies import (
    MERGE_PATCH,
    Prose,
    Strict,
    openapi_body,
    read_body,
    timestamp,
)
from optimist.service.runtime import RuntimeDep
from optimist.service.writes import Write
from optimist.sqlalchemy import Record
from optimist.starlette import ConditionalRequest

__all__ = ["FLAGS", "FeatureFlag", "FlagPatch", "NewFlag", "router"]

_KEY: Final = re.compile(r"[A-Za-z0-9._~-]{1,100}")
#: The 412 of a create whose ``If-None-Match: *`` found the key taken.
TAKEN_DETAIL: Final = "A feature flag with this key already exists."


def _key(value: str) -> str:
    if _KEY.fullmatch(value) is None:
        raise ValueError("must be 1 to 100 of A-Z a-z 0-9 . _ ~ -")
    if value in (".", ".."):
        # RFC 3986 §5.2.4: clients remove these dot-segments from a path, so no URL
        # could ever address /admin/feature-flags/. or /admin/feature-flags/..
        raise ValueError("cannot be . or .., which a URL path cannot address")
    return value


# The document carries the key's pattern, so that clients and generators send keys.
FlagKey = Annotated[
    str, AfterValidator(_key), Field(json_schema_extra={"pattern": f"^{_KEY.pattern}$"})
]
Description = Annotated[str, StringConstraints(max_length=1000), Prose]
Rollout = Annotated[int, Field(ge=0, le=100)]


class NewFlag(Strict):
    """``POST /admin/feature-flags``: the client's key and the flag's members."""

    key: FlagKey
    enabled: bool = False
    description: Description = ""
    rollout_percentage: Rollout = 0


class FlagPatch(Strict):
    """``PATCH /admin/feature-flags/{key}``: a merge patch; ``null`` empties the
    description and cannot remove ``enabled`` or ``rollout_percentage``."""

    enabled: bool | None = None
    description: Description | None = None
    rollout_percentage: Rollout | None = None

    @field_validator("enabled", "rollout_percentage")
    @classmethod
    def _required(cls, value: bool | int | None) -> bool | int:
        if value is None:
            raise ValueError("cannot be removed: every flag has one")
        return value

    @field_validator("description")
    @classmethod
    def _removed(cls, value: str | None) -> str:
        return "" if value is None else value

    def changes(self) -> dict[str, Any]:
        """The members the patch sets (RFC 7396: absent members are left alone)."""
        return self.model_dump(exclude_unset=True)


class FeatureFlag(BaseModel):
    """A feature flag as the API represents it."""

    key: str
    enabled: bool
    description: str
    rollout_percentage: int
    updated_at: str


class FlagPage(BaseModel):
    """One page of feature flags."""

    data: list[FeatureFlag]
    next_cursor: str | None


def render(row: Mapping[str, Any]) -> dict[str, Any]:
    """The representation of a feature-flag row."""
    return {
        "key": row["key"],
        "enabled": bool(row["enabled"]),
        "description": row["description"],
        "rollout_percentage": row["rollout_percentage"],
        "updated_at": timestamp(row["updated_at"]),
    }


FLAGS: Final = Collection(
    schema.feature_flags,
    "/admin/feature-flags",
    key=_KEY,
    key_member="key",
    render=render,
)

Editor = Annotated[Identity, Depends(writer("admin", "editor"))]
# A create's preconditions: If-None-Match "*" (or If-Match), compared like the profile's.
CreateConditions = Annotated[
    ConditionalRequest, Depends(conditional(comparison=COMPARISON, failed_detail=TAKEN_DETAIL))
]


async def find_flag(key: str, identity: IdentityDep, runtime: RuntimeDep) -> Record:
    """The flag in the path (the lookup of a refused request)."""
    return await FLAGS.fetch(runtime, identity, key)


Current = Depends(lookup(find_flag))

router = APIRouter(route_class=PrecedenceRoute, prefix="/feature-flags")


@router.get(
    "",
    response_model=FlagPage,
    summary="List the tenant's feature flags",
    responses=problem_responses(400, 401, 410, 422),
)
async def list_flags(
    identity: IdentityDep, runtime: RuntimeDep, limit: Limit = 20, cursor: PageCursor = None
) -> Response:
    return JSONResponse(await FLAGS.listing(runtime, identity, limit, cursor))


@router.post(
    "",
    status_code=201,
    response_model=FeatureFlag,
    summary="Create a feature flag (If-None-Match: * to create only if absent)",
    responses={**FLAGS.created("key"), **problem_responses(401, 403, 409, 412, 413, 415, 422)},
    openapi_extra=openapi_body(NewFlag, "application/json"),
)
async def create_flag(
    request: Request, identity: Editor, write: Write, conditions: CreateConditions
) -> Response:
    new = await read_body(request, NewFlag)
    condition = conditions.write_condition()
    response = await FLAGS.create(write.connection, identity, new.model_dump(), condition)
    return await write.keep(response)


@router.get(
    "/{key}",
    response_model=FeatureFlag,
    summary="Read a feature flag",
    responses={**representation_responses(), **problem_responses(304, 401, 404, 412)},
)
async def read_flag(
    key: str, identity: IdentityDep, runtime: RuntimeDep, conditions: AdminConditions
) -> Response:
    return await FLAGS.read(runtime, identity, key, conditions)


@router.patch(
    "/{key}",
    dependencies=[Current],
    response_model=FeatureFlag,
    summary="Change a feature flag (If-Match optional)",
    responses={
        **representation_responses(),
        **problem_responses(401, 403, 404, 412, 413, 415, 422),
    },
    openapi_extra=openapi_body(FlagPatch, MERGE_PATCH, "application/json"),
)
async def patch_flag(
    key: str,
    request: Request,
    identity: Editor,
    write: Write,
    conditions: AdminConditions,
) -> Response:
    patch = await read_body(request, FlagPatch)
    response = await FLAGS.update(write.connection, identity, key, patch.changes(), conditions)
    return await write.keep(response)
