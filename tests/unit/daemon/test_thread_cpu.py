"""The stats' CPU by kind of thread: threads named alike are summed, each thread's CPU
is counted, and a thread that ended is gone."""

from __future__ import annotations

import threading
import time

from daemon.thread_cpu import cpu_by_thread

BURN_S = 0.05


def test_threads_named_alike_are_summed_under_one_kind() -> None:
    burned = [threading.Event(), threading.Event()]
    release = threading.Event()

    def burn(done: threading.Event) -> None:
        started = time.thread_time()
        while time.thread_time() - started < BURN_S:
            pass
        done.set()
        release.wait()

    threads = [threading.Thread(target=burn, args=(done,), name=f"Burner-{n}")
               for n, done in enumerate(burned, start=1)]
    for thread in threads:
        thread.start()
    try:
        assert all(done.wait(10) for done in burned)
        cpu = cpu_by_thread()
        assert "Burner-1" not in cpu and "Burner-2" not in cpu
        assert cpu["Burner"] >= 2 * BURN_S
        assert cpu["MainThread"] > 0
        assert list(cpu) == sorted(cpu)
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert "Burner" not in cpu_by_thread()
