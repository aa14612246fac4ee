"""Replies from actors' threads reach their clients and never leave a request unread.

While the front end's loop sleeps, an actor sends its reply itself; the loop sleeps
on the socket's notification descriptor (ZMQ_FD), which any use of the socket may
consume. While the loop is awake, the reply waits for the loop's next turn. In these
tests the loop's idle timeout is a minute, so a request or reply left waiting for
it fails the test by the client's timeout.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from daemon.frontend import Answer, Frontend
from protocol.client import OrderdClient
from tests.helpers import free_port, wait_until

THROTTLE_S = 0.005
"""ZeroMQ looks at a socket's notifications on a send only when about a millisecond
has passed since it last did; after this long, the reply's send surely looks."""


class LoopGate:
    """The front end's clock: once closed, the loop stops at its first look at the
    clock after `when` holds. The loop looks once it has said it sleeps (replies then
    go at once if none is queued) and before it sends what is queued and polls."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._when: Callable[[], bool] = lambda: False
        self._open = threading.Event()
        self._open.set()

    def __call__(self) -> float:
        if threading.current_thread().name == "frontend" and self._when():
            self.stopped.set()
            self._open.wait(30)
        return time.monotonic()

    def close(self, when: Callable[[], bool]) -> None:
        self._open.clear()
        self._when = when

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def context() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.term()


def test_a_reply_given_while_the_loop_is_busy_reaches_its_client(
        context: zmq.Context[Any]) -> None:
    def answer_from_an_actor(_request: Any, _args: Any, answer: Answer) -> None:
        actor = threading.Thread(target=answer, args=({},))  # the loop is busy here
        actor.start()
        actor.join()

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    frontend = Frontend(context, endpoint, 4096, {"ping": answer_from_an_actor},
                        poll_ms=60_000)
    frontend.start()
    try:
        with OrderdClient(endpoint, context=context, timeout_s=5.0) as client:
            for _ in range(3):
                assert client.call("ping") == {}
    finally:
        frontend.close()


def test_a_reply_given_after_a_queued_one_does_not_overtake_it(
        context: zmq.Context[Any]) -> None:
    """The first reply is queued (the loop is busy in the handler); the second is
    given once the loop has said it sleeps, but before it sent the first."""
    gate = LoopGate()
    held: list[Answer] = []
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    first_answered = threading.Event()
    frontend: Frontend

    def answer_now_from_an_actor(_request: Any, _args: Any, answer: Answer) -> None:
        actor = threading.Thread(target=answer, args=({"first": True},))
        actor.start()
        actor.join()
        first_answered.set()
        # the second request waits before the loop reads on: it is read in this turn
        wait_until(lambda: frontend.socket.poll(0, zmq.POLLIN),
                   "the second request at the socket")

    handlers = {"ping": answer_now_from_an_actor,
                "health": lambda _r, _a, answer: held.append(answer)}
    frontend = Frontend(context, endpoint, 4096, handlers, poll_ms=60_000, clock=gate)
    frontend.start()
    client = OrderdClient(endpoint, context=context, timeout_s=5.0)
    try:
        gate.close(when=lambda: bool(held))
        first = client.send("ping")
        assert first_answered.wait(5), "the first request never reached its handler"
        second = client.send("health")
        assert gate.stopped.wait(5), "the loop never stopped after reading both"
        held[0]({"second": True})  # from a thread that is not the loop's
        gate.open()
        assert [client.receive()["id"], client.receive()["id"]] == [first, second]
    finally:
        gate.open()
        client.close()
        frontend.close()


def test_a_request_whose_signal_a_reply_took_is_still_read(
        context: zmq.Context[Any]) -> None:
    gate = LoopGate()
    held: list[Answer] = []
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    handlers = {"ping": lambda _r, _a, answer: held.append(answer),  # answered later
                "health": lambda _r, _a, answer: answer({})}
    frontend = Frontend(context, endpoint, 4096, handlers, poll_ms=60_000, clock=gate)
    frontend.start()
    first = OrderdClient(endpoint, context=context, timeout_s=5.0)
    second = OrderdClient(endpoint, context=context, timeout_s=5.0)
    try:
        gate.close(when=lambda: bool(held))
        first.send("ping")
        assert gate.stopped.wait(5), "the loop never stopped after reading the request"
        second.send("health")
        _wait_signalled(frontend)
        time.sleep(THROTTLE_S)
        held[0]({})  # as an actor answers, from a thread that is not the loop's
        gate.open()
        assert first.receive()["ok"]
        assert second.receive()["ok"], "the request's signal was taken by the reply"
    finally:
        gate.open()
        first.close()
        second.close()
        frontend.close()


def _wait_signalled(frontend: Frontend) -> None:
    """Until the socket's descriptor says something came (looking does not consume)."""
    readable, _, _ = select.select([frontend.socket.fileno()], [], [], 5.0)
    assert readable, "the second request never reached the socket"
