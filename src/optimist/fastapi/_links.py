"""Response links (OpenAPI 3.1 §4.8.20) from a representation's ETag to the conditional
writes of its resource, generated from what the document already declares.

A 2xx whose headers include ETag carries a representation and its entity-tag; the
operations that write that resource with If-Match are the PUT, PATCH and DELETE that
depend on :func:`~optimist.fastapi.conditional`, on the same path, and, for a response
that declares where the created resource is (:data:`LOCATION_EXTENSION`, set by
:func:`~optimist.fastapi.representation_responses`), on that path. Each link passes the
path parameters (from the request's path, or from the response body where the
declaration says so) and ``header.If-Match: $response.header.ETag``, so that a stateful
client (a generated SDK, a fuzzer) can chain a read or a create to a conditional write.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import quote

__all__ = ["LOCATION_EXTENSION", "add_links", "path_parameters"]

#: The member of a response object that says where a created resource is:
#: ``{"path": "/items/{item_id}", "values": {"item_id": "$response.body#/id"}}``.
#: :func:`add_links` reads it and removes it from the document.
LOCATION_EXTENSION: Final = "x-optimist-location"

#: The methods whose operations write a resource under If-Match.
_WRITES: Final = ("put", "patch", "delete")
#: The fields of a Path Item Object that are operations (OpenAPI 3.1 §4.8.9).
_METHODS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_PARAMETER: Final = re.compile(r"\{([^{}]+)\}")
#: OpenAPI 3.1 §4.8.7: the names of links follow those of components.
_NAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_IF_MATCH: Final = {"header.If-Match": "$response.header.ETag"}


def path_parameters(path: str) -> tuple[str, ...]:
    """The names of the template expressions of ``path`` (``/a/{b}`` → ``("b",)``)."""
    return tuple(_PARAMETER.findall(path))


def _operations(section: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in section.items():
        for method, operation in item.items():
            if method in _METHODS and isinstance(operation, dict):
                yield path, method, operation


def _carries_etag(status: str, response: Mapping[str, Any]) -> bool:
    headers = response.get("headers", {})
    # RFC 9110 §5.1: field names are case-insensitive.
    return status.startswith("2") and any(name.lower() == "etag" for name in headers)


def _target(
    paths: Mapping[str, Any], path: str, method: str, ids: Counter[str]
) -> tuple[str, dict[str, str]]:
    """The link's name and its reference to ``method path``: the operationId when it is
    unique in the document, a JSON-pointer operationRef otherwise."""
    operation_id = paths[path][method].get("operationId")
    if isinstance(operation_id, str) and ids[operation_id] == 1:
        return _NAME_UNSAFE.sub("_", operation_id), {"operationId": operation_id}
    # RFC 6901 §3 and §6: "~" and "/" escaped, then percent-encoded for a URI fragment.
    pointer = path.replace("~", "~0").replace("/", "~1")
    reference = f"#/paths/{quote(pointer, safe='~')}/{method}"
    return _NAME_UNSAFE.sub("_", f"{method}{path}"), {"operationRef": reference}


def _put(links: dict[str, Any], name: str, link: dict[str, Any]) -> None:
    """Add ``link`` as ``name`` unless it is there already; another link of that name
    (one the application declared) is kept and this one takes a numbered name."""
    candidate, number = name, 1
    while candidate in links and links[candidate] != link:
        number += 1
        candidate = f"{name}_{number}"
    links[candidate] = link


def _location_values(
    where: str, source: str, declared: Mapping[str, Any]
) -> tuple[str, dict[str, str]]:
    """The created resource's path and the runtime expression of each of its parameters:
    the declared one, or the request's own path parameter of that name."""
    target = str(declared["path"])
    values: Mapping[str, str] = declared.get("values", {})
    sent = set(path_parameters(source))
    expressions: dict[str, str] = {}
    for name in path_parameters(target):
        if name in values:
            expressions[name] = values[name]
        elif name in sent:
            expressions[name] = f"$request.path.{name}"
        else:
            raise ValueError(f"{where}: the Location {target} has no value for {{{name}}}")
    return target, expressions


def add_links(schema: dict[str, Any], conditional: set[tuple[str, str]]) -> dict[str, Any]:
    """Link each 2xx that declares ETag to the conditional writes of its resource.

    ``conditional`` holds the (path, method) of the operations that depend on
    :func:`~optimist.fastapi.conditional`. Links the document declares already are kept;
    adding the same links twice changes nothing.
    """
    paths: dict[str, Any] = schema.get("paths", {})
    writes = {
        (path, method)
        for path, method in conditional
        if method in _WRITES and method in paths.get(path, {})
    }
    ids = Counter(
        operation["operationId"]
        for _, _, operation in _operations(paths)
        if isinstance(operation.get("operationId"), str)
    )
    for section in (paths, schema.get("webhooks", {})):
        for path, method, operation in _operations(section):
            for status, response in operation.get("responses", {}).items():
                declared = response.pop(LOCATION_EXTENSION, None)
                if section is not paths or not _carries_etag(str(status), response):
                    continue
                same = {name: f"$request.path.{name}" for name in path_parameters(path)}
                targets = [(path, same)]
                if declared is not None:
                    where = f"{method.upper()} {path} {status}"
                    targets.append(_location_values(where, path, declared))
                for target, values in targets:
                    for write in _WRITES:
                        if (target, write) not in writes:
                            continue
                        name, reference = _target(paths, target, write, ids)
                        link = {
                            **reference,
                            "parameters": {**values, **_IF_MATCH},
                            "description": f"{write.upper()} {target} with If-Match "
                            "set to this response's ETag",
                        }
                        _put(response.setdefault("links", {}), name, link)
    return schema
