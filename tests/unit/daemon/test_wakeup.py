"""The front end's wake-up pipe never loses a wake-up."""

from __future__ import annotations

import queue
import select
import sys
import threading

from daemon.frontend import Wakeup

ITEMS = 20_000


def test_every_queued_item_wakes_the_reader() -> None:
    """A writer queues items and wakes; the reader sleeps on the pipe only.

    If a wake-up were lost (a byte eaten while the flag stayed armed), the reader would
    sleep with items waiting: select times out and the test fails at once.
    """
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    wakeup = Wakeup()
    items: queue.SimpleQueue[int] = queue.SimpleQueue()

    def writer() -> None:
        for item in range(ITEMS):
            items.put(item)
            wakeup.wake()

    thread = threading.Thread(target=writer)
    thread.start()
    taken = 0
    try:
        while taken < ITEMS:
            readable, _, _ = select.select([wakeup.read_fd], [], [], 5.0)
            assert readable or items.empty(), f"items waiting but no wake-up after {taken}"
            wakeup.clear()
            while True:
                try:
                    items.get_nowait()
                except queue.Empty:
                    break
                taken += 1
    finally:
        thread.join()
        wakeup.close()
        sys.setswitchinterval(switch)
    assert taken == ITEMS
