"""``distkv client code`` through the real ``distkv`` command, against real
``distkv server`` processes started by the launcher."""

import json

import pytest

from distkv_ext.devtools.ports import free_ports
from tests.helpers import run_distkv, wait_until

pytestmark = pytest.mark.usefixtures("node")


@pytest.fixture
def src(tmp_path):
    def make(text, name="p.py", mode="w"):
        p = tmp_path / name
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        return str(p)

    return make


def test_set_call_get_list(node, src):
    f = src("x = 1\nreturn x + 41\n")
    r = node.run("code", "set", "cli.forty", "-s", f, "-i", "the answer")
    assert (r.returncode, r.out, r.err) == (0, "created: cli.forty\n", "")
    r = node.run("code", "set", "cli.forty", "-s", f)
    assert r.out == "unchanged: cli.forty\n"
    r = node.run("code", "call", "cli.forty")
    assert (r.returncode, r.out) == (0, "42\n")
    r = node.run("code", "get", "cli.forty", "-o", "json")
    got = json.loads(r.out)
    assert got["code"] == "x = 1\nreturn x + 41\n"
    assert got["mode"] == "sync" and got["info"] == "the answer"
    r = node.run("code", "list", "cli", "-o", "json")
    assert json.loads(r.out) == [
        {"path": "cli.forty", "mode": "sync", "vars": [], "requires": [], "lines": 2, "info": "the answer"}
    ]
    r = node.run("code", "get", "cli.forty", "-s", "-")
    assert r.out == "x = 1\nreturn x + 41\n"


def test_list_is_yaml_in_a_pipe(node, src):
    node.run("code", "set", "yl.one", "-s", src("return 1"))
    r = node.run("code", "list", "yl")
    assert r.out.startswith("- info: null\n  lines: 1\n  mode: sync\n  path: yl.one\n")


def test_written_via_one_server_called_via_the_other(node, src):
    r = node.run("code", "set", "two.servers", "-s", src("return 'hi'"), server=0)
    assert r.returncode == 0, r.err

    def called():
        r = node.run("code", "call", "two.servers", server=1)
        return r if r.returncode == 0 else None

    r = wait_until(called, timeout=60, step=0, what="a call through the other server")
    assert r.out == "hi\n"


def test_stdin_and_variables(node):
    r = node.run(
        "code",
        "set",
        "vars.add",
        "-s",
        "-",
        "--var",
        "a",
        "-e",
        "b",
        "2",
        "--thread",
        input="return a + b + c\n",
    )
    assert r.returncode == 0, r.err
    r = node.run("code", "call", "vars.add", "-e", "a", "40", "-e", "c", "0")
    assert r.out == "42\n"
    r = node.run("code", "get", "vars.add", "-o", "json")
    got = json.loads(r.out)
    assert (got["vars"], got["default"], got["mode"]) == (["a", "b"], {"b": 2}, "thread")
    r = node.run("code", "call", "vars.add", "-e", "c", "0")
    assert (r.returncode, r.err) == (2, "Error: vars.add needs a value for variable 'a'\n")


def test_async_procedure(node):
    r = node.run(
        "code", "set", "as.ync", "--async", "-s", "-", input="import anyio\nawait anyio.sleep(0)\nreturn [1, 2]"
    )
    assert r.returncode == 0, r.err
    r = node.run("code", "call", "as.ync", "-o", "json")
    assert json.loads(r.out) == [1, 2]


def test_bad_syntax_refused_nothing_stored(node, src):
    f = src("x = 1\ny = (x +\n", name="bad.py")
    r = node.run("code", "set", "bad.syntax", "-s", f)
    assert r.returncode == 4
    assert r.err == f"Error: {f}:2: '(' was never closed (for bad.syntax)\n"
    r = node.run("code", "get", "bad.syntax")
    assert (r.returncode, r.err) == (3, "Error: no procedure stored at bad.syntax\n")


def test_bad_syntax_keeps_the_old_version(node, src):
    node.run("code", "set", "keep.me", "-s", src("return 1"))
    r = node.run("code", "set", "keep.me", "-s", src("return (", name="b.py"))
    assert r.returncode == 4
    assert node.run("code", "call", "keep.me").out == "1\n"


def test_missing_path(node):
    for args in (["get", "no.such"], ["call", "no.such"], ["delete", "no.such"], ["list", "no.such"]):
        r = node.run("code", *args)
        assert (r.returncode, r.err) == (3, "Error: no procedure stored at no.such\n"), args


def test_diff_same_and_different(node, src):
    f = src("a = 1\nreturn a\n")
    node.run("code", "set", "di.ff", "-s", f)
    r = node.run("code", "diff", "di.ff", f)
    assert (r.returncode, r.out) == (0, "")
    g = src("a = 2\nreturn a\n", name="g.py")
    r = node.run("code", "diff", "di.ff", g)
    assert r.returncode == 1
    assert r.out == f"--- distkv:di.ff\n+++ {g}\n@@ -1,2 +1,2 @@\n-a = 1\n+a = 2\n return a\n"
    r = node.run("code", "diff", "-q", "di.ff", g)
    assert (r.returncode, r.out) == (1, "")


def test_non_utf8_and_binary_files(node, src):
    f = src(b"return '\xe4'\n", name="latin1.py")
    r = node.run("code", "set", "enc.bad", "-s", f)
    assert (r.returncode, r.err) == (4, f"Error: {f}: not UTF-8 text (byte 0xe4 in line 1)\n")
    f = src(b"\x7fELF\x02\x01\x00\x00", name="a.out")
    r = node.run("code", "set", "enc.bin", "-s", f)
    assert (r.returncode, r.err) == (4, f"Error: {f}: binary file (contains NUL bytes), not Python source\n")
    assert node.run("code", "get", "enc.bad").returncode == 3


def test_new_procedure_needs_code(node):
    r = node.run("code", "set", "no.code", "-i", "x")
    assert (r.returncode, r.err.splitlines()[-1]) == (2, "Error: no.code is new: give its code with '-s FILE'")


def test_procedure_that_raises(node):
    node.run("code", "set", "ra.ise", "-s", "-", input="raise ValueError('boom')")
    r = node.run("code", "call", "ra.ise")
    assert (r.returncode, r.err) == (1, "Error: ra.ise raised ValueError: boom\n")


def test_traceback_only_with_verbose(node):
    node.run("code", "set", "tb.one", "-s", "-", input="x = 0\nreturn 1 / x")
    r = run_distkv("-v", "-c", node.configs[0], "client", "code", "call", "tb.one")
    assert r.returncode == 1
    assert 'File "<distkv:proc tb.one>", line 2, in _proc' in r.err
    assert r.err.endswith("Error: tb.one raised ZeroDivisionError: division by zero\n")


def test_delete(node, src):
    node.run("code", "set", "del.me", "-s", src("return 1"))
    r = node.run("code", "delete", "del.me")
    assert (r.returncode, r.out) == (0, "deleted: del.me\n")
    assert node.run("code", "get", "del.me").returncode == 3


def test_server_down(tmp_path):
    (port,) = free_ports(1)
    cfg = tmp_path / "down.yaml"
    cfg.write_text(f"connect:\n  host: 127.0.0.1\n  port: {port}\n")
    r = run_distkv("-c", str(cfg), "client", "code", "list")
    assert r.returncode == 5
    assert r.err == f"Error: cannot reach the DistKV server at 127.0.0.1:{port}: All connection attempts failed\n"
    # help works without a server
    r = run_distkv("-c", str(cfg), "client", "code", "set", "--help")
    assert r.returncode == 0 and "Store the procedure PATH" in r.out


def test_config_override_reaches_the_client(node, tmp_path):
    (port,) = free_ports(1)
    r = run_distkv("-c", node.configs[0], "-C", f"connect.port={port}", "client", "code", "list")
    assert r.returncode == 5 and f"127.0.0.1:{port}" in r.err


def test_distkvs_own_commands_work_too(node, src):
    node.run("code", "set", "own.cmd", "-s", src("return 1"))
    r = node.run("data", ":.distkv.code.proc.own.cmd", "get")
    assert r.returncode == 0, r.err
    assert "return 1" in r.out


def test_client_help_lists_code_once(node):
    r = node.run("--help")
    names = [ln.split()[0] for ln in r.out.split("Commands:")[1].splitlines() if ln.strip()]
    assert names.count("code") == 1
    assert {"code", "data"} <= set(names)


def test_no_color_in_pipe_and_with_no_color(node, src):
    node.run("code", "set", "col.or", "-s", src("return 1"))
    r = node.run("code", "get", "col.or", env={"NO_COLOR": "1"})
    assert "\x1b[" not in r.out
