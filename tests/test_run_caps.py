"""What a run may store: output lines and runs are capped, results and
error texts too, so that one huge line or result cannot become one huge
DistKV value (which stalls DistKV 0.65's replication between servers)."""

import pytest
from moat.util import NotGiven, P

from distkv_ext.codekit.core.errors import BadArguments
from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._caps import cap_text, fit_outcome
from distkv_ext.run._config import RunnerConfig
from distkv_ext.run._job import Outcome
from distkv_ext.run._output import OutputBuffer
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job


def texts(buf):
    return [t for _, _, t in buf.lines]


async def test_a_long_line_is_cut_with_a_marker():
    buf = OutputBuffer(max_lines=10, max_line_chars=5, max_chars=1000)
    buf.write("stdout", "abcdefghij\nok\n")
    assert texts(buf) == ["abcde [... 5 more characters cut]", "ok"]


async def test_an_endless_line_keeps_memory_bounded():
    buf = OutputBuffer(max_lines=10, max_line_chars=5, max_chars=1000)
    for _ in range(1000):
        buf.write("stdout", "x" * 1000)  # no newline, ever
    assert len(buf._partial["stdout"]) == 5 and not buf.lines
    buf.write("stdout", "y\nnext\n")
    assert texts(buf) == [f"xxxxx [... {1000 * 1000 - 5 + 1} more characters cut]", "next"]
    buf.write("stderr", "z" * 9)
    buf.close()
    assert texts(buf)[-1] == "zzzzz [... 4 more characters cut]"


async def test_a_run_keeps_its_last_lines_within_max_chars():
    buf = OutputBuffer(max_lines=100, max_line_chars=10, max_chars=150)  # at least a line and its marker
    for i in range(30):
        buf.add("stdout", f"{i:010d}")
    assert texts(buf) == [f"{i:010d}" for i in range(15, 30)] and buf.dropped == 15
    assert sum(len(t) for t in texts(buf)) <= 150


def test_results_and_errors_are_fitted():
    ok = Outcome(True, result={"a": 1}, started=1.0)
    assert fit_outcome(ok, 100) is ok
    big = fit_outcome(Outcome(True, result="x" * 1000, started=1.0), 100)
    assert not big.ok and big.started == 1.0
    assert big.error == "result: too large to store (1003 bytes encoded, at most 100) (runner.result_bytes)"
    nan = fit_outcome(Outcome(True, result=[float("nan")]), 100)
    assert nan.error == "result[0]: nan is not a finite number (runner.result_bytes)"
    exc = ValueError("v")
    long = fit_outcome(Outcome(False, error="e" * 300, exc=exc), 100)
    assert long.error == "e" * 100 + " [... 200 more characters cut]" and long.exc is exc
    assert cap_text("short", 100) == "short"


@pytest.mark.parametrize("name", ["output_line_chars", "output_run_chars", "result_bytes"])
def test_caps_are_checked(name):
    assert getattr(RunnerConfig.load({name: 10}), name) == 10
    for bad in (0, 2 * 1024 * 1024, "x", 1.5):
        with pytest.raises(BadArguments, match=f"^runner.{name} must be"):
            RunnerConfig.load({name: bad})


async def test_a_runner_stores_neither_a_huge_line_nor_a_huge_result(autojump_clock, client, cr):
    code = "import sys\nsys.stdout.write('x' * 20_000_000)\nprint('done')\nreturn 'y' * 2_000_000"
    await cr.add("huge", code=code)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "hj", "huge")
    await wait_for(lambda: job.state.error is not None, timeout=30)
    assert job.state.error == (
        "result: too large to store (2000005 bytes encoded, at most 65536) (runner.result_bytes)"
    )
    assert job.state.result in (None, NotGiven) and not r.lost_event.is_set()
    out = {}

    async def got():
        async for e in client.get_tree(P(":.distkv.output.any.g.hj")):
            if "value" in e:
                out.update(e.value)
        return out.get("stopped")

    await wait_for(got, timeout=10, what="the run's output")
    lines = [t for _, s, t in out["lines"] if s == "stdout"]
    # the line went on with "done": cut too
    assert lines == ["x" * 2000 + f" [... {20_000_000 + 4 - 2000} more characters cut]"]
