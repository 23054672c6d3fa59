"""Stored modules (`distkv_ext.module`) against in-process DistKV servers."""

import importlib
import sys
import traceback

import pytest
from moat.util import P

from distkv_ext.codekit.core.errors import MissingModule
from distkv_ext.module import InputRefused, ModuleRoot, _importer, get_module, store_module
from tests.helpers import wait_for

PREFIX = P(":.distkv.code.module")


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    assert not _importer._roots, "a ModuleRoot outlived its client"
    assert not [m for m in sys.modules if m.split(".")[0] in ("chain", "util", "ns", "user", "tb")]


async def test_import_chain_three_deep_loads_on_demand_in_order(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    await m.add("util.trace", code="log = []")
    await m.add(
        "chain.c", code="import util.trace\nutil.trace.log.append('c')\ndef f(): return 1", requires=["util.trace"]
    )
    await m.add(
        "chain.b",
        code="import util.trace\nutil.trace.log.append('b')\nimport chain.c\ndef f(): return chain.c.f() + 1",
        requires=["chain.c"],
    )
    await m.add(
        "chain.a",
        code="import util.trace\nutil.trace.log.append('a')\nimport chain.b\ndef f(): return chain.b.f() + 1",
        requires=["chain.b"],
    )
    await m.add("chain.unused", code="raise RuntimeError('must not load')")
    assert "chain.a" not in sys.modules
    mod = importlib.import_module("chain.a")
    assert mod.f() == 3
    assert sys.modules["util.trace"].log == ["c", "b", "a"]  # requires first
    assert "chain.unused" not in sys.modules


async def test_cycle_refused_and_named(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    await m.add("cy.a", code="x = 1", requires=["cy.b"])
    await m.add("cy.b", code="x = 2", requires=["cy.c"])
    with pytest.raises(InputRefused, match=r"^requires of cy.c would close a cycle: cy.c -> cy.a -> cy.b -> cy.c$"):
        await m.add("cy.c", code="x = 3", requires=["cy.a"])
    with pytest.raises(InputRefused, match="cycle"):
        await store_module(client, "cy.c", lambda old: {"code": "x = 3", "requires": ["cy.a"]})
    with pytest.raises(Exception, match=r"no module stored at cy\.c"):
        await get_module(client, "cy.c")


async def test_missing_dependency_names_the_chain(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    await m.add("util.top", code="x = 1", requires=["util.mid"])
    await m.add("util.mid", code="x = 1", requires=["util.gone"])
    with pytest.raises(MissingModule) as ei:
        importlib.import_module("util.top")
    assert str(ei.value) == (
        "util.mid requires module util.gone, which is not stored (needed by util.top -> util.mid -> util.gone)"
    )
    assert "util.top" not in sys.modules


async def test_reload_after_change_invalidates_dependents(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    await m.add("util.val", code="def f(): return 1")
    await m.add("user.one", code="import util.val\ndef g(): return util.val.f() * 10")
    assert importlib.import_module("user.one").g() == 10
    old = sys.modules["util.val"]
    await m.add("util.val", code="def f(): return 2")
    assert "util.val" not in sys.modules and "user.one" not in sys.modules
    assert importlib.import_module("user.one").g() == 20
    assert old.f() == 1  # objects from the old version keep their code


async def test_procedure_requires_loaded_first(autojump_clock, cr):
    await (await cr.load_modules()).add("util.pid", code="def step(e): return e / 2")
    await cr.add(
        "pr.oc", code="import sys\nreturn sys.modules['util.pid'].step(x)", variables=["x"], requires=["util.pid"]
    )
    assert cr("pr.oc", 8) == 4
    await cr.add("pr.missing", code="return 1", requires=["util.nothere"])
    with pytest.raises(
        MissingModule,
        match=r"procedure pr.missing requires module util.nothere, which is not stored \(needed by procedure pr.missing -> util.nothere\)",
    ):
        cr("pr.missing")


async def test_two_servers_store_via_one_import_via_other(autojump_clock, cluster2):
    async with cluster2.client(0) as c0, cluster2.client(1) as c1:
        await store_module(c0, "util.far", lambda old: {"code": "NAME = 'far'"})
        m1 = await ModuleRoot.as_handler(c1)
        await wait_for(lambda: m1.kind_of("util.far") == "module", timeout=10, step=0.05, what="util.far")
        assert importlib.import_module("util.far").NAME == "far"


async def test_traceback_shows_stored_source_line(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    await m.add("tb.mod", code="def boom():\n    x = 0\n    return 1 / x\n")
    mod = importlib.import_module("tb.mod")
    with pytest.raises(ZeroDivisionError) as ei:
        mod.boom()
    text = "".join(traceback.format_exception(ei.value))
    assert 'File "<distkv:module tb.mod>", line 3, in boom' in text
    assert "return 1 / x" in text


async def test_namespace_parents_and_packages(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    await m.add("ns.deep.leaf", code="V = 1")
    await m.add("ns.pkg", code="P = 'pkg'")
    await m.add("ns.pkg.sub", code="S = 'sub'")
    assert importlib.import_module("ns.deep.leaf").V == 1
    assert importlib.import_module("ns.pkg.sub").S == "sub"
    assert sys.modules["ns.pkg"].P == "pkg"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ns.deep.nothing")


async def test_bad_module_written_directly_and_remove(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    r = await client.set(PREFIX + P("util.broken"), value={"code": "def (:", "requires": []}, nchain=2)
    await m.wait_chain(r.chain)
    with pytest.raises(ImportError, match=r"stored module util.broken does not compile: util.broken:1: invalid syntax"):
        importlib.import_module("util.broken")
    await m.add("util.gone", code="X = 1")
    assert importlib.import_module("util.gone").X == 1
    await m.remove("util.gone")
    assert "util.gone" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("util.gone")


async def test_refuses_non_text(autojump_clock, client):
    m = await ModuleRoot.as_handler(client)
    with pytest.raises(InputRefused, match="not text"):
        await m.add("util.bin", code=b"\x00\x01")
