"""optimist.service.setting_values: one setting's value from its text, or InvalidSetting."""

from __future__ import annotations

import pytest

from optimist.service.database_url import InvalidDatabaseURL
from optimist.service.setting_values import (
    EXPECTED,
    InvalidSetting,
    parse_origins,
    parse_trusted_peers,
    whole_number,
)

PORTS = "a port from 1 to 65535"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), (" 8000 ", 8000), ("65535", 65535)],
    ids=["least", "spaces-around", "most"],
)
def test_a_whole_number_in_range_is_read(text: str, value: int) -> None:
    """A whole number from least to most, spaces around it allowed, is its value."""
    assert whole_number("port", text, least=1, most=65535, expected=PORTS) == value


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0", "0 is less than 1"),
        ("65536", "65536 is more than 65535"),
        ("80.5", "'80.5' is not a whole number"),
        ("", "'' is not a whole number"),
    ],
    ids=["below", "above", "fraction", "empty"],
)
def test_a_whole_number_out_of_range_names_the_setting(text: str, problem: str) -> None:
    """Out of range or not whole: InvalidSetting with the setting, the problem, what it takes."""
    with pytest.raises(InvalidSetting) as refused:
        whole_number("port", text, least=1, most=65535, expected=PORTS)
    assert (refused.value.name, refused.value.problem, refused.value.expected) == (
        "port",
        problem,
        PORTS,
    )


def test_origins_are_read_in_order_once_each() -> None:
    """Origins given several times, in any spelling browsers equate, are kept once, in order."""
    texts = ["https://b.example, http://A.example:80", "https://b.example:443 http://a.example"]
    assert parse_origins(texts) == ("https://b.example", "http://a.example")


def test_trusted_peers_that_are_no_address_say_what_the_setting_takes() -> None:
    """An entry that is neither an address nor a network: InvalidSetting with the expectation."""
    with pytest.raises(InvalidSetting) as refused:
        parse_trusted_peers("gateway.internal")
    assert refused.value.name == "trusted_peers"
    assert refused.value.expected == EXPECTED["trusted_peers"]


def test_a_database_url_error_becomes_the_named_settings() -> None:
    """InvalidSetting.of_database_url keeps the URL error's problem, expectation and fix."""
    error = InvalidDatabaseURL("no driver for it", "a postgresql:// URL", "install the extra")
    refused = InvalidSetting.of_database_url(error, "read_database_url")
    assert (refused.name, refused.problem, refused.expected, refused.fix) == (
        "read_database_url",
        "no driver for it",
        "a postgresql:// URL",
        "install the extra",
    )
