"""Every response the service's test client receives, checked by httplint.

:func:`check_response` is an httpx response hook: it hands the request and the response,
field lines and content as received, to httplint's linters, and fails the request (an
``AssertionError`` out of the client's call) when httplint notes anything ``BAD`` or
``WARN`` about the response. It is always on for the service's test client
(:func:`tests.support.service.running`), so every test of the service is a conformance
test too. :func:`parsed` turns the bytes a server wrote on a socket into a response that
:func:`complaints` reads, for the responses a real server writes past the application.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

import httpx
from httplint import HttpRequestLinter, HttpResponseLinter, Note, levels

from optimist.problem import MEDIA_TYPE

__all__ = ["ALLOWED", "check_response", "complaints", "parsed"]

#: The levels that fail a response.
FAILING: Final = frozenset({levels.BAD, levels.WARN})


def _problem(response: httpx.Response) -> bool:
    """Whether ``response`` is problem details, which say what was wrong (RFC 9457)."""
    media_type: str | None = response.headers.get("content-type")
    return media_type == MEDIA_TYPE


def _preflight(response: httpx.Response) -> bool:
    """Whether ``response`` answers a CORS preflight (Fetch standard, "CORS-preflight
    request"): OPTIONS with Access-Control-Request-Method."""
    request = response.request
    return request.method == "OPTIONS" and "access-control-request-method" in request.headers


def _inline_styles_only(response: httpx.Response) -> bool:
    """Whether ``response``'s Content-Security-Policy allows inline code in style-src only."""
    policy: str = response.headers.get("content-security-policy", "")
    unsafe = [
        directive.split()[0].lower()
        for directive in policy.split(";")
        if "'unsafe-inline'" in directive.lower().split()
    ]
    return unsafe == ["style-src"]


#: Note ids (httplint's class names) that are wrong about some responses on purpose, each
#: with the responses it is wrong about and why; any other response with them fails.
ALLOWED: Final[Mapping[str, Callable[[httpx.Response], bool]]] = {
    # httplint warns on every 400 ("the server didn't understand the request"), a hint
    # for a client's author, not a fault of the response: RFC 9110 §15.5.1 makes 400 the
    # answer to a malformed request (a missing If-Match, an unparsable cursor), and the
    # problem details say which field was wrong.
    # A refused CORS preflight is Starlette's 400 in plain text, for the browser, which
    # shows no script its body.
    "STATUS_BAD_REQUEST": lambda response: (
        response.status_code == 400 and (_problem(response) or _preflight(response))
    ),
    # The documentation pages allow inline styles (their renderers write styles as they
    # run, which no hash can name; a style runs no code); scripts are held to the
    # service and their hashes.
    "CSP_UNSAFE_INLINE": _inline_styles_only,
    # The answer to a preflight varies on Origin and the three Access-Control-Request
    # fields it answers, as the Fetch standard has it ("varies in 4 ways").
    "VARY_COMPLEX": _preflight,
}


def _all_notes(notes: Iterable[Note]) -> Iterator[Note]:
    """``notes`` and, depth first, the notes each one carries."""
    for note in notes:
        yield note
        yield from _all_notes(note.subnotes)


def _request_linter(request: httpx.Request) -> HttpRequestLinter:
    """httplint's view of ``request``, which some response checks consult."""
    try:
        content = request.content
    except httpx.RequestNotRead:  # a streamed body: nothing a response check reads
        content = b""
    linter = HttpRequestLinter()
    linter.process_request_topline(request.method.encode(), request.url.raw_path, b"HTTP/1.1")
    linter.process_headers(list(request.headers.raw))
    linter.feed_content(content)
    linter.finish_content(True)
    return linter


def complaints(response: httpx.Response) -> list[str]:
    """The BAD and WARN notes httplint makes about ``response`` (read already), one line
    each, except those :data:`ALLOWED` excuses."""
    request = response.request
    linter = HttpResponseLinter(_related=_request_linter(request))
    linter.is_head_response = request.method == "HEAD"
    linter.process_response_topline(
        b"HTTP/1.1", str(response.status_code).encode(), response.reason_phrase.encode()
    )
    linter.process_headers(list(response.headers.raw))
    linter.feed_content(response.content)
    linter.finish_content(True)
    return [
        f"{note.level.name} {type(note).__name__} ({note.subject}): {note.summary}"
        for note in _all_notes(linter.notes)
        if note.level in FAILING and not _allowed(type(note).__name__, response)
    ]


def _allowed(note: str, response: httpx.Response) -> bool:
    """Whether :data:`ALLOWED` excuses ``note`` on ``response``."""
    excused = ALLOWED.get(note)
    return excused is not None and excused(response)


async def check_response(response: httpx.Response) -> None:
    """Fail unless httplint finds nothing BAD or WARN about ``response``."""
    await response.aread()
    found = complaints(response)
    request = response.request
    assert not found, (
        f"{request.method} {request.url.raw_path.decode()} → {response.status_code} "
        f"{dict(response.headers)}:\n  " + "\n  ".join(found)
    )


def parsed(data: bytes, request: httpx.Request) -> httpx.Response:
    """The HTTP/1.1 response in ``data`` (as read off a socket, up to the close), as an
    httpx response to ``request`` for :func:`complaints`: field lines kept as sent."""
    head, _, content = data.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    _version, status, _reason = status_line.split(b" ", 2)
    fields: list[tuple[bytes, bytes]] = []
    for line in lines:
        name, _, value = line.partition(b":")
        fields.append((name, value.strip()))
    return httpx.Response(int(status), headers=fields, content=content, request=request)
