"""Reading the request fields of an idempotent write: the parsing and the canonical forms.

:func:`parse_strings` reads a Structured Field (RFC 9651) line as the members of an
sf-list of Items (§4.2, §4.2.1), so that two field lines an intermediary combined into
one (RFC 9110 §5.3) read as the two members they were. Each member must be a String
(§4.2.5); its parameters (§4.2.3.2) are parsed in full, because a malformed one fails the
whole field, and then dropped. Every failure raises the error class the caller names,
with the position in the line where the grammar broke.

:func:`tag_list` and :func:`media_type` give the forms in which a fingerprint compares
If-Match / If-None-Match and Content-Type: one form for the values that certainly mean
the same, the value as sent for any other.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Final, Protocol

from optimist.errors import InvalidEntityTag
from optimist.etag import format_list, parse_list

__all__ = ["FieldError", "lines", "media_type", "parse_strings", "serialize_string", "tag_list"]

_LCALPHA = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGIT = frozenset("0123456789")
_ALPHA = _LCALPHA | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# §3.1.2: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
_KEY_START = _LCALPHA | {"*"}
_KEY = _LCALPHA | _DIGIT | frozenset("_-.*")
# §3.3.4: sf-token = ( ALPHA / "*" ) *( tchar / ":" / "/" ); tchar from RFC 9110 §5.6.2.
_TOKEN = _ALPHA | _DIGIT | frozenset("!#$%&'*+-.^_`|~:/")
_BASE64 = _ALPHA | _DIGIT | frozenset("+/=")
_LCHEX = frozenset("0123456789abcdef")
# RFC 9110 §8.3.1, §5.6.6: media-type = type "/" subtype *( OWS ";" OWS [ parameter ] )
_TCHARS: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED: Final = r'"((?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*)"'
_PARAM: Final = rf"[ \t]*;[ \t]*(?:({_TCHARS})=(?:({_TCHARS})|{_QUOTED}))?"
_MEDIA_RE: Final = re.compile(rf"({_TCHARS})/({_TCHARS})((?:{_PARAM})*)")
_PARAM_RE: Final = re.compile(_PARAM)
_TCHARS_RE: Final = re.compile(_TCHARS)


class FieldError(Protocol):
    """The error class a parse raises: ``(field, value, reason, position)``."""

    def __call__(self, field: str, value: str, reason: str, position: int) -> Exception: ...


def _printable(ch: str) -> bool:
    # VCHAR / SP: what sf-string and sf-displaystring carry unescaped.
    return " " <= ch <= "~"


class _Scanner:
    __slots__ = ("error", "field", "pos", "text")

    def __init__(self, text: str, field: str, error: FieldError) -> None:
        self.text = text
        self.field = field
        self.error = error
        self.pos = 0

    def fail(self, reason: str) -> Exception:
        return self.error(self.field, self.text, reason, self.pos)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def run(self, chars: frozenset[str]) -> None:
        while self.peek() in chars:
            self.pos += 1

    def string(self) -> str:
        """§4.2.5, at the opening DQUOTE."""
        self.pos += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise self.fail("the sf-string is not closed")
            if ch == "\\":
                self.pos += 1
                if self.peek() not in {'"', "\\"}:
                    raise self.fail('only \\" and \\\\ may be escaped in an sf-string')
                ch = self.peek()
            elif ch == '"':
                self.pos += 1
                return "".join(out)
            elif not _printable(ch):
                raise self.fail(f"character {ch!r} is not printable ASCII")
            out.append(ch)
            self.pos += 1

    def number(self) -> bool:
        """§4.2.4; whether the number was a Decimal."""
        if self.peek() == "-":
            self.pos += 1
        if self.peek() not in _DIGIT:
            raise self.fail("expected a digit")
        start, dot = self.pos, -1
        while (ch := self.peek()) in _DIGIT or (ch == "." and dot < 0):
            if ch == "." and self.pos - start > 12:
                raise self.fail("a Decimal has at most 12 integer digits")
            dot = self.pos if ch == "." else dot
            if self.pos - start >= (16 if dot >= 0 else 15):
                raise self.fail("the number is too long")
            self.pos += 1
        if dot >= 0 and not 0 < self.pos - dot - 1 <= 3:
            self.pos = min(self.pos, dot + 4)  # at the fourth fractional digit, if any
            raise self.fail("a Decimal has one to three fractional digits")
        return dot >= 0

    def byte_sequence(self) -> None:
        """§4.2.7, at the opening colon."""
        end = self.text.find(":", self.pos + 1)
        if end < 0:
            raise self.fail("the Byte Sequence is not closed")
        content = self.text[self.pos + 1 : end]
        for offset, ch in enumerate(content):
            if ch not in _BASE64:
                self.pos += 1 + offset
                raise self.fail(f"character {ch!r} is not base64")
        bare = content.rstrip("=")
        if "=" in bare:
            raise self.fail("'=' can only pad the end of a Byte Sequence")
        try:
            # Padding is synthesised where it is missing, as §4.2.7 asks.
            base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
        except binascii.Error:
            raise self.fail("the Byte Sequence is not base64") from None
        self.pos = end + 1

    def display_string(self) -> None:
        """§4.2.10, at the percent sign."""
        self.pos += 1
        if self.peek() != '"':
            raise self.fail("expected '\"' after '%'")
        self.pos += 1
        octets = bytearray()
        while True:
            ch = self.peek()
            if not ch or not _printable(ch):
                raise self.fail("the Display String is not closed with printable ASCII")
            if ch == '"':
                self.pos += 1
                try:
                    octets.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.fail("the Display String is not UTF-8") from None
                return
            if ch == "%":
                digits = self.text[self.pos + 1 : self.pos + 3]
                if len(digits) != 2 or not set(digits) <= _LCHEX:
                    raise self.fail("'%' must be followed by two lowercase hex digits")
                octets.append(int(digits, 16))
                self.pos += 3
            else:
                octets.append(ord(ch))
                self.pos += 1

    def bare_item(self) -> None:
        """§4.2.3.1, for a parameter's value: checked, then dropped."""
        ch = self.peek()
        if ch == "-" or ch in _DIGIT:
            self.number()
        elif ch == '"':
            self.string()
        elif ch == "*" or ch in _ALPHA:
            self.pos += 1
            self.run(_TOKEN)
        elif ch == ":":
            self.byte_sequence()
        elif ch == "?":
            self.pos += 1
            if self.peek() not in {"0", "1"}:
                raise self.fail("a Boolean is ?0 or ?1")
            self.pos += 1
        elif ch == "@":
            self.pos += 1
            if self.number():
                raise self.fail("a Date is an Integer")
        elif ch == "%":
            self.display_string()
        else:
            raise self.fail("expected a parameter value")

    def parameters(self) -> None:
        """§4.2.3.2: ``*( ";" *SP key [ "=" bare-item ] )``."""
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            if self.peek() not in _KEY_START:
                raise self.fail("a parameter name starts with a lowercase letter or '*'")
            self.run(_KEY)
            if self.peek() == "=":
                self.pos += 1
                self.bare_item()


def parse_strings(text: str, *, field: str, error: FieldError) -> list[tuple[int, str]]:
    """(position, value) of each member of the line, all Strings; none for an empty line."""
    scanner = _Scanner(text, field, error)
    scanner.skip(" ")  # §4.2: leading SP is discarded
    members: list[tuple[int, str]] = []
    while scanner.peek():
        start = scanner.pos
        if scanner.peek() != '"':
            raise scanner.fail(f"expected '\"' to open the {field} (an sf-string)")
        members.append((start, scanner.string()))
        scanner.parameters()
        scanner.skip(" \t")  # §4.2.1: OWS around the commas
        if not scanner.peek():
            break
        if scanner.peek() != ",":
            raise scanner.fail(f"unexpected {scanner.peek()!r} after the {field}")
        scanner.pos += 1
        scanner.skip(" \t")
        if not scanner.peek():
            raise scanner.fail("a ',' must be followed by another member")
    return members


def serialize_string(value: str) -> str:
    """§4.1.6: the sf-string of printable ASCII ``value``, with '"' and '\\' escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lines(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """A field's lines: one value, or several, or None when the field is absent."""
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def tag_list(value: str | Sequence[str] | None) -> str | None:
    """An If-Match / If-None-Match in one canonical form, or as sent if it does not parse."""
    field = lines(value)
    if field is None:
        return None
    # RFC 9110 §5.3: the lines of a list field, joined with commas, mean the same; and
    # §5.6.1 makes the OWS and empty members of a list insignificant. Nothing is certain
    # of a value that does not parse (a bare tag means something only by agreement).
    joined = ", ".join(field)
    try:
        return format_list(parse_list(joined))
    except InvalidEntityTag:
        return joined


def media_type(value: str | None) -> str | None:
    """A Content-Type in one canonical form, or as sent if it does not parse."""
    match = None if value is None else _MEDIA_RE.fullmatch(value)
    if match is None:
        return value
    # RFC 9110 §8.3.1: type, subtype and parameter names are case-insensitive; a value
    # means the same as a token or a quoted-string (§5.6.6); charset names are
    # case-insensitive (§8.3.2). Nothing else changes, not even the parameters' order.
    out = f"{match[1]}/{match[2]}".lower()
    for raw_name, token, quoted in _PARAM_RE.findall(match[3]):
        if raw_name:
            name = raw_name.lower()
            text = token or re.sub(r"\\(.)", r"\1", quoted, flags=re.DOTALL)
            text = text.lower() if name == "charset" else text
            out += f"; {name}={text if _TCHARS_RE.fullmatch(text) else serialize_string(text)}"
    return out
