"""The admin API of seed 002 (SPEC §4.1): users, roles and feature flags of a tenant.

Every request carries the gateway's ``X-Tenant-Id`` and ``X-User-Role``
(:mod:`~optimist.service.admin.identity`); unsafe ones also a CSRF token from
``GET /admin/csrf-token``. Resources carry weak ETags; If-Match is compared by
opaque-tag, DELETE requires it, PATCH and PUT take it when given
(:mod:`~optimist.service.admin.collection`). :data:`router` is what the app includes.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from optimist.fastapi import problem_responses
from optimist.service.admin import flags, roles, users
from optimist.service.admin.identity import IdentityDep, issue_csrf_token
from optimist.service.runtime import RuntimeDep

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/csrf-token",
    summary="A CSRF token for this tenant and role, for X-CSRF-Token on writes",
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"csrf_token": {"type": "string"}},
                        "required": ["csrf_token"],
                    }
                }
            }
        },
        **problem_responses(401),
    },
)
async def csrf_token(identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    # A token must never be served from a shared cache to someone else.
    return JSONResponse(
        {"csrf_token": issue_csrf_token(runtime, identity)},
        headers={"Cache-Control": "no-store"},
    )


router.include_router(users.router)
router.include_router(roles.router)
router.include_router(flags.router)
