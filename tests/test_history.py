"""History and revert of procedures and modules."""

import json

import pytest

from distkv_ext.code import NotFound, get_procedure, revert_procedure, store_procedure
from distkv_ext.codekit.store import history
from distkv_ext.module import ModuleRoot, get_module, revert_module


def code_is(text):
    return lambda old: dict(old or {}, code=text, is_async=None, variables=[], requires=[], info=None, default={})


async def test_history_is_bounded_and_revert_is_a_change(autojump_clock, client):
    for i in range(13):
        await store_procedure(client, "h.p", code_is(f"return {i}"))
    vs = await history.versions(client, "proc", "h.p")
    assert [v["n"] for v in vs] == list(range(3, 13))  # the last 10 of 12 replaced
    assert vs[-1]["value"]["code"] == "return 11" and vs[-1]["by"] == client.client_name
    action, _ = await revert_procedure(client, "h.p")
    assert action == "updated"
    assert (await get_procedure(client, "h.p"))[0]["code"] == "return 11"
    vs = await history.versions(client, "proc", "h.p")
    assert vs[-1]["value"]["code"] == "return 12"  # the revert saved what it replaced
    await revert_procedure(client, "h.p", to=5)
    assert (await get_procedure(client, "h.p"))[0]["code"] == "return 4"
    with pytest.raises(NotFound, match=r"no version 1 of h\.p in the history"):
        await revert_procedure(client, "h.p", to=1)


async def test_library_add_remove_and_modules_keep_history(autojump_clock, client, cr):
    await cr.add("h.lib", code="return 1")
    await cr.add("h.lib", code="return 2")
    await cr.remove("h.lib")
    vs = await history.versions(client, "proc", "h.lib")
    assert [v["value"]["code"] for v in vs] == ["return 1", "return 2"]
    await revert_procedure(client, "h.lib")
    assert (await get_procedure(client, "h.lib"))[0]["code"] == "return 2"
    m = await ModuleRoot.as_handler(client)
    await m.add("hm.x", code="X = 1")
    await m.add("hm.x", code="X = 2", requires=[])
    await revert_module(client, "hm.x")
    assert (await get_module(client, "hm.x"))[0]["code"] == "X = 1"


def test_cli_history_and_revert(node):
    for i in (1, 2):
        node.run("code", "set", "hc.p", "-s", "-", input=f"return {i}")
    r = node.run("code", "history", "hc.p", "-o", "json")
    rows = json.loads(r.stdout)
    assert [x["n"] for x in rows] == [1, "current"] and rows[0]["lines"] == 1
    r = node.run("code", "revert", "hc.p")
    assert (r.returncode, r.out) == (0, "reverted: hc.p\n")
    assert node.run("code", "call", "hc.p").out == "1\n"
    r = node.run("code", "revert", "hc.p", "--to", "7")
    assert (r.returncode, r.err) == (3, "Error: no version 7 of hc.p in the history\n")
    r = node.run("module", "history", "no.such.mod")
    assert (r.returncode, r.err) == (3, "Error: no module stored at no.such.mod\n")
