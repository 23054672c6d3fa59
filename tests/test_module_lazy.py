"""A `CodeRoot` loads the stored modules only when a procedure first needs
them (DistKV's handler costs the server no watch of them either)."""

import sys
import time

import pytest
from moat.util import P

from distkv_ext.module import ModuleRoot, _importer
from distkv_ext.run import AnyRunnerRoot
from tests.helpers import wait_for

MODS = P(":.distkv.code.module")
FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}
SEEN = []


@pytest.fixture(autouse=True)
def no_leftovers():
    SEEN.clear()
    yield
    assert not _importer._roots, "a ModuleRoot outlived its client"
    assert not _importer._deferred, "a CodeRoot's deferred loader outlived its client"
    assert not [m for m in sys.modules if m.split(".")[0] == "lz"]


async def store(client, name, code, requires=()):
    """Write a module as DistKV's own ``distkv client code module`` would."""
    await client.set(MODS + P(name), value={"code": code, "requires": list(requires)})


def module_watches(st):
    return [
        seq
        for server in st.s
        for sc in list(server._clients)
        for seq in list(sc.tasks)
        if getattr(getattr(sc.in_stream.get(seq), "msg", None), "path", None) == MODS
    ]


async def test_a_code_root_alone_loads_no_modules(autojump_clock, cluster, client, cr):
    await cr.add("lzp.plain", code="import json\nreturn json.dumps(1)")
    assert cr("lzp.plain") == "1"
    assert cr.modules is None and not module_watches(cluster)


@pytest.mark.parametrize("how", ["requires", "import"])
async def test_a_procedure_that_needs_modules_loads_them(autojump_clock, cluster, client, cr, how):
    await store(client, "lz.val", "V = 42")
    if how == "requires":
        await cr.add("lzp.req", code="import sys\nreturn sys.modules['lz.val'].V", requires=["lz.val"])
    else:  # a name nothing installed provides
        await cr.add("lzp.req", code="from lz.val import V\nreturn V")
    assert cr.modules is not None and len(module_watches(cluster)) == 1
    assert cr("lzp.req") == 42


async def test_a_running_module_root_is_used_at_once(autojump_clock, cluster, client):
    from distkv_ext.code import CodeRoot

    m = await ModuleRoot.as_handler(client)
    cr = await CodeRoot.as_handler(client)
    assert cr.modules is m and len(module_watches(cluster)) == 1


async def test_a_computed_import_from_a_thread_loads_on_the_spot(autojump_clock, cluster, client, cr):
    await store(client, "lz.dyn", "V = 'dyn'")
    await cr.add("lzp.thread", code="import importlib\nreturn importlib.import_module('lz' + '.dyn').V", is_async=False)
    assert cr.modules is None
    assert await cr("lzp.thread") == "dyn"
    assert cr.modules is not None


async def test_a_computed_import_in_the_event_loop_says_it_is_loading(autojump_clock, cluster, client, cr):
    await store(client, "lz.dyn", "V = 'dyn'")
    await cr.add("lzp.loop", code="import importlib\nreturn importlib.import_module('lz' + '.dyn').V", is_async=True)
    with pytest.raises(ModuleNotFoundError, match="loading them now"):
        await cr("lzp.loop")
    await wait_for(lambda: cr.modules is not None)
    assert await cr("lzp.loop") == "dyn"


async def test_a_module_loaded_late_still_restarts_its_jobs(autojump_clock, cluster, client, cr):
    await store(client, "lz.ver", "V = 1")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "lz"), code=cr, node="n1", cfg=FAST)
    code = "import anyio, lz.ver, tests.test_module_lazy as t\nt.SEEN.append(lz.ver.V)\nawait anyio.sleep(1000)"
    await cr.add("lzp.job", code=code, is_async=True, requires=["lz.ver"])  # loads the modules now
    job = r.follow(P("lzj"), create=True)
    job.code = P("lzp.job")
    await job.run_at(time.time())
    await wait_for(lambda: SEEN == [1])
    await store(client, "lz.ver", "V = 2")
    await wait_for(lambda: SEEN == [1, 2])
