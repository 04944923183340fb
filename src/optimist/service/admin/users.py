"""``/admin/users``: the users of a tenant (SPEC §4.1, seed 002).

``GET``/``POST /admin/users``, ``GET``/``PATCH``/``PUT``/``DELETE /admin/users/{id}``.
A user is ``{"id", "email", "name", "role", "created_at", "updated_at"}``; the server
chooses the id; an email is unique in the tenant, whatever its case (409). Writes need
the ``admin`` role. PATCH is a JSON merge patch (RFC 7396) of the editable members, PUT
replaces them all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

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

__all__ = ["USERS", "NewUser", "User", "UserPatch", "UserReplacement", "router"]

# RFC 5321 §4.5.3.1: a local part of up to 64 octets, a domain of DNS labels. The local
# part is RFC 5322's dot-atom; quoted local parts and address literals are refused.
_EMAIL: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _email(value: str) -> str:
    local, _, _ = value.partition("@")
    if len(local) > 64 or _EMAIL.fullmatch(value) is None:
        raise ValueError("is not an email address")
    return value


# The document says "email", so that clients and generators send addresses; the
# validator holds them to the rule above.
Email = Annotated[
    str,
    StringConstraints(max_length=320),
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email"}),
]
Name = Annotated[str, StringConstraints(max_length=200), Line]
UserRole = Literal["admin", "editor", "viewer"]


class NewUser(Strict):
    """``POST /admin/users``: a user's editable members (the id is the server's)."""

    email: Email
    name: Name = ""
    role: UserRole


class UserReplacement(NewUser):
    """``PUT /admin/users/{id}``: every editable member (``name`` defaults to empty)."""


class UserPatch(Strict):
    """``PATCH /admin/users/{id}``: a merge patch; ``null`` removes ``name``, and
    cannot remove ``email`` or ``role``, which every user has."""

    email: Email | None = None
    name: Name | None = None
    role: UserRole | None = None

    @field_validator("email", "role")
    @classmethod
    def _required(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be removed: every user has one")
        return value

    @field_validator("name")
    @classmethod
    def _removed(cls, value: str | None) -> str:
        return "" if value is None else value

    def changes(self) -> dict[str, Any]:
        """The members the patch sets (RFC 7396: absent members are left alone)."""
        return self.model_dump(exclude_unset=True)


class User(BaseModel):
    """A user as the API represents it."""

    id: str
    email: str
    name: str
    role: UserRole
    created_at: str
    updated_at: str


class UserPage(BaseModel):
    """One page of users."""

    data: list[User]
    next_cursor: str | None


def render(row: Mapping[str, Any]) -> dict[str, Any]:
    """The representation of a user row."""
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


USERS: Final = Collection(
    schema.users,
    "/admin/users",
    key=re.compile(r"[A-Za-z0-9._~-]{1,64}"),
    key_member="id",
    render=render,
    unique=("email_key", "email"),
)


def columns(members: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a user's ``members``: with an email, the key its uniqueness compares
    (one address whatever its case, so ``USER@example.com`` collides with ``user@…``)."""
    values = dict(members)
    if isinstance(values.get("email"), str):
        values["email_key"] = values["email"].lower()
    return values


Admin = Annotated[Identity, Depends(writer("admin"))]


async def find_user(user_id: str, identity: IdentityDep, runtime: RuntimeDep) -> Record:
    """The user in the path (the lookup of a refused request)."""
    return await USERS.fetch(runtime, identity, user_id)


Current = Depends(lookup(find_user))

router = APIRouter(route_class=PrecedenceRoute, prefix="/users")


@router.get(
    "",
    response_model=UserPage,
    summary="List the tenant's users",
    responses=problem_responses(400, 401, 410, 422),
)
async def list_users(
    identity: IdentityDep, runtime: RuntimeDep, limit: Limit = 20, cursor: PageCursor = None
) -> Response:
    return JSONResponse(await USERS.listing(runtime, identity, limit, cursor))


@router.post(
    "",
    status_code=201,
    response_model=User,
    summary="Create a user",
    responses={**USERS.created("user_id"), **problem_responses(401, 403, 409, 413, 415, 422)},
    openapi_extra=openapi_body(NewUser, "application/json"),
)
async def create_user(request: Request, identity: Admin, write: Write) -> Response:
    new = await read_body(request, NewUser)
    values = {**columns(new.model_dump()), "id": uuid.uuid4().hex, "created_at": datetime.now(UTC)}
    response = await USERS.create(write.connection, identity, values)
    return await write.keep(response)


@router.get(
    "/{user_id}",
    response_model=User,
    summary="Read a user",
    responses={**representation_responses(), **problem_responses(304, 401, 404, 412)},
)
async def read_user(
    user_id: str, identity: IdentityDep, runtime: RuntimeDep, conditions: AdminConditions
) -> Response:
    return await USERS.read(runtime, identity, user_id, conditions)


@router.patch(
    "/{user_id}",
    dependencies=[Current],
    response_model=User,
    summary="Change some of a user's members (If-Match optional)",
    responses={
        **representation_responses(),
        **problem_responses(401, 403, 404, 409, 412, 413, 415, 422),
    },
    openapi_extra=openapi_body(UserPatch, MERGE_PATCH, "application/json"),
)
async def patch_user(
    user_id: str,
    request: Request,
    identity: Admin,
    write: Write,
    conditions: AdminConditions,
) -> Response:
    patch = await read_body(request, UserPatch)
    response = await USERS.update(
        write.connection, identity, user_id, columns(patch.changes()), conditions
    )
    return await write.keep(response)


@router.put(
    "/{user_id}",
    dependencies=[Current],
    response_model=User,
    summary="Replace a user's editable members (If-Match optional)",
    responses={
        **representation_responses(),
        **problem_responses(401, 403, 404, 409, 412, 413, 415, 422),
    },
    openapi_extra=openapi_body(UserReplacement, "application/json"),
)
async def replace_user(
    user_id: str,
    request: Request,
    identity: Admin,
    write: Write,
    conditions: AdminConditions,
) -> Response:
    replacement = await read_body(request, UserReplacement)
    values = columns(replacement.model_dump())
    response = await USERS.update(write.connection, identity, user_id, values, conditions)
    return await write.keep(response)


@router.delete(
    "/{user_id}",
    dependencies=[Current],
    status_code=204,
    summary="Delete a user (If-Match required)",
    responses=problem_responses(400, 401, 403, 404, 412),
)
async def delete_user(
    user_id: str, identity: Admin, write: Write, conditions: AdminConditions
) -> Response:
    response = await USERS.delete(write.connection, identity, user_id, conditions)
    return await write.keep(response)
