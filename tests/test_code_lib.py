"""The procedure library (`distkv_ext.code`) against in-process DistKV servers."""

import threading

import pytest
from moat.util import P

from distkv_ext.code import (
    CodeRoot,
    CompileError,
    EmptyCode,
    NotFound,
    call_procedure,
    get_procedure,
    list_procedures,
)
from tests.helpers import wait_for

PREFIX = P(":.distkv.code.proc")


async def test_add_and_call_by_string_tuple_path(autojump_clock, cr):
    await cr.add("forty.two", code="return 42")
    assert cr("forty.two") == 42
    assert cr(("forty", "two")) == 42
    assert cr(P("forty.two")) == 42


async def test_modes_sync_thread_async(autojump_clock, cr):
    main = threading.current_thread()
    await cr.add("m.sync", code="import threading\nreturn threading.current_thread()")
    await cr.add("m.thread", code="import threading\nreturn threading.current_thread()", is_async=False)
    await cr.add("m.async", code="import anyio\nawait anyio.sleep(0)\nreturn 'a'", is_async=True)
    assert cr("m.sync") is main
    assert await cr("m.thread") is not main
    assert await cr("m.async") == "a"


async def test_variables_defaults_and_globals(autojump_clock, cr):
    await cr.add("v.add", code="return a + b + extra", variables=["a", "b"], default={"b": 10})
    assert cr("v.add", 1, extra=100) == 111
    assert cr("v.add", a=1, b=2, extra=0) == 3
    with pytest.raises(TypeError, match="needs a value for variable 'a'"):
        cr("v.add", extra=1)


async def test_stored_layout_is_distkv_065s(autojump_clock, client, cr):
    await cr.add("lay.out", code="return x", variables=["x"], requires=["util.pid"], info="hi")
    res = await client.get(PREFIX + P("lay.out"))
    assert res.value == {
        "code": "return x",
        "is_async": None,
        "vars": ("x",),  # DistKV's codec returns lists as tuples
        "requires": ("util.pid",),
        "info": "hi",
    }


async def test_entries_written_by_distkv_itself_are_called(autojump_clock, client):
    from distkv.code import CodeRoot as DistKVCodeRoot

    theirs = await DistKVCodeRoot.as_handler(client)
    await theirs.add(P("old.one"), code="return a * 2", variables=["a"])
    await theirs.add(P("old.async"), code="return 'x'", is_async=True)
    cr = await CodeRoot.as_handler(client)
    assert cr("old.one", 21) == 42
    assert await cr("old.async") == "x"


async def test_compile_error_refused_nothing_written(autojump_clock, client, cr):
    with pytest.raises(CompileError) as ei:
        await cr.add("bad.one", code="x = 1\nreturn (x +\n")
    assert ei.value.lineno == 2
    with pytest.raises(NotFound):
        await get_procedure(client, "bad.one")
    with pytest.raises(NotFound):
        cr("bad.one")


async def test_change_in_store_is_recompiled(autojump_clock, cluster2):
    async with cluster2.client(0) as c0, cluster2.client(1) as c1:
        cr0 = await CodeRoot.as_handler(c0)
        cr1 = await CodeRoot.as_handler(c1)
        await cr0.add("ch.ange", code="return 1")
        await wait_for(
            lambda: (
                cr1.follow(P("ch.ange"), create=False) is not None
                and cr1.follow(P("ch.ange"), create=False).procedure is not None
            ),
            timeout=5,
        )
        assert cr1("ch.ange") == 1
        await cr0.add("ch.ange", code="return 2")
        await wait_for(lambda: cr1("ch.ange") == 2, timeout=5)


async def test_bad_entry_behind_our_back_keeps_old_version(autojump_clock, client, cr):
    await cr.add("keep.old", code="return 'good'")
    r = await client.set(PREFIX + P("keep.old"), value={"code": "return (", "is_async": None, "vars": []}, nchain=2)
    await cr.wait_chain(r.chain)
    entry = cr.lookup("keep.old")
    assert isinstance(entry.error, CompileError)
    assert cr("keep.old") == "good"
    # a non-dict value is reported too, and the handler survives
    r = await client.set(PREFIX + P("keep.other"), value="not a dict", nchain=2)
    await cr.wait_chain(r.chain)
    with pytest.raises(EmptyCode, match="does not compile"):
        cr("keep.other")
    # the error is in DistKV's error tree
    found = []
    async for e in client.get_tree(P(":.distkv.error")):
        if e.get("value", {}).get("subsystem") == "compile":
            found.append(e.value)
    assert any(tuple(x["path"])[-2:] == ("keep", "old") for x in found)
    # and fixing it resolves the error
    await cr.add("keep.old", code="return 'fixed'")
    assert cr("keep.old") == "fixed"
    assert cr.lookup("keep.old").error is None


async def test_remove(autojump_clock, cr):
    await cr.add("gone.soon", code="return 1")
    await cr.remove("gone.soon")
    with pytest.raises(NotFound):
        cr("gone.soon")
    with pytest.raises(NotFound):
        await cr.remove("gone.soon")


async def test_two_servers_write_via_one_call_via_other(autojump_clock, cluster2):
    async with cluster2.client(0) as c0, cluster2.client(1) as c1:
        cr0 = await CodeRoot.as_handler(c0)
        await cr0.add("two.srv", code="return 'hello'")
        # a handler started on the other server after the write has it loaded

        async def stored():
            try:
                return await get_procedure(c1, "two.srv")
            except NotFound:
                return None

        await wait_for(stored, timeout=5, step=0.05, what="two.srv on the other server")
        cr1 = await CodeRoot.as_handler(c1)
        assert cr1("two.srv") == "hello"


async def test_one_shot_call_and_list(autojump_clock, client, cr):
    await cr.add("o.a", code="return _client is not None and n", variables=["n"])
    await cr.add("o.b.c", code="return 1", is_async=False)
    assert await call_procedure(client, "o.a", (), {"n": 5}) == 5
    paths = [str(p) async for p, _ in list_procedures(client)]
    assert paths == ["o.a", "o.b.c"]
    paths = [str(p) async for p, _ in list_procedures(client, P("o.b"))]
    assert paths == ["o.b.c"]
