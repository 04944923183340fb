"""Settings: the OPTIMIST_* variables, their defaults, and what they refuse."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from optimist.peers import TrustedPeers
from optimist.service.settings import (
    DEFAULT_BUSY_TIMEOUT,
    ENVIRONMENT,
    InvalidSetting,
    Settings,
    default_database_url,
    default_node_id,
    redacted_url,
)
from optimist.sqlalchemy.engine import SQLITE_BUSY_TIMEOUT
from optimist.vclock import VectorClock

ORIGINS = ENVIRONMENT["cors_origins"]


def test_defaults_are_sqlite_in_the_working_directory_and_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no variables: optimist.db here, a node named after the host, demo data on."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_environment({})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'optimist.db'}"
    assert settings.node_id == default_node_id()
    assert settings.demo_data is True
    assert settings.secret_key is None


def test_default_node_id_is_a_valid_clock_node() -> None:
    """Whatever the host is called, the default node name fits in a vector clock."""
    assert VectorClock({default_node_id(): 1})


def test_environment_round_trips() -> None:
    """to_environment gives the variables from which another process rebuilds the same."""
    settings = Settings(
        database_url=default_database_url(Path("/srv")),
        node_id="edge-1",
        secret_key="k",
        demo_data=False,
        cursor_max_age=timedelta(minutes=5),
        csrf_max_age=timedelta(minutes=10),
        head_timeout=1.5,
        body_timeout=20,
        idle_timeout=0.25,
        max_connections=7,
        ready_timeout=3,
        busy_timeout=2.5,
        cors_origins=("https://app.example.com", "http://localhost:5173", "*"),
        trusted_peers=TrustedPeers.parse("10.0.0.5,192.168.0.0/16,2001:db8::/32"),
        auth="token",
        jwt_keys=Path("/etc/optimist/jwks.json"),
        jwt_audience="api",
        jwt_issuer="https://idp.example",
        jwt_leeway=timedelta(seconds=12.5),
        tenant_claim="org",
        role_claim="https://example.com/role",
        require_identity=True,
    )
    assert Settings.from_environment(settings.to_environment()) == settings


@pytest.mark.parametrize("node_id", ["has space", "x" * 65, "é"], ids=["space", "long", "accent"])
def test_node_id_outside_the_clock_alphabet_is_refused(node_id: str) -> None:
    """A node id no vector clock can carry is refused at start, not at the first write."""
    with pytest.raises(InvalidSetting, match="node_id"):
        Settings(database_url="sqlite+aiosqlite://", node_id=node_id)


@pytest.mark.parametrize("variable", ["OPTIMIST_CURSOR_MAX_AGE", "OPTIMIST_CSRF_MAX_AGE"])
@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_bad_max_ages_are_refused(variable: str, value: str) -> None:
    """Token ages must be positive numbers of seconds."""
    with pytest.raises(ValueError):  # noqa: PT011 - float() and the check say different things
        Settings.from_environment({variable: value, "OPTIMIST_NODE_ID": "n"})


def test_server_limits_have_their_documented_defaults() -> None:
    """Unset, the head, body, idle, ready and busy timeouts and the cap are docs/service.md's."""
    settings = Settings.from_environment({"OPTIMIST_NODE_ID": "n"})
    assert (
        settings.head_timeout,
        settings.body_timeout,
        settings.idle_timeout,
        settings.max_connections,
        settings.ready_timeout,
        settings.busy_timeout,
    ) == (10, 30, 5, 1000, 2, 30)


def test_default_busy_timeout_is_the_library_default() -> None:
    """The default busy timeout, written out to keep SQLAlchemy from --help, is the library's."""
    assert DEFAULT_BUSY_TIMEOUT == SQLITE_BUSY_TIMEOUT


@pytest.mark.parametrize(
    "variable",
    [
        "OPTIMIST_HEAD_TIMEOUT",
        "OPTIMIST_BODY_TIMEOUT",
        "OPTIMIST_IDLE_TIMEOUT",
        "OPTIMIST_READY_TIMEOUT",
        "OPTIMIST_BUSY_TIMEOUT",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_bad_timeouts_are_refused(variable: str, value: str) -> None:
    """A timeout must be a positive, finite number of seconds."""
    with pytest.raises(ValueError):  # noqa: PT011 - float() and the check say different things
        Settings.from_environment({variable: value, "OPTIMIST_NODE_ID": "n"})


@pytest.mark.parametrize("value", ["0", "-3", "1.5"])
def test_bad_connection_caps_are_refused(value: str) -> None:
    """The connection cap is a whole number of at least one."""
    with pytest.raises(ValueError):  # noqa: PT011 - int() and the check say different things
        Settings.from_environment({"OPTIMIST_MAX_CONNECTIONS": value, "OPTIMIST_NODE_ID": "n"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPTIMIST_HEAD_TIMEOUT", "soon"),
        ("OPTIMIST_BUSY_TIMEOUT", "0"),
        ("OPTIMIST_CSRF_MAX_AGE", "-5"),
        ("OPTIMIST_MAX_CONNECTIONS", "many"),
        ("OPTIMIST_CORS_ORIGINS", "example.com"),
        ("OPTIMIST_DATABASE_URL", "mysql://db/app"),
    ],
    ids=["timeout", "busy-timeout", "max-age", "cap", "origin", "database"],
)
def test_a_refused_variable_is_named_by_its_setting(variable: str, value: str) -> None:
    """A refusal names the setting whose variable was wrong, so that it can be reported."""
    with pytest.raises(InvalidSetting) as refused:
        Settings.from_environment({variable: value, "OPTIMIST_NODE_ID": "n"})
    assert ENVIRONMENT[refused.value.name] == variable


def test_repr_hides_the_password_and_the_secret_key() -> None:
    """Settings in a log line or a traceback show neither the password nor the key."""
    settings = Settings(
        database_url="postgresql://app:pa55word@db.example/app",
        node_id="n",
        secret_key="signing-secret",
    )
    shown = repr(settings)
    assert "pa55word" not in shown
    assert "signing-secret" not in shown
    assert "postgresql+asyncpg://app:***@db.example/app" in shown


def test_an_unparsable_url_is_not_shown() -> None:
    """A URL SQLAlchemy cannot read may still hold a password: it is never echoed."""
    assert redacted_url("postgresql://app:pa55word@db:port/app") == "<unparsable URL>"
    assert redacted_url("pa55word") == "<unparsable URL>"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://app@db/app", "postgresql+asyncpg://app@db/app"),
        ("postgresql://app@db:6432/app", "postgresql+asyncpg://app@db:6432/app"),
        ("postgresql+asyncpg://app@db/app", "postgresql+asyncpg://app@db/app"),
        ("sqlite:///srv/optimist.db", "sqlite+aiosqlite:///srv/optimist.db"),
        ("sqlite+aiosqlite:///optimist.db", "sqlite+aiosqlite:///optimist.db"),
        ("postgres://app:p%40ss%2Fw@db/app", "postgresql+asyncpg://app:p%40ss%2Fw@db/app"),
    ],
    ids=["postgres", "postgresql", "asyncpg", "sqlite", "aiosqlite", "encoded-password"],
)
def test_database_url_gets_the_service_driver(given: str, used: str) -> None:
    """A URL naming only the database gets asyncpg or aiosqlite; the rest stays as written."""
    assert Settings(database_url=given, node_id="n").database_url == used


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("optimist.db", "not a database URL"),
        ("postgresql://app@db:five/app", "not a database URL"),
        ("mysql://app@db/app", "mysql:// is not a database the service runs on"),
        ("sqlite+pysqlite:///optimist.db", "the driver pysqlite is not one"),
        ("postgresql+psycopg2://app@db/app", "the driver psycopg2 is not one"),
    ],
    ids=["path", "port", "mysql", "sync-sqlite", "sync-postgres"],
)
def test_database_url_the_service_cannot_use_is_refused(url: str, problem: str) -> None:
    """Not a URL, another database, or another driver: refused, saying which."""
    with pytest.raises(InvalidSetting) as refused:
        Settings(database_url=url, node_id="n")
    assert refused.value.name == "database_url"
    assert refused.value.problem.startswith(problem)


READ = ENVIRONMENT["read_database_url"]


def test_reads_use_the_database_by_default() -> None:
    """Without the variable there is no read database."""
    assert Settings.from_environment({"OPTIMIST_NODE_ID": "n"}).read_database_url is None


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://app@replica/app", "postgresql+asyncpg://app@replica/app"),
        ("postgresql://app@replica:5433/app", "postgresql+asyncpg://app@replica:5433/app"),
        ("postgresql+asyncpg://app@replica/app", "postgresql+asyncpg://app@replica/app"),
    ],
    ids=["postgres", "postgresql", "asyncpg"],
)
def test_read_database_url_is_read_and_gets_the_driver(given: str, used: str) -> None:
    """OPTIMIST_READ_DATABASE_URL names the replica, completed with asyncpg."""
    environment = {ENVIRONMENT["database_url"]: "postgresql://app@db/app", READ: given}
    settings = Settings.from_environment({**environment, "OPTIMIST_NODE_ID": "n"})
    assert settings.read_database_url == used


@pytest.mark.parametrize(
    ("database", "read", "problem"),
    [
        ("postgresql://app@db/app", "sqlite:///replica.db", "SQLite has no replica"),
        ("sqlite:///optimist.db", "postgresql://app@replica/app", "a replica needs a PostgreSQL"),
        ("postgresql://app@db/app", "mysql://app@replica/app", "mysql:// is not a database"),
        ("postgresql://app@db/app", "postgresql://app@replica/app?pooler=x", "pooler=x is not"),
    ],
    ids=["sqlite-replica", "sqlite-primary", "mysql", "pooler"],
)
def test_read_database_url_the_service_cannot_use_is_refused(
    database: str, read: str, problem: str
) -> None:
    """A read URL that is no PostgreSQL replica of a PostgreSQL database is refused."""
    with pytest.raises(InvalidSetting) as refused:
        Settings(database_url=database, node_id="n", read_database_url=read)
    assert refused.value.name == "read_database_url"
    assert refused.value.problem.startswith(problem)


def test_repr_hides_the_read_databases_password() -> None:
    """The read URL is shown without its password, like the database URL."""
    settings = Settings(
        database_url="postgresql://app@db/app",
        node_id="n",
        read_database_url="postgresql://app:pa55word@replica/app",
    )
    assert "pa55word" not in repr(settings)
    assert "postgresql+asyncpg://app:***@replica/app" in repr(settings)


def test_an_unset_read_database_url_is_written_empty() -> None:
    """Another process given the settings' variables ignores an inherited read URL."""
    written = Settings(database_url="postgresql://app@db/app", node_id="n").to_environment()
    inherited = {READ: "postgresql://app@elsewhere/app", **written}
    assert Settings.from_environment(inherited).read_database_url is None


def test_cors_is_off_by_default() -> None:
    """Without the variable no origin is allowed."""
    assert Settings.from_environment({"OPTIMIST_NODE_ID": "n"}).cors_origins == ()


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example,http://localhost:5173",
        "https://a.example http://localhost:5173",
        " https://a.example ,\thttp://localhost:5173 ,",
        "https://a.example,https://a.example,http://localhost:5173",
    ],
    ids=["commas", "spaces", "both", "repeated"],
)
def test_cors_variable_separates_origins_by_commas_or_spaces(value: str) -> None:
    """OPTIMIST_CORS_ORIGINS: origins separated by commas or spaces, each kept once."""
    settings = Settings.from_environment({ORIGINS: value, "OPTIMIST_NODE_ID": "n"})
    assert settings.cors_origins == ("https://a.example", "http://localhost:5173")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("*", "*"),
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("https://a.example:443", "https://a.example"),
        ("http://a.example:80", "http://a.example"),
        ("http://a.example:8443", "http://a.example:8443"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("app://local-client", "app://local-client"),
    ],
    ids=["any", "case", "https-default", "http-default", "port", "ipv4", "ipv6", "scheme"],
)
def test_cors_origin_is_kept_as_browsers_send_it(given: str, kept: str) -> None:
    """Origins are lowercased and lose a default port, as in the Origin header field."""
    settings = Settings(database_url="sqlite://", node_id="n", cors_origins=(given,))
    assert settings.cors_origins == (kept,)


@pytest.mark.parametrize(
    "origin",
    [
        "https://a.example/",
        "https://a.example/app",
        "a.example",
        "https://user@a.example",
        "https://a.example:0",
        "https://a.example:65536",
        "https://a.example?x=1",
        "https://",
        "null",
    ],
    ids=[
        "slash",
        "path",
        "no-scheme",
        "userinfo",
        "port-0",
        "port-high",
        "query",
        "no-host",
        "null",
    ],
)
def test_cors_origin_that_is_no_origin_is_refused(origin: str) -> None:
    """Only scheme://host[:port] or * is an origin."""
    with pytest.raises(InvalidSetting, match="is not an origin") as refused:
        Settings(database_url="sqlite://", node_id="n", cors_origins=(origin,))
    assert refused.value.name == "cors_origins"


def test_no_origins_survive_an_inherited_variable() -> None:
    """Settings without origins write an empty variable: a worker adds none it inherited."""
    settings = Settings(database_url="sqlite://", node_id="n")
    inherited = {ORIGINS: "https://stale.example", **settings.to_environment()}
    assert Settings.from_environment(inherited).cors_origins == ()


PEERS = ENVIRONMENT["trusted_peers"]


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_loopback_is_trusted_by_default(value: str | None) -> None:
    """Without a value only loopback is trusted: the gateway on this machine."""
    env = {"OPTIMIST_NODE_ID": "n", **({PEERS: value} if value is not None else {})}
    assert Settings.from_environment(env).trusted_peers == TrustedPeers.LOOPBACK


def test_trusted_peers_variable_is_parsed() -> None:
    """OPTIMIST_TRUSTED_PEERS: addresses and networks separated by commas."""
    settings = Settings.from_environment({PEERS: "10.0.0.5, 10.1.0.0/16", "OPTIMIST_NODE_ID": "n"})
    assert str(settings.trusted_peers) == "10.0.0.5/32,10.1.0.0/16"


@pytest.mark.parametrize("value", ["10.0.0.1/8", "gateway.internal", "*,10.0.0.5", ","], ids=str)
def test_bad_trusted_peers_are_refused(value: str) -> None:
    """What is not addresses and networks, or * alone, is refused, named as the setting."""
    with pytest.raises(InvalidSetting) as refused:
        Settings.from_environment({PEERS: value, "OPTIMIST_NODE_ID": "n"})
    assert refused.value.name == "trusted_peers"


def test_identity_defaults_are_the_gateways() -> None:
    """Unset, identity comes from the gateway, only the admin API needs it, and a token's
    tenant and role claims would be tenant and role."""
    settings = Settings.from_environment({"OPTIMIST_NODE_ID": "n"})
    assert (settings.auth, settings.require_identity) == ("gateway", False)
    assert (settings.tenant_claim, settings.role_claim) == ("tenant", "role")
    assert settings.jwt_leeway == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("jwt_keys", "OPTIMIST_JWT_KEYS"),
        ("jwt_audience", "OPTIMIST_JWT_AUDIENCE"),
        ("jwt_issuer", "OPTIMIST_JWT_ISSUER"),
    ],
    ids=["keys", "audience", "issuer"],
)
def test_token_mode_needs_keys_audience_and_issuer(missing: str, variable: str) -> None:
    """Token mode without its keys, audience or issuer is refused, naming the one missing."""
    env = {
        "OPTIMIST_NODE_ID": "n",
        "OPTIMIST_AUTH": "token",
        "OPTIMIST_JWT_KEYS": "keys.pem",
        "OPTIMIST_JWT_AUDIENCE": "api",
        "OPTIMIST_JWT_ISSUER": "https://idp.example",
    }
    del env[variable]
    with pytest.raises(InvalidSetting, match="token mode needs it") as refused:
        Settings.from_environment(env)
    assert refused.value.name == missing


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OPTIMIST_AUTH", "cookie"), ("OPTIMIST_JWT_LEEWAY", "-1"), ("OPTIMIST_JWT_LEEWAY", "nan")],
    ids=["unknown-mode", "negative-leeway", "nan-leeway"],
)
def test_bad_identity_settings_are_refused(variable: str, value: str) -> None:
    """An unknown mode, or a leeway that is no number of seconds from 0, is refused."""
    with pytest.raises(InvalidSetting):
        Settings.from_environment({"OPTIMIST_NODE_ID": "n", variable: value})
