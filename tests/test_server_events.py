"""What starting a handler costs the server: ours against DistKV 0.65's own.

DistKV's in-process harness (``stdtest``) counts the server's events
("tocks": every reply and every change costs at least one) and fails a
test that goes past its limit (default 20: "Test didn't terminate").
Users' own suites run on that harness, so our `CodeRoot.as_handler` and
runner roots must cost no more than DistKV's ``distkv.code.CodeRoot`` and
``distkv.runner.*RunnerRoot``.  Counted here: the server's tock counter
(``Server._tock``, the very number the harness's limit checks) just
before the call and right after it returns, each in a fresh harness.
"""

import os

import pytest
from distkv.errors import ErrorRoot

from distkv_ext.codekit.store.errtree import error_root
from tests.helpers import in_process_cluster

RUNNERS = ("AnyRunnerRoot", "SingleRunnerRoot", "AllRunnerRoot")


def _classes(which):
    if which == "distkv":
        import distkv.runner as runner
        from distkv.code import CodeRoot
    else:
        import distkv_ext.run as runner
        from distkv_ext.code import CodeRoot
    return CodeRoot, runner


async def _cost(st, coro):
    before = st.s[0]._tock
    res = await coro
    return res, st.s[0]._tock - before


async def _costs(which, runner_kind, error_root_first):
    """(CodeRoot's cost, the runner root's cost or None) in a fresh harness."""
    CodeRoot, runner = _classes(which)
    async with in_process_cluster() as st, st.client() as c:
        if error_root_first:  # as DistKV's own tests do
            await ErrorRoot.as_handler(c)
        cr, code_cost = await _cost(st, CodeRoot.as_handler(c))
        if runner_kind is None:
            return code_cost, None
        cls = getattr(runner, runner_kind)
        _, run_cost = await _cost(st, cls.as_handler(c, subpath=(), code=cr))
        return code_cost, run_cost


@pytest.mark.parametrize("error_root_first", [True, False], ids=["after-ErrorRoot", "alone"])
async def test_code_root_costs_no_more_than_distkvs(autojump_clock, error_root_first):
    ours, _ = await _costs("ours", None, error_root_first)
    theirs, _ = await _costs("distkv", None, error_root_first)
    assert ours <= theirs, f"CodeRoot.as_handler: ours {ours} server events, DistKV's {theirs}"


@pytest.mark.parametrize("kind", RUNNERS)
async def test_runner_root_costs_no_more_than_distkvs(autojump_clock, kind):
    _, ours = await _costs("ours", kind, True)
    _, theirs = await _costs("distkv", kind, True)
    assert ours <= theirs, f"{kind}.as_handler: ours {ours} server events, DistKV's {theirs}"


async def test_distkvs_own_tests_fit_their_default_limit(autojump_clock):
    """DistKV's test_81_basic, with our CodeRoot, within the harness's default limit."""
    from distkv.mock.mqtt import stdtest
    from moat.util import P

    from distkv_ext.code import CodeRoot

    async with stdtest(args={"init": 123}) as st, st.client() as c:  # tocks=20
        await ErrorRoot.as_handler(c)
        cr = await CodeRoot.as_handler(c)
        await cr.add(P("forty.two"), code="return 42")
        assert cr("forty.two") == 42


async def test_one_error_tree_handler_per_client(autojump_clock, cluster):
    async with cluster.client() as c:  # DistKV's first: ours uses it
        theirs = await ErrorRoot.as_handler(c)
        assert await error_root(c) is theirs
    async with cluster.client() as c:  # ours first: DistKV's as_handler returns it
        ours = await error_root(c)
        assert await ErrorRoot.as_handler(c) is ours
        assert ours.name == f"{c.client_name}.{os.getpid()}"
