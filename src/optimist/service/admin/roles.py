"""``/admin/roles``: the roles of a tenant and their permissions (SPEC §4.1, seed 002).

``GET``/``POST /admin/roles``, ``GET``/``PATCH /admin/roles/{id}``. A role is
``{"id", "name", "permissions", "updated_at"}``; the server chooses the id; a name is
unique in the tenant (409). Writes need the ``admin`` role. PATCH is a JSON merge patch
(RFC 7396): ``permissions``, an array, is replaced whole.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from optimist.fastapi import PrecedenceRoute, lookup, problem_responses, representation_responses
from optimist.service import schema
from optimist.service.admin.collection import (
    AdminConditions,
    Collection,
    Limit,
    PageCursor,
)
from optimist.service.admin.identity import Identity, IdentityDep, writer
from optimist.service.bodies import (
    MERGE_PATCH,
    Line,
    Strict,
    openapi_body,
    read_body,
    timestamp,
)
from optimist.service.runtime import RuntimeDep
from optimist.service.writes import Write
from optimist.sqlalchemy import Record

__all__ = ["ROLES", "NewRole", "Role", "RolePatch", "router"]

_PERMISSION: Final = re.compile(r"[\x21-\x7e]+")


def _permission(value: str) -> str:
    if _PERMISSION.fullmatch(value) is None:
        raise ValueError("must be printable ASCII without spaces")
    return value


RoleName = Annotated[str, StringConstraints(min_length=1, max_length=100), Line]
# The document carries the pattern ("!" to "~": printable ASCII without spaces).
Permission = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_permission),
    Field(json_schema_extra={"pattern": "^[!-~]+$"}),
]
Permissions = Annotated[list[Permission], Field(max_length=100)]


class NewRole(Strict):
    """``POST /admin/roles``: a role's editable members (the id is the server's)."""

    name: RoleName
    permissions: Permissions = Field(default_factory=list)


class RolePatch(Strict):
    """``PATCH /admin/roles/{id}``: a merge patch; ``null`` empties ``permissions``
    and cannot remove ``name``."""

    name: RoleName | None = None
    permissions: Permissions | None = None

    @field_validator("name")
    @classmethod
    def _required(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be removed: every role has one")
        return value

    @field_validator("permissions")
    @classmethod
    def _removed(cls, value: list[str] | None) -> list[str]:
        return [] if value is None else value

    def changes(self) -> dict[str, Any]:
        """The members the patch sets (RFC 7396: absent members are left alone)."""
        return self.model_dump(exclude_unset=True)


class Role(BaseModel):
    """A role as the API represents it."""

    id: str
    name: str
    permissions: list[str]
    updated_at: str


class RolePage(BaseModel):
    """One page of roles."""

    data: list[Role]
    next_cursor: str | None


def render(row: Mapping[str, Any]) -> dict[str, Any]:
    """The representation of a role row."""
    return {
        "id": row["id"],
        "name": row["name"],
        "permissions": list(row["permissions"]),
        "updated_at": timestamp(row["updated_at"]),
    }


ROLES: Final = Collection(
    schema.roles,
    "/admin/roles",
    key=re.compile(r"[A-Za-z0-9._~-]{1,64}"),
    key_member="id",
    render=render,
    unique=("name", "name"),
)

Admin = Annotated[Identity, Depends(writer("admin"))]


async def find_role(role_id: str, identity: IdentityDep, runtime: RuntimeDep) -> Record:
    """The role in the path (the lookup of a refused request)."""
    return await ROLES.fetch(runtime, identity, role_id)


Current = Depends(lookup(find_role))

router = APIRouter(route_class=PrecedenceRoute, prefix="/roles")


@router.get(
    "",
    response_model=RolePage,
    summary="List the tenant's roles",
    responses=problem_responses(400, 401, 410, 422),
)
async def list_roles(
    identity: IdentityDep, runtime: RuntimeDep, limit: Limit = 20, cursor: PageCursor = None
) -> Response:
    return JSONResponse(await ROLES.listing(runtime, identity, limit, cursor))


@router.post(
    "",
    status_code=201,
    response_model=Role,
    summary="Create a role",
    responses={**ROLES.created("role_id"), **problem_responses(401, 403, 409, 413, 415, 422)},
    openapi_extra=openapi_body(NewRole, "application/json"),
)
async def create_role(request: Request, identity: Admin, write: Write) -> Response:
    new = await read_body(request, NewRole)
    response = await ROLES.create(
        write.connection, identity, {**new.model_dump(), "id": uuid.uuid4().hex}
    )
    return await write.keep(response)


@router.get(
    "/{role_id}",
    response_model=Role,
    summary="Read a role",
    responses={**representation_responses(), **problem_responses(304, 401, 404, 412)},
)
async def read_role(
    role_id: str, identity: IdentityDep, runtime: RuntimeDep, conditions: AdminConditions
) -> Response:
    return await ROLES.read(runtime, identity, role_id, conditions)


@router.patch(
    "/{role_id}",
    dependencies=[Current],
    response_model=Role,
    summary="Change a role's name or permissions (If-Match optional)",
    responses={
        **representation_responses(),
        **problem_responses(401, 403, 404, 409, 412, 413, 415, 422),
    },
    openapi_extra=openapi_body(RolePatch, MERGE_PATCH, "application/json"),
)
async def patch_role(
    role_id: str,
    request: Request,
    identity: Admin,
    write: Write,
    conditions: AdminConditions,
) -> Response:
    patch = await read_body(request, RolePatch)
    response = await ROLES.update(write.connection, identity, role_id, patch.changes(), conditions)
    return await write.keep(response)
