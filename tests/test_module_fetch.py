"""The module handler fetches modules when they are needed, not the whole
tree when it starts; what it fetched stays current; garbage, missing
modules and cycles in the store fail the one procedure that needs them."""

import sys
import time

import anyio
import anyio.lowlevel
import pytest
from moat.util import P

from distkv_ext.codekit.core.errors import MissingModule
from distkv_ext.module import ModuleRoot, _importer
from distkv_ext.run import AnyRunnerRoot
from tests.helpers import wait_for

MODS = P(":.distkv.code.module")
FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    assert not _importer._roots, "a ModuleRoot outlived its client"
    assert not [m for m in sys.modules if m.split(".")[0] == "lf"]


async def store(client, name, value):
    """Write a module entry behind the library's back (as any client can)."""
    r = await client.set(MODS + P(name), value=value, nchain=2)
    return r.chain


def mod(code, requires=()):
    return {"code": code, "requires": list(requires)}


async def store_chains(client, chains=10, length=3):
    for c in range(chains):
        for i in range(length):
            req = [f"lf.c{c}.m{i - 1}"] if i else []
            code = f"import lf.c{c}.m{i - 1} as prev\ndef f(): return prev.f() + 1" if i else "def f(): return 1"
            await store(client, f"lf.c{c}.m{i}", mod(code, req))


def known_modules(m):
    return sorted(e.name for e in m.all_children)


async def test_the_handler_starts_without_fetching_and_fetches_what_a_procedure_needs(autojump_clock, client, cr):
    await store_chains(client)
    await cr.add("lfp.third", code="import lf.c4.m2\nreturn lf.c4.m2.f()", requires=["lf.c4.m2"])
    m = cr.modules
    # one get per needed module and per package above it, nothing else stored
    assert known_modules(m) == ["lf.c4.m0", "lf.c4.m1", "lf.c4.m2"]
    assert cr("lfp.third") == 3
    assert not [n for n in sys.modules if n.startswith("lf.c") and not n.startswith("lf.c4")]
    fetched = m.fetches
    assert cr("lfp.third") == 3 and m.fetches == fetched  # calls import from memory


async def test_a_new_handler_knows_nothing_until_asked(autojump_clock, client):
    await store_chains(client, chains=3)
    m = await ModuleRoot.as_handler(client)
    assert m.fetches == 0 and known_modules(m) == []
    await m.fetch("lf.c1.m1")
    assert known_modules(m) == ["lf.c1.m0", "lf.c1.m1"]
    assert m.lookup("lf") == "namespace" and m.lookup("lf.c1.m1") == "module"
    assert m.lookup("lf.c2.m0") == "unknown"


@pytest.mark.parametrize(
    "value, message",
    [
        ("just text", r"stored module lf.bad: .*"),
        ({"code": 5}, r"stored module lf.bad: .*"),
        ({"code": "x = 1", "requires": "lf.other"}, r"stored module lf.bad: .*requires"),
        ({"code": "def (:"}, r"stored module lf.bad does not compile"),
        ({"requires": []}, r"stored module lf.bad: stored value has no 'code'"),
    ],
)
async def test_a_garbage_module_fails_only_its_procedure(autojump_clock, client, cr, value, message):
    await store(client, "lf.bad", value)
    await store(client, "lf.good", mod("V = 7"))
    await cr.add("lfp.bad", code="return 1", requires=["lf.bad"])
    await cr.add("lfp.good", code="import lf.good\nreturn lf.good.V", requires=["lf.good"])
    with pytest.raises(ImportError, match=message):
        cr("lfp.bad")
    assert cr("lfp.good") == 7
    with pytest.raises(ImportError, match=message):  # the same, not a half-loaded module
        cr("lfp.bad")


async def test_a_requires_cycle_in_the_store_fails_the_procedure(autojump_clock, client, cr):
    # written behind add's back (add refuses a cycle)
    await store(client, "lf.cy.a", mod("X = 1", ["lf.cy.b"]))
    await store(client, "lf.cy.b", mod("X = 2", ["lf.cy.c"]))
    await store(client, "lf.cy.c", mod("X = 3", ["lf.cy.a"]))
    await cr.add("lfp.cy", code="return 1", requires=["lf.cy.a"])  # fetching ends
    assert known_modules(cr.modules) == ["lf.cy.a", "lf.cy.b", "lf.cy.c"]
    with pytest.raises(ImportError, match=r"requires form a cycle: lf.cy.a -> lf.cy.b -> lf.cy.c -> lf.cy.a"):
        cr("lfp.cy")
    assert "lf.cy.a" not in sys.modules


async def test_a_missing_module_and_one_deleted_after_it_was_fetched(autojump_clock, client, cr):
    await store(client, "lf.here", mod("V = 1"))
    await cr.add("lfp.missing", code="return 1", requires=["lf.nothere"])
    await cr.add("lfp.here", code="import lf.here\nreturn lf.here.V", requires=["lf.here"])
    with pytest.raises(MissingModule, match=r"requires module lf\.nothere, which is not stored"):
        cr("lfp.missing")
    assert cr("lfp.here") == 1
    await client.delete(MODS + P("lf.here"))
    await wait_for(lambda: "lf.here" not in sys.modules, what="the deleted module dropped")
    with pytest.raises(MissingModule, match=r"requires module lf\.here, which is not stored"):
        cr("lfp.here")
    # stored again: the watch tells, no fetch needed
    chain = await store(client, "lf.here", mod("V = 2"))
    await cr.modules.wait_chain(chain)
    assert cr("lfp.here") == 2
    # and one that appears later is seen too
    chain = await store(client, "lf.nothere", mod("V = 3"))
    await cr.modules.wait_chain(chain)
    assert cr("lfp.missing") == 1


async def test_a_changed_module_that_needs_a_new_one_gets_it_fetched(autojump_clock, client, cr):
    await store(client, "lf.top", mod("def f(): return 1"))
    await store(client, "lf.extra", mod("N = 41"))
    await cr.add("lfp.top", code="import lf.top\nreturn lf.top.f()", requires=["lf.top"])
    assert cr("lfp.top") == 1
    assert not cr.modules.known(("lf", "extra"))
    chain = await store(client, "lf.top", mod("import lf.extra\ndef f(): return lf.extra.N + 1", ["lf.extra"]))
    await cr.modules.wait_chain(chain)
    assert "lf.top" not in sys.modules  # reloaded on the next call
    assert cr("lfp.top") == 42  # (in the event loop: it could not wait for a fetch)


async def test_a_computed_import_fetches_on_the_spot_in_a_thread(autojump_clock, client, cr):
    await store(client, "lf.deep.dyn", mod("V = 'dyn'"))
    await cr.load_modules()
    code = "import importlib\nreturn importlib.import_module('lf.deep' + '.dyn').V"
    await cr.add("lfp.thread", code=code, is_async=False)
    assert await cr("lfp.thread") == "dyn"


async def test_a_computed_import_in_the_event_loop_fetches_for_the_next_one(autojump_clock, client, cr):
    await store(client, "lf.deep.dyn", mod("V = 'dyn'"))
    await cr.load_modules()
    code = "import importlib\nreturn importlib.import_module('lf.deep' + '.dyn').V"
    await cr.add("lfp.loop", code=code, is_async=True)
    with pytest.raises(ModuleNotFoundError, match=r"not fetched from the store yet; fetching it now"):
        await cr("lfp.loop")
    # the whole dotted name was fetched, not just the package Python asked for first
    await wait_for(lambda: cr.modules.lookup("lf.deep.dyn") == "module", what="lf.deep.dyn fetched")
    assert await cr("lfp.loop") == "dyn"


async def test_an_import_by_other_code_of_an_unknown_name_is_just_not_found(autojump_clock, client, cr):
    import importlib

    m = await cr.load_modules()
    with pytest.raises(ModuleNotFoundError, match=r"^No module named 'lfnothing'$"):
        importlib.import_module("lfnothing")
    await wait_for(lambda: m.lookup("lfnothing") is None, what="the miss fetched")


async def test_a_runner_survives_a_job_whose_module_is_garbage(autojump_clock, client, cr):
    await store(client, "lf.junk", "not a module")
    await store(client, "lf.fine", mod("V = 5"))
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "lf"), code=cr, node="n1", cfg=FAST)
    await cr.add("lfp.junk", code="return 1", requires=["lf.junk"], is_async=True)
    await cr.add("lfp.fine", code="import lf.fine\nreturn lf.fine.V", requires=["lf.fine"], is_async=True)
    bad = r.follow(P("lfbad"), create=True)
    bad.code = P("lfp.junk")
    good = r.follow(P("lfgood"), create=True)
    good.code = P("lfp.fine")
    await bad.run_at(time.time())
    await good.run_at(time.time())
    await wait_for(lambda: good.state is not None and good.state.result == 5, what="the good job's result")
    await wait_for(lambda: bad.state is not None and bad.state.error, what="the bad job's error")
    assert "stored module lf.junk: stored value is str, not a mapping" in bad.state.error
    assert bad.state.backoff >= 1
    # the runner runs on: the good job again, as it repeats
    await good.run_at(time.time())
    await wait_for(lambda: good.state.runs >= 2, what="the good job's second run")


async def test_a_thread_and_the_loop_importing_one_module_at_once_do_not_hang(autojump_clock, client, cr, monkeypatch):
    """The thread holds the module's import lock while it waits for the
    loop to fetch the module; the loop's own thread, importing the same
    module, waits for that lock: the thread gives up after
    `LoopWaiter.timeout` (instead of both waiting forever)."""
    import faulthandler
    import importlib
    import threading

    from distkv_ext.module import _loopwait

    await store(client, "lf.race", mod("V = 1"))
    m = await cr.load_modules()
    monkeypatch.setattr(_loopwait.LoopWaiter, "timeout", 0.5)
    waiting = threading.Event()
    wait = _loopwait.LoopWaiter.wait

    def wait_and_tell(self, *a, **kw):
        waiting.set()
        return wait(self, *a, **kw)

    monkeypatch.setattr(_loopwait.LoopWaiter, "wait", wait_and_tell)
    seen = []

    def in_thread():
        try:
            seen.append(importlib.import_module("lf.race").V)
        except ImportError as exc:
            seen.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, in_thread)
        while not waiting.is_set():
            await anyio.lowlevel.checkpoint()
        time.sleep(0.1)  # noqa: ASYNC251  (the loop stays here: the thread's fetch cannot start)
        # were they to wait for each other, this would hang for good: end
        # the test process then, with the tracebacks of its threads
        faulthandler.dump_traceback_later(60, exit=True)
        try:
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module("lf.race")  # waits for the thread's lock, then: not fetched yet
        finally:
            faulthandler.cancel_dump_traceback_later()
    assert len(seen) == 1 and isinstance(seen[0], ModuleNotFoundError)
    await wait_for(lambda: m.lookup("lf.race") == "module", what="lf.race fetched after all")
    assert await anyio.to_thread.run_sync(lambda: importlib.import_module("lf.race").V) == 1


async def test_a_module_importing_hundreds_of_names_is_fetched_a_few_gets_at_a_time(
    autojump_clock, client, cr, monkeypatch
):
    names = [f"lf.many.n{i}" for i in range(200)]
    await store(client, "lf.many", mod("if False:\n" + "".join(f"    import {n}\n" for n in names) + "V = 9"))
    m = await cr.load_modules()
    busy, most = [0], [0]
    get = client.get

    async def counted(*a, **kw):
        busy[0] += 1
        most[0] = max(most[0], busy[0])
        try:
            return await get(*a, **kw)
        finally:
            busy[0] -= 1

    monkeypatch.setattr(client, "get", counted)
    await cr.add("lfp.many", code="import lf.many\nreturn lf.many.V", requires=["lf.many"])
    assert all(m.known(tuple(n.split("."))) for n in names)  # (none stored: each asked once)
    assert 1 < most[0] <= m.CONCURRENT_GETS
    assert cr("lfp.many") == 9
