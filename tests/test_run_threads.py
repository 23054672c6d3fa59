"""Sync and thread code runs in a worker thread that a stop ends (`_threads`)."""

import threading
import time

import anyio
import pytest

from distkv_ext.run._threads import JobStopped, run_stoppable


async def test_a_busy_loop_is_stopped_and_its_finally_runs():
    seen = []

    def busy():
        try:
            while True:
                pass
        finally:
            seen.append(threading.get_ident())

    with anyio.move_on_after(0.3):
        await run_stoppable(busy)
    assert len(seen) == 1 and seen[0] != threading.get_ident()


async def test_results_errors_and_late_stops():
    assert await run_stoppable(lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        await run_stoppable(lambda: 1 / 0)

    def raises_it():
        raise JobStopped("its own")

    with pytest.raises(JobStopped, match="its own"):  # not a stop of ours: the code's own error
        await run_stoppable(raises_it)
    # the worker threads are reused: a stop never reaches later work
    for _ in range(20):
        assert await run_stoppable(lambda: sum(range(1000))) == 499500


async def test_code_blocked_in_c_ends_when_the_call_returns():
    seen = []

    def sleeper():
        try:
            time.sleep(0.5)  # one C call: the stop waits for it
            seen.append("after the sleep")  # not reached: stopped at the next bytecode
        finally:
            seen.append("finally")

    t0 = time.monotonic()
    with anyio.move_on_after(0.1):
        await run_stoppable(sleeper)
    assert seen == ["finally"] and time.monotonic() - t0 >= 0.45  # it waited for the code to end
