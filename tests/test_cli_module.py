"""``distkv client module`` through the real ``distkv`` command."""

import json

import pytest

from tests.helpers import run_distkv

pytestmark = pytest.mark.usefixtures("node")


def test_set_list_get_diff(node, tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def clamp(x):\n    return max(0, min(1, x))\n")
    r = node.run("module", "set", "cm.math", "-s", str(f), "-i", "maths")
    assert (r.returncode, r.out, r.err) == (0, "created: cm.math\n", "")
    r = node.run("module", "list", "cm", "-o", "json")
    assert json.loads(r.out) == [{"path": "cm.math", "requires": [], "lines": 2, "info": "maths"}]
    r = node.run("module", "get", "cm.math", "-s", "-")
    assert r.out == f.read_text()
    assert node.run("module", "diff", "cm.math", str(f)).returncode == 0
    r = node.run("module", "diff", "cm.math", "-", input="X = 1\n")
    assert r.returncode == 1 and "+X = 1" in r.out


def test_cycle_refused_names_it(node):
    node.run("module", "set", "cc.a", "-s", "-", input="A = 1")
    node.run("module", "set", "cc.b", "-s", "-", "-r", "cc.a", input="B = 1")
    r = node.run("module", "set", "cc.a", "-s", "-", "-r", "cc.b", input="A = 2")
    assert (r.returncode, r.err) == (4, "Error: requires of cc.a would close a cycle: cc.a -> cc.b -> cc.a\n")
    r = node.run("module", "get", "cc.a", "-s", "-")
    assert r.out == "A = 1\n"  # nothing written


def test_bad_syntax_and_non_utf8(node, tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("import os\ndef f(:\n")
    r = node.run("module", "set", "cb.bad", "-s", str(f))
    assert (r.returncode, r.err) == (4, f"Error: {f}:2: invalid syntax (for cb.bad)\n")
    g = tmp_path / "l1.py"
    g.write_bytes(b"X = '\xff'\n")
    r = node.run("module", "set", "cb.l1", "-s", str(g))
    assert (r.returncode, r.err) == (4, f"Error: {g}: not UTF-8 text (byte 0xff in line 1)\n")


def test_procedure_uses_chain_three_deep(node):
    node.run("module", "set", "ch3.c", "-s", "-", input="def f(): return 1")
    node.run("module", "set", "ch3.b", "-s", "-", "-r", "ch3.c", input="import ch3.c\ndef f(): return ch3.c.f() + 1")
    node.run("module", "set", "ch3.a", "-s", "-", "-r", "ch3.b", input="import ch3.b\ndef f(): return ch3.b.f() + 1")
    node.run("code", "set", "ch3.proc", "-s", "-", "-r", "ch3.a", input="import ch3.a\nreturn ch3.a.f()")
    r = node.run("code", "call", "ch3.proc")
    assert (r.returncode, r.out) == (0, "3\n"), r.err
    r = node.run("module", "graph", "proc:ch3.proc")
    assert r.out == "proc:ch3.proc\n└── ch3.a\n    └── ch3.b\n        └── ch3.c\nneeded by: nothing\n"
    r = node.run("module", "delete", "ch3.c")
    assert (r.returncode, r.err) == (4, "Error: ch3.c is needed by module ch3.b; use --force to delete it anyway\n")
    r = node.run("module", "delete", "ch3.a")
    assert r.returncode == 4 and "procedure ch3.proc" in r.err
    r = node.run("module", "delete", "--force", "ch3.c")
    assert (r.returncode, r.out) == (0, "deleted: ch3.c\n")
    r = node.run("code", "call", "ch3.proc")
    assert (r.returncode, r.err) == (
        3,
        "Error: ch3.b requires module ch3.c, which is not stored"
        " (needed by procedure ch3.proc -> ch3.a -> ch3.b -> ch3.c)\n",
    )


def test_traceback_shows_module_line(node):
    node.run("module", "set", "tbm.mod", "-s", "-", input="def boom():\n    return 1 / 0\n")
    node.run("code", "set", "tbm.p", "-s", "-", input="import tbm.mod\nreturn tbm.mod.boom()")

    r = run_distkv("-v", "-c", node.configs[0], "client", "code", "call", "tbm.p")
    assert r.returncode == 1
    assert 'File "<distkv:module tbm.mod>", line 2, in boom\n    return 1 / 0' in r.err


def test_check(node):
    r = node.run("module", "check", "-o", "json")
    before = json.loads(r.out) if r.out.strip() else []
    node.run("module", "set", "ck.x", "-s", "-", "-r", "ck.missing", input="X = 1")
    r = node.run("module", "check")
    assert r.returncode == 4
    assert "ck.x: module ck.x requires ck.missing, which is not stored\n" in r.out
    assert r.err.startswith("Error: ") and "problem(s) found" in r.err
    node.run("module", "delete", "ck.x")
    r = node.run("module", "check", "-o", "json")
    assert json.loads(r.out) == before
