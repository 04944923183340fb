"""The authorization matrix, over real HTTP: every route × every identity a request can
carry, against ``optimist serve --require-identity`` in gateway mode and in token mode.

The routes are those of the application's OpenAPI document, so that a route added
later is in the matrix without a word here. One server per mode (module-scoped), one
request per cell. A cell asserts whether the request got past authentication and
authorization, not what the route then made of its made-up path and body (404, 422,
428...): allowed is any status but 401, 403 and 5xx; refused is the exact status with
its challenge. The untrusted peer is a network namespace (tests/support/hosts.py)
sending every route's request to the gateway-mode server on this machine's address on
its link; the two tenants are told apart by what one of them creates.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import httpx
import pytest

from optimist.service.app import create_app
from optimist.service.schema import USER_ROLES
from optimist.starlette import GATEWAY_CHALLENGE
from tests.support.hosts import Host, network_hosts
from tests.support.issuers import AUDIENCE, ISSUER, Issuer
from tests.support.servers import Server, optimist_serving
from tests.support.service import settings_for
from tests.support.shared import once

pytestmark = pytest.mark.slow

#: Every operation of the service, as its OpenAPI document lists them, path parameters "1".
ROUTES: Final = [
    (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
    for path, operations in create_app(settings_for("sqlite://")).openapi()["paths"].items()
    for method in operations
]
TENANTS: Final = ("tenant-a", "tenant-b")
#: The writes of the admin API and the roles that may make them; its reads take any role.
WRITERS: Final = {"/admin/feature-flags": ("admin", "editor"), "/admin": ("admin",)}
PUBLIC: Final = ("/healthz", "/readyz")
UNSAFE: Final = {"POST", "PUT", "PATCH", "DELETE"}
NO_TOKEN: Final = 'Bearer realm="optimist"'

IDP: Final = Issuer("RS256", kid="idp-1")
FORGER: Final = Issuer("RS256", kid="idp-1")  # the provider's kid, another key


def _id(method: str, path: str) -> str:
    return f"{method} {path}"


def allowed_roles(method: str, path: str) -> tuple[str, ...] | None:
    """The roles that may make this request; None: any caller, even without identity."""
    if path in PUBLIC:
        return None
    if not path.startswith("/admin") or method not in UNSAFE:
        return USER_ROLES
    return next(roles for prefix, roles in WRITERS.items() if path.startswith(prefix))


@dataclass(frozen=True)
class Expected:
    """A refusal: its status and challenge (None: the cell is allowed)."""

    status: int
    challenge: str | None = None
    error: str | None = None


def check(response: httpx.Response, expected: Expected | None) -> None:
    """``response`` is ``expected``'s refusal, or (None) got past every identity check."""
    if expected is None:
        assert response.status_code not in {401, 403}, response.text
        assert response.status_code < 500, response.text
        return
    assert response.status_code == expected.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers.get("www-authenticate")
    if expected.challenge is not None:
        assert challenge == expected.challenge
    if expected.error is not None:
        assert challenge is not None
        assert f'error="{expected.error}"' in challenge


def send(http: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = b"{}" if method in UNSAFE else None
    sent = {**headers, "Content-Type": "application/json"} if body else headers
    return http.request(method, path, headers=sent, content=body)


# -- the servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Gateway mode, loopback trusted, identity required everywhere; on every interface,
    so that the namespace reaches it too."""
    directory = tmp_path_factory.mktemp("gateway")
    with optimist_serving(directory, "--host", "0.0.0.0", "--require-identity") as server:
        yield server


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Token mode with the provider's JWKS, identity required everywhere."""
    directory = tmp_path_factory.mktemp("token")
    keys = directory / "jwks.json"
    keys.write_text(json.dumps({"keys": [IDP.jwk(alg="RS256")]}))
    options = ["--auth", "token", "--jwt-keys", str(keys), "--jwt-audience", AUDIENCE]
    with optimist_serving(
        directory, *options, "--jwt-issuer", ISSUER, "--jwt-leeway", "5", "--require-identity"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def csrf(gateway: Server, http: httpx.Client) -> dict[tuple[str, str], str]:
    """A CSRF token of each role in each tenant, fetched once."""
    tokens = {}
    for role in USER_ROLES:
        for tenant in TENANTS:
            headers = {"X-Tenant-Id": tenant, "X-User-Role": role}
            response = http.get(f"{gateway.url}/admin/csrf-token", headers=headers)
            tokens[role, tenant] = response.json()["csrf_token"]
    return tokens


# -- gateway mode ----------------------------------------------------------------------------

CALLERS: Final = [(role, tenant) for role in USER_ROLES for tenant in TENANTS]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
@pytest.mark.parametrize(("role", "tenant"), CALLERS, ids=[f"{r}@{t}" for r, t in CALLERS])
def test_gateway_identity(
    gateway: Server,
    http: httpx.Client,
    csrf: dict[tuple[str, str], str],
    method: str,
    path: str,
    role: str,
    tenant: str,
) -> None:
    """From the gateway, a role passes where it may act, and is a 403 where it may not."""
    headers = {"X-Tenant-Id": tenant, "X-User-Role": role}
    if method in UNSAFE:
        headers["X-CSRF-Token"] = csrf[role, tenant]
    roles = allowed_roles(method, path)
    expected = None if roles is None or role in roles else Expected(403)
    check(send(http, method, f"{gateway.url}{path}", headers), expected)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
def test_gateway_without_identity(
    gateway: Server, http: httpx.Client, method: str, path: str
) -> None:
    """Without the identity fields, every route but the probes is a 401 with the
    gateway's challenge."""
    expected = None if path in PUBLIC else Expected(401, GATEWAY_CHALLENGE)
    check(send(http, method, f"{gateway.url}{path}", {}), expected)


def _sent_from_outside(gateway: Server) -> dict[str, tuple[int, str]]:
    """Status and challenge of every route's request with an admin's identity fields,
    sent from a network namespace (a peer that is not loopback) to the gateway-mode
    server on this machine's address on the namespace's link: one process for all."""
    with network_hosts(1) as [link]:
        return _sent_from(link, httpx.URL(gateway.url).port)


@pytest.fixture(scope="module")
def from_outside(
    gateway: Server, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str]]:
    """The untrusted peer's answers, gathered once per test session (pytest-xdist's
    workers share them), so that one namespace is made for all."""
    return once(
        tmp_path_factory, "authorization-untrusted-peer", lambda: _sent_from_outside(gateway)
    )


def _sent_from(link: Host, port: int | None) -> dict[str, tuple[int, str]]:
    """Every route's answer to a process in ``link``'s namespace, to ``port`` on this
    machine's end of the link."""
    script = (
        "import json, sys, httpx\n"
        "base, routes = sys.argv[1], json.loads(sys.argv[2])\n"
        "headers = {'X-Tenant-Id': 'tenant-a', 'X-User-Role': 'admin',"
        " 'X-Forwarded-For': '127.0.0.1', 'Content-Type': 'application/json'}\n"
        "out = {}\n"
        "with httpx.Client(timeout=30) as http:\n"
        "    for method, path in routes:\n"
        "        r = http.request(method, base + path, headers=headers, content=b'{}')\n"
        "        challenge = r.headers.get('www-authenticate', '')\n"
        "        out[method + ' ' + path] = [r.status_code, challenge]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [*link.command(sys.executable, "-c", script), f"http://{link.gateway}:{port}",
         json.dumps(ROUTES)],
        capture_output=True, text=True, timeout=300, check=True, env=os.environ,
    )  # fmt: skip
    return {
        key: (status, challenge) for key, (status, challenge) in json.loads(done.stdout).items()
    }


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
def test_gateway_untrusted_peer(
    from_outside: dict[str, tuple[int, str]], method: str, path: str
) -> None:
    """From a peer not trusted, an admin's identity (and a forged X-Forwarded-For naming
    loopback) is a 401 with the gateway's challenge on every route but the probes, which
    refuse the fields too."""
    status, challenge = from_outside[_id(method, path)]
    assert (status, challenge) == (401, GATEWAY_CHALLENGE)


# -- token mode ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
@pytest.mark.parametrize(("role", "tenant"), CALLERS, ids=[f"{r}@{t}" for r, t in CALLERS])
def test_token_identity(
    token: Server, http: httpx.Client, method: str, path: str, role: str, tenant: str
) -> None:
    """With a good token, a role passes where it may act, without a CSRF token, and is a
    403 insufficient_scope where it may not."""
    headers = {"Authorization": f"Bearer {IDP.token(tenant=tenant, role=role)}"}
    roles = allowed_roles(method, path)
    expected = None if roles is None or role in roles else Expected(403, error="insufficient_scope")
    check(send(http, method, f"{token.url}{path}", headers), expected)


#: Tokens no route takes, and the challenge's error description for each.
BAD_TOKENS: Final[dict[str, tuple[Callable[[], str], str]]] = {
    "forged": (lambda: FORGER.token(tenant="tenant-a", role="admin"), "signature"),
    "expired": (lambda: IDP.token(tenant="tenant-a", role="admin", lifetime=-60), "expired"),
    "wrong-audience": (lambda: IDP.token(tenant="tenant-a", role="admin", aud="x"), "audience"),
    "wrong-issuer": (lambda: IDP.token(tenant="tenant-a", role="admin", iss="x"), "issuer"),
    "not-yet-valid": (
        lambda: IDP.token(tenant="tenant-a", role="admin", nbf=_now() + 3600),
        "not valid yet",
    ),
}


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_token_refused(
    token: Server, http: httpx.Client, method: str, path: str, kind: str
) -> None:
    """A forged, expired, foreign or premature token is a 401 invalid_token saying which."""
    make, reason = BAD_TOKENS[kind]
    response = send(http, method, f"{token.url}{path}", {"Authorization": f"Bearer {make()}"})
    if path in PUBLIC:
        check(response, None)
        return
    check(response, Expected(401, error="invalid_token"))
    assert reason in response.headers["www-authenticate"]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
def test_token_missing(token: Server, http: httpx.Client, method: str, path: str) -> None:
    """Without a token, every route but the probes is a 401 whose challenge names no
    error (RFC 6750 §3.1)."""
    expected = None if path in PUBLIC else Expected(401, NO_TOKEN)
    check(send(http, method, f"{token.url}{path}", {}), expected)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
def test_token_without_tenant(token: Server, http: httpx.Client, method: str, path: str) -> None:
    """A good token that names no tenant is a 403 insufficient_scope: it is not enough."""
    headers = {"Authorization": f"Bearer {IDP.token(role='admin')}"}
    expected = None if path in PUBLIC else Expected(403, error="insufficient_scope")
    check(send(http, method, f"{token.url}{path}", headers), expected)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[_id(*r) for r in ROUTES])
def test_token_mode_refuses_gateway_fields(
    token: Server, http: httpx.Client, method: str, path: str
) -> None:
    """In token mode the gateway's fields are a 400 on every route, even beside a good token."""
    headers = {
        "Authorization": f"Bearer {IDP.token(tenant='tenant-a', role='viewer')}",
        "X-User-Role": "admin",
    }
    response = send(http, method, f"{token.url}{path}", headers)
    check(response, Expected(400))
    assert response.json()["invalid_params"][0]["name"] == "X-User-Role"


# -- two tenants -----------------------------------------------------------------------------

FLAG: Final = {"key": "dark-mode", "enabled": True, "description": "x", "rollout_percentage": 5}


def _flag_seen_by(http: httpx.Client, url: str, headers: dict[str, str]) -> int:
    return http.get(f"{url}/admin/feature-flags/dark-mode", headers=headers).status_code


def test_tenants_are_apart_in_token_mode(token: Server, http: httpx.Client) -> None:
    """A flag one tenant's token created is found with its tokens and not with another's."""
    bearer = {t: {"Authorization": f"Bearer {IDP.token(tenant=t, role='editor')}"} for t in TENANTS}
    created = http.post(f"{token.url}/admin/feature-flags", headers=bearer["tenant-a"], json=FLAG)
    assert created.status_code == 201, created.text
    seen = [_flag_seen_by(http, token.url, bearer[t]) for t in TENANTS]
    assert seen == [200, 404]


def test_tenants_are_apart_in_gateway_mode(
    gateway: Server, http: httpx.Client, csrf: dict[tuple[str, str], str]
) -> None:
    """A flag one tenant created through the gateway is not found by another tenant."""
    fields = {t: {"X-Tenant-Id": t, "X-User-Role": "editor"} for t in TENANTS}
    writer = {**fields["tenant-b"], "X-CSRF-Token": csrf["editor", "tenant-b"]}
    created = http.post(f"{gateway.url}/admin/feature-flags", headers=writer, json=FLAG)
    assert created.status_code == 201, created.text
    seen = [_flag_seen_by(http, gateway.url, fields[t]) for t in TENANTS]
    assert seen == [404, 200]


# -- what the document asks for --------------------------------------------------------------


def _as_documented(
    document: dict[str, object], method: str, template: str, credentials: dict[str, str]
) -> dict[str, str]:
    """The header fields a client generated from ``document`` sends for the operation:
    each required header parameter from ``credentials``, and the bearer token where the
    operation names its security scheme. A field the document asks for that the caller
    cannot supply fails the test."""
    paths = document["paths"]
    assert isinstance(paths, dict)
    operation = paths[template][method.lower()]
    headers = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter.get("required"):
            assert parameter["name"] in credentials, (method, template, parameter["name"])
            headers[parameter["name"]] = credentials[parameter["name"]]
    if operation.get("security"):
        assert operation["security"] == [{"bearer": []}]
        headers["Authorization"] = credentials["Authorization"]
    return headers


def _documented_routes(document: dict[str, object]) -> list[tuple[str, str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return [
        (method.upper(), template, re.sub(r"\{[^}]+\}", "1", template))
        for template, operations in paths.items()
        for method in operations
    ]


def test_a_client_of_the_token_mode_document_is_let_in(token: Server, http: httpx.Client) -> None:
    """A client that sends what the served document asks for, and nothing else, gets
    past identity on every route in token mode, and the document names the bearer token
    on every route that refuses a request without one."""
    document = http.get(f"{token.url}/openapi.json").json()
    credentials = {"Authorization": f"Bearer {IDP.token(tenant='tenant-a', role='admin')}"}
    for method, template, path in _documented_routes(document):
        headers = _as_documented(document, method, template, credentials)
        check(send(http, method, f"{token.url}{path}", headers), None)
        assert ("Authorization" in headers) is (path not in PUBLIC), (method, template)


def test_a_client_of_the_gateway_mode_document_is_let_in(
    gateway: Server, http: httpx.Client, csrf: dict[tuple[str, str], str]
) -> None:
    """A client that sends what the served document asks for in gateway mode gets past
    identity on every route, and the document asks for the fields on every route that
    refuses a request without them."""
    document = http.get(f"{gateway.url}/openapi.json").json()
    credentials = {
        "X-Tenant-Id": "tenant-a",
        "X-User-Role": "admin",
        "X-CSRF-Token": csrf["admin", "tenant-a"],
    }
    for method, template, path in _documented_routes(document):
        headers = _as_documented(document, method, template, credentials)
        check(send(http, method, f"{gateway.url}{path}", headers), None)
        assert ("X-Tenant-Id" in headers) is (path not in PUBLIC), (method, template)
