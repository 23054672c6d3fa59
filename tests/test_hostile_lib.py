"""Bad input and races through the library, against in-process DistKV
servers: the checks of `distkv_ext.codekit.core.checks`, the history's
numbering under concurrent writers, refusals that leave the store as it
was (a dump of the whole store before and after), deleting and reverting
procedures that jobs use, and the example deploy's first run.
"""

import datetime
import math
import os
import re
import shutil
from functools import partial

import anyio
import pytest
from moat.util import P

from distkv_ext.code import get_procedure, store_procedure
from distkv_ext.codekit.core import checks
from distkv_ext.codekit.core.compiler import compile_procedure
from distkv_ext.codekit.core.digest import pin_matches
from distkv_ext.codekit.core.errors import CompileError, Conflict, InputRefused
from distkv_ext.codekit.store import history
from distkv_ext.deploy import Change, DeployRefused, Plan, apply_deploy, plan_deploy, read_tree
from distkv_ext.module import ModuleRoot, store_module
from distkv_ext.run import (
    ProcedureInUse,
    SingleRunnerRoot,
    delete_procedure,
    get_job,
    job_value,
    revert_pinned_procedure,
    store_job,
)
from tests.helpers import dump_store, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "deploy")
FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}

# ---- the checks, one by one ------------------------------------------------

STORABLE = [
    (datetime.date(2020, 1, 1), "v: a date (2020-01-01) cannot be stored; quote it to store it as text"),
    (
        datetime.datetime(2020, 1, 1, 5),
        "v: a timestamp (2020-01-01T05:00:00) cannot be stored; quote it to store it as text",
    ),
    ({"a", "b"}, "v: a set cannot be stored; use a list"),
    (math.nan, "v: nan is not a finite number"),
    ([1, -math.inf], "v[1]: -inf is not a finite number"),
    (-(10**30), "v: an integer of 31 digits is too large to store (more than 64 bits)"),
    (2**64, "v: an integer of 20 digits is too large to store (more than 64 bits)"),
    ({1: "x"}, "v: key 1 is not text (keys must be strings)"),
    ({"a b": {None: 1}}, "v['a b']: key None is not text (keys must be strings)"),
    (1j, "v: a complex number (1j) cannot be stored"),
    (object(), "v: a object cannot be stored"),
    (
        "x" * (checks.MAX_VALUE + 1),
        f"v: too large to store ({checks.MAX_VALUE + 6} bytes encoded, at most {checks.MAX_VALUE})",
    ),
]


@pytest.mark.parametrize(("value", "problem"), STORABLE, ids=[p.split(": ", 1)[1][:30] for _, p in STORABLE])
def test_what_distkv_cannot_store_is_named(value, problem):
    assert checks.storable_problems(value, "v") == [problem]
    with pytest.raises(InputRefused, match="^" + re.escape(problem)):
        checks.check_storable(value, "v")


def test_values_that_contain_themselves_and_deep_ones():
    a = [1]
    a.append(a)
    assert checks.storable_problems({"x": a}, "v") == ["v.x[1]: contains itself (a YAML alias inside its own anchor?)"]
    deep = 0
    for _ in range(checks.MAX_DEPTH + 1):
        deep = [deep]
    assert checks.storable_problems(deep, "v")[0].endswith(f"nested more than {checks.MAX_DEPTH} levels deep")
    # a value used twice (not inside itself) is fine
    shared = [1, 2]
    assert checks.storable_problems({"a": shared, "b": shared}, "v") == []


def test_what_distkv_can_store_passes():
    value = {"n": None, "b": True, "i": -(2**63), "u": 2**64 - 1, "f": 1.5, "s": "x", "y": b"\0", "p": P("a.b")}
    assert checks.storable_problems({"l": [value, (1, 2)]}) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: checks.number(True, "n"), "n must be a number, not True"),
        (lambda: checks.number("1", "n"), "n must be a number, not '1'"),
        (lambda: checks.number(math.inf, "n"), "n must be a finite number, not inf"),
        (lambda: checks.number(2.5, "n", integer=True), "n must be a whole number, not 2.5"),
        (lambda: checks.number(0, "n", minimum=0, above=True), "n must be more than 0, not 0"),
        (lambda: checks.duration(1e10, "d"), "d must be at most 3155760000 (100 years), not 1e+10"),
        (lambda: checks.parse_number("1,5", "n"), "n must be a number, not '1,5'"),
        (lambda: checks.target_time(-1), "target -1 is before 1970 (0 means never)"),
        (lambda: checks.target_time(4e9, now=0), "target 4e+09 is more than 100 years away"),
        (lambda: checks.one_line("a\rb", "info"), "info must be one line of text"),
        (lambda: checks.identifier("None"), "'None' cannot be a variable name"),
        (lambda: checks.module_name("a..b"), "'a..b' is not a module name: '' cannot be imported (like util.pid)"),
        (lambda: checks.module_name(("a", 1)), "'a.1' is not a module name: '1' cannot be imported (like util.pid)"),
    ],
)
def test_number_time_and_name_checks(call, message):
    with pytest.raises(InputRefused) as exc:
        call()
    assert str(exc.value) == message


def test_checks_return_the_value():
    assert checks.number(3, "n") == 3 and isinstance(checks.number(3, "n"), int)
    assert checks.target_time(0) == 0  # never
    assert checks.module_name(P("util.pid")) == "util.pid"


# ---- the compile check names the lines Python names -------------------------

BROKEN = [
    "x = 1\nif x:\nreturn 2\n",  # issue
    "x = (1,\n  2]\n",  # issue
    "x = '''abc\n\ny = 2\n",
    "x = 1\nclass A:\n\ndef f(): pass\n",
    "x = 'abc\n",
    "x = 1\ny = (\n",
    "if 1:\n    a = 1\n  b = 2\n",
    "x = {1: 2,\n 3}\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_syntax_errors_name_the_lines_python_names(text):
    try:
        compile(text, "f.py", "exec")
    except SyntaxError as exc:
        python = (exc.lineno, exc.msg)
    with pytest.raises(CompileError) as ours:
        compile_procedure(text, "p")
    assert (ours.value.lineno, ours.value.msg) == python


# ---- refusals through the library leave the store as it was ----------------


async def test_library_refusals_write_nothing(autojump_clock, client):
    await store_procedure(client, "lib.p", lambda old: dict(code="return a", variables=["a"]))
    before = await dump_store(client)
    refusals = [
        (store_procedure(client, "lib.p", lambda old: dict(old, default={"a": math.nan})), "default.a: nan is not"),
        (
            store_procedure(client, "lib.q", lambda old: dict(code="return 1", default={"d": datetime.date.today()})),
            "a date",
        ),
        (store_procedure(client, "lib.q", lambda old: dict(code="return 1", requires=5)), "requires must be a list"),
        (store_module(client, "a-b", lambda old: {"code": "X = 1"}), "'a-b' is not a module name"),
        (store_job(client, "any", "lg", "j", lambda old: {"code": P("lib.p"), "data": {"a": {1, 2}}}), "a set"),
        (store_job(client, "any", "lg", "j", lambda old: {"code": P("lib.p"), "repeat": math.nan}), "repeat must be"),
    ]
    for coro, message in refusals:
        with pytest.raises(InputRefused, match=re.escape(message)):
            await coro
    m = await ModuleRoot.as_handler(client)
    with pytest.raises(InputRefused, match=re.escape("'x.class' is not a module name")):
        await m.add("x.class", code="X = 1")
    assert await dump_store(client) == before


def test_job_value_refuses_before_anything_is_stored():
    for fields, message in [
        ({"code": "a", "target": 1e300}, "target 1e+300 is more than 100 years away"),
        ({"code": "a", "backoff": math.inf}, "backoff must be a finite number, not inf"),
        ({"code": "a", "max_tries": -1}, "max_tries must be at least 0, not -1"),
        ({"code": "a", "data": {"x": datetime.date(2020, 1, 1)}}, "data.x: a date (2020-01-01) cannot be stored"),
        ({"code": "a", "info": ["x"]}, "info must be one line of text"),
    ]:
        with pytest.raises(InputRefused) as exc:
            job_value(fields)
        assert str(exc.value).startswith(message)


async def test_a_hand_made_plan_cannot_half_deploy(autojump_clock, client, tmp_path):
    """apply_deploy checks every value once more before its first write."""
    before = await dump_store(client)
    plan = Plan(root=str(tmp_path))
    plan.changes = [
        Change("module", P("ok.mod"), "add", "m.py", None, {"code": "X = 1", "requires": []}),
        Change("procedure", P("bad.p"), "add", "p.py", None, {"code": "return 1", "default": {"t": {1, 2}}}),
    ]
    with pytest.raises(DeployRefused) as exc:
        await apply_deploy(client, plan)
    assert exc.value.problems == ["procedure bad.p.default.t: a set cannot be stored; use a list"]
    assert await dump_store(client) == before


# ---- history: concurrent writers ----------------------------------------------


async def test_concurrent_history_writers_never_share_a_number(cluster):
    """Two clients save 2 x 6 versions of one path at once: 12 numbers, 12 versions."""
    async with cluster.client() as c1, cluster.client() as c2:
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(partial(history.record, c1, "proc", "race.p", {"code": f"return {i}"}, keep=100))
                tg.start_soon(partial(history.record, c2, "proc", "race.p", {"code": f"return {100 + i}"}, keep=100))
        vs = await history.versions(c1, "proc", "race.p")
    assert sorted(v["n"] for v in vs) == list(range(1, 13))
    assert sorted(v["value"]["code"] for v in vs) == sorted(
        [f"return {i}" for i in range(6)] + [f"return {100 + i}" for i in range(6)]
    )


async def test_two_concurrent_sets_lose_no_version(cluster):
    async with cluster.client() as c1, cluster.client() as c2:
        await store_procedure(c1, "race.q", lambda old: dict(code="return 0"))
        results = []

        async def one(c, n):
            try:
                results.append(await store_procedure(c, "race.q", lambda old: dict(old, code=f"return {n}")))
            except Conflict as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, c1, 1)
            tg.start_soon(one, c2, 2)
        written = [r[1]["code"] for r in results if not isinstance(r, Conflict)]
        current = (await get_procedure(c1, "race.q"))[0]["code"]
        saved = [v["value"]["code"] for v in await history.versions(c1, "proc", "race.q")]
    # every version is either current or in the history, and the history numbers are distinct
    assert current in written
    assert "return 0" in saved
    assert set(written) - {current} <= set(saved)


# ---- procedures that jobs use ---------------------------------------------------


async def test_delete_and_revert_mind_the_jobs(autojump_clock, client):
    await store_procedure(client, "pj.p", lambda old: dict(code="return 1"))
    await store_job(client, "any", "pg", "pj.job", lambda old: {"code": P("pj.p"), "pin": True})
    await store_procedure(client, "pj.p", lambda old: dict(old, code="return 2"))
    await store_job(client, "any", "pg", "pj.job", lambda old: dict(old, pin=True))  # pinned to version 2
    before = await dump_store(client)
    with pytest.raises(ProcedureInUse, match=r"^pj\.p is run by job pj\.job \(any pg\); use --force"):
        await delete_procedure(client, "pj.p")
    with pytest.raises(ProcedureInUse, match=re.escape("stops jobs pinned to another version: job pj.job")):
        await revert_pinned_procedure(client, "pj.p")
    assert await dump_store(client) == before
    action, value, repinned = await revert_pinned_procedure(client, "pj.p", repin=True)
    assert (action, value["code"], repinned) == ("updated", "return 1", ["job pj.job (any pg)"])
    job, _ = await get_job(client, "any", "pg", "pj.job")
    assert pin_matches(job["pin"], value, {}.get)  # it needs no modules
    # --force reverts and leaves the pin (the job then refuses to run the new code)
    _, value, repinned = await revert_pinned_procedure(client, "pj.p", force=True)
    assert value["code"] == "return 2" and repinned == []
    assert not pin_matches((await get_job(client, "any", "pg", "pj.job"))[0]["pin"], value, {}.get)
    await delete_procedure(client, "pj.p", force=True)


# ---- the example deploy runs clean the first time ----------------------------------


async def test_example_report_runs_clean_before_any_pump(autojump_clock, client, tmp_path):
    """issue: heating.report failed its first run with KeyError(P('heating.pump'))."""
    root = str(tmp_path / "deploy")
    shutil.copytree(EXAMPLE, root)
    await apply_deploy(client, await plan_deploy(client, read_tree(root)))
    r = await SingleRunnerRoot.as_handler(client, subpath=("at", "pi1", "boiler"), code=None, cfg=FAST)
    entry = r.follow(P("heating.report"))
    await wait_for(lambda: entry.state.stopped, timeout=60, step=0.1)
    assert (entry.state.error, entry.state.result) == (None, {})
