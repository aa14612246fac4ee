"""Actor replies delivered to asyncio: awaiting them never blocks the event loop.

Actors answer through reply callbacks that run on their own threads. Each
callback completes an asyncio future through `call_soon_threadsafe`; pykka
futures are never awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from protocol.errors import ProtocolError


class Replies:
    """The futures actor threads complete for one event loop."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()

    def new(self) -> tuple[asyncio.Future[Any], Callable[[Any], None]]:
        """A future, and the callback (for any thread) that completes it with a result,
        or fails it when handed an exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

        def settle(result: Any) -> None:
            if future.done():  # timed out or closed meanwhile: nobody waits for it
                return
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

        def reply(result: Any) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop has no awaiters left
                loop.call_soon_threadsafe(settle, result)

        return future, reply

    async def wait(self, future: asyncio.Future[Any], timeout_s: float, what: str) -> Any:
        """The future's result within `timeout_s`, else a `timeout` ProtocolError."""
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise ProtocolError("timeout", f"no answer to {what} within {timeout_s:g} s",
                                retry_after_s=1.0) from None

    def fail_all(self, error: ProtocolError) -> None:
        """Fail every future still waiting (the actors that would answer are gone)."""
        for future in list(self._pending):
            if not future.done():
                future.set_exception(error)
