"""Read-modify-write clients that count, and what every answer they got was.

Each :class:`CounterClient` is a thread that increments one member of a project's
``metadata`` over HTTP, as a careful client would: GET the project, PUT the metadata
with its own member one higher and ``If-Match`` naming the ETag it read. On 412 it
reads again; on 503 it waits ``Retry-After`` and sends the same PUT again; on another
5xx or a transport error it sends the same PUT again too: a conditional write is safe
to resend, because at most one of the copies can match the ETag.

Several clients on one project race each other through If-Match, each on its own
member, so the final value of a member counts exactly the writes of its client that
the database applied. A client counts the writes it saw acknowledged (a 2xx) and those
whose fate it cannot know (the answer was lost, or was a 5xx after the request may have
reached the database, and no resend was acknowledged): if no update is ever lost, the
final value lies between the acknowledged count and that plus the unknown ones.

Every answer is kept as an :class:`Answer`, so a test can say which ones a fault may
cause (:func:`unacceptable`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from tests.support.servers import wait_until

__all__ = [
    "LONGEST_PAUSE",
    "PROBLEM",
    "REQUEST_TIMEOUT",
    "Answer",
    "CounterClient",
    "Load",
    "ask",
    "counting",
    "final_counts",
    "new_project",
    "server_errors",
    "since",
    "tally",
    "unacceptable",
]

PROBLEM: Final = "application/problem+json"
#: Seconds any one request may take before the client gives up on it: a bound only a
#: hung server reaches (a SQLite write may wait out a 30 s busy timeout first).
REQUEST_TIMEOUT: Final = 60.0
#: The longest Retry-After a client honours in full, in seconds.
LONGEST_PAUSE: Final = 5.0


@dataclass(frozen=True, slots=True)
class Answer:
    """One request and what came back: a status, or the transport error instead."""

    method: str
    path: str
    status: int | None
    error: str | None = None
    retry_after: str | None = None
    content_type: str | None = None
    #: The body's ``status`` member, when the body is a JSON object that has one.
    problem_status: int | None = None
    #: When the request was sent (``time.monotonic()``), and how long its answer took.
    started: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def unavailable(self) -> bool:
        """A 503 as RFC 9110 §15.6.4 and RFC 9457 want it: Retry-After, problem+json."""
        return (
            self.status == 503
            and self.retry_after is not None
            and self.retry_after.strip().isdigit()
            and self.content_type == PROBLEM
            and self.problem_status == 503
        )


def ask(
    http: httpx.Client, method: str, path: str, **options: Any
) -> tuple[Answer, httpx.Response | None]:
    """Send one request; the :class:`Answer`, and the response if there was one."""
    started = time.monotonic()
    try:
        response = http.request(method, path, **options)
    except httpx.TransportError as error:
        seconds = time.monotonic() - started
        failed = Answer(method, path, None, type(error).__name__, started=started, seconds=seconds)
        return failed, None
    seconds = time.monotonic() - started
    problem_status = None
    if response.headers.get("content-type") == PROBLEM:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("status"), int):
            problem_status = body["status"]
    answer = Answer(
        method,
        path,
        response.status_code,
        retry_after=response.headers.get("retry-after"),
        content_type=response.headers.get("content-type"),
        problem_status=problem_status,
        started=started,
        seconds=seconds,
    )
    return answer, response


def unacceptable(answers: list[Answer], *, allowed: frozenset[int] = frozenset()) -> list[Answer]:
    """The answers a database fault must never cause: anything but a 2xx, a 412, a status
    in ``allowed``, or a 503 with Retry-After and a problem+json body (a 500, a 503
    without Retry-After, a dropped connection, a timeout)."""
    return [
        answer
        for answer in answers
        if not (answer.ok or answer.status == 412 or answer.status in allowed or answer.unavailable)
    ]


def server_errors(answers: list[Answer]) -> list[Answer]:
    """The answers that are a 5xx other than a 503 with Retry-After and a problem body."""
    return [
        answer
        for answer in answers
        if answer.status is not None and answer.status >= 500 and not answer.unavailable
    ]


def since(answers: list[Answer], moment: float) -> list[Answer]:
    """The answers to requests sent after ``moment`` (``time.monotonic()``)."""
    return [answer for answer in answers if answer.started > moment]


def tally(answers: list[Answer]) -> Counter[str]:
    """How many answers of each status (or transport error) there were."""
    return Counter(
        str(answer.status) if answer.status is not None else str(answer.error) for answer in answers
    )


def new_project(base_url: str, name: str = "counters") -> str:
    """Create a project with empty metadata; its path."""
    response = httpx.post(f"{base_url}/projects", json={"name": name}, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 201, response.text
    location: str = response.headers["Location"]
    return location


def final_counts(base_url: str, path: str) -> dict[str, int]:
    """The project's metadata as the database holds it now."""
    response = httpx.get(f"{base_url}{path}", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    metadata: dict[str, int] = response.json()["result"]["metadata"]
    return metadata


@dataclass
class CounterClient:
    """One read-modify-write client: it increments ``metadata[member]`` of ``path``."""

    base_url: str
    path: str
    member: str
    #: Seconds any one of its requests may take.
    timeout: float = REQUEST_TIMEOUT
    #: Writes answered 2xx.
    acknowledged: int = 0
    #: Writes whose fate is unknown: answer lost (or a 5xx after sending), none acknowledged.
    unknown: int = 0
    answers: list[Answer] = field(default_factory=list)
    #: What stopped the client early, if something did (a test fails with it).
    failure: BaseException | None = None

    def run(self, stop: threading.Event) -> None:
        """Increment until ``stop`` is set; an unexpected error is kept in ``failure``."""
        try:
            self._increment(stop)
        except BaseException as error:
            self.failure = error
            raise

    def _increment(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            while not stop.is_set():
                answer, response = ask(http, "GET", self.path)
                self.answers.append(answer)
                if response is None or response.status_code != 200:
                    self._pause(answer)
                    continue
                metadata = response.json()["result"]["metadata"]
                wanted = {**metadata, self.member: metadata.get(self.member, 0) + 1}
                self._write(http, stop, wanted, response.headers["ETag"])

    def _write(
        self, http: httpx.Client, stop: threading.Event, metadata: Mapping[str, Any], etag: str
    ) -> None:
        """PUT ``metadata`` if the project is still at ``etag``; resent while its fate is
        unknown, as a conditional write may be."""
        uncertain = False
        while not stop.is_set():
            answer, _ = ask(
                http, "PUT", self.path, json={"metadata": metadata}, headers={"If-Match": etag}
            )
            self.answers.append(answer)
            if answer.ok:
                self.acknowledged += 1
                return
            if answer.status is None:
                # A refused connection sent nothing; anything else may have been received.
                uncertain = uncertain or answer.error not in {"ConnectError", "ConnectTimeout"}
            elif answer.status >= 500:
                # A 503, or an error answered after the database may have applied it.
                uncertain = True
            else:  # 412: another write got in first, or our own lost one did (or a 4xx)
                break
            self._pause(answer)
        if uncertain:
            self.unknown += 1

    @staticmethod
    def _pause(answer: Answer) -> None:
        if answer.retry_after is not None and answer.retry_after.strip().isdigit():
            time.sleep(min(float(answer.retry_after), LONGEST_PAUSE))
        elif answer.error in {"ConnectError", "ConnectTimeout"}:
            time.sleep(0.2)  # nothing listens: a server starting again takes seconds
        elif answer.status is None:
            time.sleep(0.05)


@dataclass
class Load:
    """Counter clients running in threads: their totals, and a way to wait for progress."""

    clients: list[CounterClient]

    @property
    def acknowledged(self) -> int:
        return sum(client.acknowledged for client in self.clients)

    @property
    def unknown(self) -> int:
        return sum(client.unknown for client in self.clients)

    def answers(self) -> list[Answer]:
        """Every answer every client got so far."""
        return [answer for client in self.clients for answer in list(client.answers)]

    def summary(self, final: Mapping[str, int]) -> str:
        """The figures of a run: answers by status, then each client's counts."""
        clients = ", ".join(
            f"{client.member}: {client.acknowledged} acknowledged, {client.unknown} unknown, "
            f"{final.get(client.member, 0)} final"
            for client in self.clients
        )
        return f"answers {dict(tally(self.answers()))}; {clients}"

    def check(self) -> None:
        """Fail with the first client's unexpected error, if one stopped on one."""
        for client in self.clients:
            if client.failure is not None:
                raise AssertionError(f"client {client.member} failed") from client.failure

    def miscounted(self, final: Mapping[str, int]) -> list[str]:
        """The members whose ``final`` value is not between the writes acknowledged to
        their client and those plus the ones of unknown fate: a lost (or doubled) update."""
        return [
            f"{client.member}: {client.acknowledged} acknowledged, {client.unknown} unknown, "
            f"{final.get(client.member, 0)} in the database"
            for client in self.clients
            if not client.acknowledged
            <= final.get(client.member, 0)
            <= client.acknowledged + client.unknown
        ]

    def progress(self, writes: int, *, timeout: float = 120) -> None:
        """Wait until ``writes`` more writes were acknowledged than when called."""
        target = self.acknowledged + writes

        def reached() -> bool:
            self.check()
            return self.acknowledged >= target

        wait_until(reached, timeout=timeout, what=f"{writes} more acknowledged writes")


@contextmanager
def counting(
    base_url: str | Sequence[str],
    path: str,
    *,
    clients: int = 16,
    timeout: float = REQUEST_TIMEOUT,
) -> Iterator[Load]:
    """``clients`` counter clients on the project at ``path``, each on its own member
    (``c0``, ``c1``, …), running until the ``with`` ends (each finishes its request).

    Given several base URLs (app hosts), client ``n`` sends to the ``n``-th, round robin.
    ``timeout`` bounds each request (its loss makes the write's fate unknown).
    """
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    load = Load(
        [
            CounterClient(urls[number % len(urls)], path, f"c{number}", timeout=timeout)
            for number in range(clients)
        ]
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=client.run, args=(stop,), name=client.member, daemon=True)
        for client in load.clients
    ]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2 * max(timeout, REQUEST_TIMEOUT))
        alive = [thread.name for thread in threads if thread.is_alive()]
        assert not alive, f"clients {alive} did not stop"
    load.check()
