"""Positional arguments of procedures: a job's ``args`` (in the runner and in
process mode) and `call_procedure`'s."""

import pytest
from moat.util import P

from distkv_ext.code import call_procedure
from distkv_ext.codekit.core.errors import BadArguments, InputRefused
from distkv_ext.run import AnyRunnerRoot, entry_problem, get_job, store_job
from tests.helpers import wait_for
from tests.test_run_lib import FAST


def ended(job, runs=1):
    st = job.state
    return (st.runs or 0) >= runs and st.node is None and st.stopped


def job_with(code, **fields):
    """A `store_job` edit: a new job of procedure ``code``, starting now."""

    def edit(old):
        return {"code": code, "target": 1, **fields}

    return edit


async def test_call_procedure_with_positional_args(autojump_clock, client, cr):
    await cr.add("pa.add", code="return [a, b, c]", variables=["a", "b", "c"], default={"c": "dflt"})
    assert await call_procedure(client, "pa.add", [1, [2]], {}) == [1, [2], "dflt"]
    assert await call_procedure(client, "pa.add", [1], {"b": 2}) == [1, 2, "dflt"]
    with pytest.raises(BadArguments, match=r"^pa\.add takes 3 positional arguments but 4 were given$"):
        await call_procedure(client, "pa.add", [1, 2, 3, 4], {})
    await cr.add("pa.none", code="return 0")
    with pytest.raises(BadArguments, match=r"^pa\.none takes 0 positional arguments but 1 were given$"):
        await call_procedure(client, "pa.none", ["x"], {})


@pytest.mark.parametrize("process", [False, True], ids=["in-runner", "process"])
@pytest.mark.parametrize("is_async", [None, True], ids=["sync", "async"])
async def test_a_jobs_args_reach_the_procedure(client, cr, process, is_async):
    code = "import anyio\nawait anyio.sleep(0)\n" if is_async else ""
    await cr.add(
        "pa.show",
        code=code + "return {'a': a, 'b': b, 'c': c}",
        variables=["a", "b", "c"],
        is_async=is_async,
        process=process,
    )
    # a and b from args, c from data: store_job counts args as given variables
    await store_job(client, "any", "pa", "show", job_with(P("pa.show"), args=[1, {"x": "two"}], data={"c": 3}))
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pa"), code=cr, node="n1", cfg=FAST)
    job = r.follow(P("show"), create=False)
    await wait_for(lambda: ended(job), timeout=60)
    assert job.state.error is None
    assert job.state.result == {"a": 1, "b": {"x": "two"}, "c": 3}


async def test_too_many_args_fail_the_run_clearly(autojump_clock, client, cr):
    await cr.add("pa.one", code="return a", variables=["a"])
    await cr.add("pa.zero", code="return 'ran'")
    await cr.add("pa.ok", code="return 'fine'")
    with pytest.raises(InputRefused, match=r"^procedure pa\.zero takes 0 positional arguments, the job gives 1$"):
        await store_job(client, "any", "pa", "zero", job_with(P("pa.zero"), args=[1]))
    with pytest.raises(InputRefused, match=r"^procedure pa\.one takes 1 positional argument \(a\), the job gives 2$"):
        await store_job(client, "any", "pa", "one", job_with(P("pa.one"), args=[1, 2]))
    # stored behind store_job's back (or the procedure lost its variables later)
    await client.set(P(":.distkv.run.any.pa.zero"), value={"code": P("pa.zero"), "target": 1, "args": ["x"]})
    await client.set(P(":.distkv.run.any.pa.ok"), value={"code": P("pa.ok"), "target": 1})
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pa"), code=cr, node="n1", cfg=FAST)
    zero, ok = r.follow(P("zero"), create=False), r.follow(P("ok"), create=False)
    await wait_for(lambda: ended(zero) and ended(ok), what="both runs")
    assert zero.state.error == "cannot call pa.zero: pa.zero takes 0 positional arguments but 1 were given"
    assert ok.state.result == "fine" and not r.lost_event.is_set()


@pytest.mark.parametrize("args", ["a b", {"a": 1}, 5, True])
async def test_args_that_are_no_list_make_the_entry_unusable(autojump_clock, client, cr, args):
    await cr.add("pa.any", code="return 'ran'")
    with pytest.raises(InputRefused, match=r"^args is \w+, not a list$"):
        await store_job(client, "any", "pa", "bad", job_with(P("pa.any"), args=args))
    value = {"code": P("pa.any"), "target": 1, "args": args}
    assert entry_problem(value).startswith("args is ")
    await client.set(P(":.distkv.run.any.pa.bad"), value=value)
    await client.set(P(":.distkv.run.any.pa.good"), value={"code": P("pa.any"), "target": 1})
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pa"), code=cr, node="n1", cfg=FAST)
    good = r.follow(P("good"), create=False)
    await wait_for(lambda: ended(good), what="the good job")

    async def recorded():
        msgs = [str(e.get("value", {}).get("message")) async for e in client.get_tree(P(":.distkv.error"))]
        return any("unusable runner entry: args is" in m for m in msgs)

    await wait_for(recorded, what="the unusable entry recorded")
    assert r.follow(P("bad"), create=False).state.runs == 0
    assert (await get_job(client, "any", "pa", "bad"))[0]["args"] == args  # left as it was
