"""What the Starlette tests share: an in-process client, and reading a problem."""

from __future__ import annotations

from typing import Any, Final

import httpx

__all__ = ["PROBLEM", "assert_problem", "client_for"]

PROBLEM: Final = "application/problem+json"


def client_for(app: Any) -> httpx.AsyncClient:
    """A client calling ``app`` in-process, seeing 5xx responses rather than exceptions."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of ``response``, after checking the status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem
