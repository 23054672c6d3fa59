"""Bad input through the real ``distkv`` command: every refusal has its
exit status and its one line, and leaves the store byte for byte as it
was (a dump of the whole store, ``get_tree`` of the root, before and
after each command).

Exit status 2: a malformed option (click's usage block, then the
``Error:`` line); 3: nothing matches; 4: input refused.  The cases of
issue 16 are marked ``# issue``; the rest are ours.  Deploy trees have
their own file (test_hostile_deploy.py), library-level cases too
(test_hostile_lib.py).
"""

import json
import os
import subprocess
import time

import pytest
from moat.util import P

from distkv_ext.codekit.core.digest import pin_matches
from tests.helpers import DISTKV, query, store_unchanged

pytestmark = pytest.mark.usefixtures("node")

P_PY = "return a\n"
SYN_PY = "x = 1\nif x:\nreturn 2\n"  # Python: line 3, "... 'if' statement on line 2"
BR_PY = "x = (1,\n  2]\n"  # Python: line 2, "... '(' on line 1"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    for name, text in (
        ("p.py", P_PY),
        ("m.py", "X = 1\n"),
        ("syn.py", SYN_PY),
        ("br.py", BR_PY),
        ("list.yaml", "- 1\n"),
    ):
        (d / name).write_text(text, encoding="utf-8")
    (d / "bad.yaml").write_text("a: [1,\n", encoding="utf-8")
    (d / "bin.yaml").write_bytes(b"\xff\xfe\n")
    (d / "dir.yaml").mkdir()
    return d


@pytest.fixture(scope="module")
def stored(node, files):
    """What the refusals must leave alone: a procedure, a job with output,
    a procedure with a pinned job (pinned to its current version, the
    second; the first is in the history)."""
    cwd = str(files)

    def run(*args, input=None):
        r = node.run(*args, input=input)
        assert r.returncode == 0, r.err
        return r

    run("code", "set", "hi.p", "--var", "a", "-s", os.path.join(cwd, "p.py"))
    run("code", "set", "hi.pin", "-s", "-", input="return 1\n")
    run("run", "set", "hi.pinjob", "-c", "hi.pin", "-g", "hig", "--pin")
    run("code", "set", "hi.pin", "-s", "-", input="return 2\n")
    run("run", "set", "hi.pinjob", "-g", "hig", "--pin")
    run("run", "set", "hi.j", "-c", "hi.p", "-g", "hig", "-e", "a", "1")

    async def output(c):  # what a runner would have recorded: 200 lines of one run
        lines = [[time.time(), "stdout", f"line {i}"] for i in range(200)]
        await c.set(P(":.distkv.output.any.hig.hi.j.1"), value={"node": "n1", "run": 1, "started": 1, "lines": lines})

    query(node.configs[0], output)
    hashes = {v["n"]: v["hash"] for v in json.loads(run("code", "history", "hi.pin", "-o", "json").out)}
    return hashes


def slow(cases):
    """Our own cases (beyond the issue's): marked slow, so that ./dev.sh
    fast stays quick; ./dev.sh test runs them."""
    return [pytest.param(*c, marks=pytest.mark.slow) for c in cases]


def usage_error(r, line):
    """Exit status 2: click's usage block, then exactly ``line``."""
    err = r.err.splitlines()
    assert (r.returncode, err[-1]) == (2, line), r.err
    assert all(x.startswith(("Usage: ", "Try ")) or not x for x in err[:-1]), r.err


SET = ["run", "set", "hi.new", "-c", "hi.p", "-g", "hig", "-e", "a", "1"]
ALL = ["run", "all", "-g", "hig"]

# (arguments, the Error line) of usage errors: exit status 2
USAGE = [
    # issue: numbers of run set
    (SET + ["-r", "nan"], "Invalid value for '-r' / '--repeat': must be a finite number, not nan"),
    (SET + ["-r", "inf"], "Invalid value for '-r' / '--repeat': must be a finite number, not inf"),
    (SET + ["-d", "nan"], "Invalid value for '-d' / '--delay': must be a finite number, not nan"),
    (SET + ["-k", "nan"], "Invalid value for '-k' / '--ok-after': must be a finite number, not nan"),
    (SET + ["-t", "nan"], "Invalid value for '-t' / '--time': must be a finite number, not nan"),
    (SET + ["-t", "1e300"], "Invalid value for '-t' / '--time': must be at most 3155760000 (100 years), not 1e+300"),
    # issue: options of the runner daemon
    (ALL + ["--weight", "inf"], "Invalid value for --weight: must be a finite number, not inf"),
    (ALL + ["--weight", "-1"], "Invalid value for --weight: must be at least 0, not -1"),
    (ALL + ["--weight", "nan"], "Invalid value for --weight: must be a finite number, not nan"),
    (ALL + ["--heartbeat", "nan"], "Invalid value for --heartbeat: must be a finite number, not nan"),
    (ALL + ["--heartbeat", "0"], "Invalid value for --heartbeat: must be at least 0.01, not 0"),
    (ALL + ["--heartbeat", "-1"], "Invalid value for --heartbeat: must be at least 0.01, not -1"),
    (ALL + ["--timeout", "nan"], "Invalid value for --timeout: must be a finite number, not nan"),
    (ALL + ["--timeout", "inf"], "Invalid value for --timeout: must be a finite number, not inf"),
    # issue: an unhashable literal (was exit 1)
    (
        ["code", "set", "hi.e", "-s", "p.py", "-e", "x", "{[]: 1}"],
        "Invalid value for -e x: '{[]: 1}' is not a Python literal",
    ),
] + slow(
    [
        # ours: more numbers and times
        (SET + ["-b", "0.5"], "Invalid value for '-b' / '--backoff': must be at least 1, not 0.5"),
        (SET + ["-b", "1e9"], "Invalid value for '-b' / '--backoff': must be at most 1000, not 1e+09"),
        (SET + ["--max-tries", "-1"], "Invalid value for '--max-tries': must be at least 0, not -1"),
        (SET + ["--max-tries", "1.5"], "Invalid value for '--max-tries': must be a whole number, not 1.5"),
        (SET + ["--max-delay", "inf"], "Invalid value for '--max-delay': must be a finite number, not inf"),
        (SET + ["-r", "-5"], "Invalid value for '-r' / '--repeat': must be at least 0, not -5"),
        (SET + ["-r", "4e9"], "Invalid value for '-r' / '--repeat': must be at most 3155760000 (100 years), not 4e+09"),
        (SET + ["-t", "9999-01-01"], "Invalid value for '-t' / '--time': '9999-01-01' is more than 100 years away"),
        (SET + ["-t", "1900-01-01"], "Invalid value for '-t' / '--time': '1900-01-01' is before 1970 (0 means never)"),
        (
            SET + ["-t", "tomorrowish"],
            "Invalid value for '-t' / '--time': 'tomorrowish': use now, never, seconds from now, or an ISO time",
        ),
        (ALL + ["--weight", "1e6"], "Invalid value for --weight: must be at most 1000, not 1e+06"),
        (ALL + ["--heartbeat", "0.001"], "Invalid value for --heartbeat: must be at least 0.01, not 0.001"),
        (ALL + ["--heartbeat", "2"], "runner.timeout (2) must be at least twice runner.heartbeat (2)"),
        # ours: values of variables, names, paths
        (SET + ["-e", "b", "1e400"], "Invalid value for -e b: inf is not a finite number"),
        (SET + ["-e", "b", "{1, 2}"], "Invalid value for -e b: a set cannot be stored; use a list"),
        (SET + ["-e", "b", "1j"], "Invalid value for -e b: a complex number (1j) cannot be stored"),
        (
            SET + ["-e", "b", "99999999999999999999999"],
            "Invalid value for -e b: an integer of 23 digits is too large to store (more than 64 bits)",
        ),
        (
            SET + ["-e", "b", "{'k': [1, {2: 3}]}"],
            "Invalid value for -e b: k[1]: key 2 is not text (keys must be strings)",
        ),
        (SET + ["-e", "class", "1"], "Invalid value for -e class: 'class' cannot be a variable name"),
        (SET + ["-v", "a-b", "x"], "Invalid value for -v a-b: 'a-b' cannot be a variable name"),
        (SET + ["-p", "b", "a..b"], "Invalid value for -p b: 'a..b' is not a valid path: Cannot parse 'a..b' at 2"),
        (
            ["run", "set", "hi.new", "-c", "a..b", "-g", "hig"],
            "Invalid value for '-c' / '--code': 'a..b' is not a valid path: Cannot parse 'a..b' at 2",
        ),
        (
            ["run", "set", "hi.new", "-c", "hi.p", "-g", "", "-e", "a", "1"],
            "Invalid value for '-g' / '--group': a group needs a name",
        ),
        (SET + ["-i", "two\nlines"], "Invalid value for '-i' / '--info': must be one line of text"),
        (
            ["code", "set", "hi.e", "-s", "p.py", "-e", "x", "nan"],
            "Invalid value for -e x: 'nan' is not a Python literal",
        ),
        (
            ["code", "set", "hi.e", "-s", "p.py", "--var", "class"],
            "Invalid value for '--var': 'class' cannot be a variable name",
        ),
        (
            ["code", "set", "hi.e", "-s", "p.py", "-r", "a-b"],
            "Invalid value for '-r' / '--requires': 'a-b' is not a module name: 'a-b' cannot be imported (like util.pid)",
        ),
        (
            ["module", "set", "hi.m", "-s", "p.py", "-r", "x.1"],
            "Invalid value for '-r' / '--requires': 'x.1' is not a module name: '1' cannot be imported (like util.pid)",
        ),
        (["code", "list", "hi", "-d", "-1"], "Invalid value for '-d' / '--depth': -1 is not in the range x>=0."),
        (
            ["code", "diff", "hi.p", "p.py", "-U", "-1"],
            "Invalid value for '-U' / '--unified': -1 is not in the range 0<=x<=1000.",
        ),
        (["code", "revert", "hi.p", "--to", "0"], "Invalid value for '--to': 0 is not in the range x>=1."),
        (["code", "call", "hi.p", "-e", "a", "nan"], "Invalid value for -e a: 'nan' is not a Python literal"),
        (["run", "logs", "hi.j", "-g", "hig", "--run", "0"], "Invalid value for '--run': 0 is not in the range x>=1."),
    ]
)


def _args(case):
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize(("args", "line"), USAGE, ids=[" ".join(_args(c)[1:]) for c in USAGE])
def test_malformed_option_is_a_usage_error(node, files, stored, args, line):
    cwd = os.getcwd()
    os.chdir(files)
    try:
        with store_unchanged(node.configs[0]):
            r = node.run(*args, timeout=30)
    finally:
        os.chdir(cwd)
    usage_error(r, "Error: " + line)


# (arguments, exit status, the whole of stderr) of refusals
REFUSED = [
    # issue: module names must be importable
    (["module", "set", "a-b", "-s", "m.py"], 4, "'a-b' is not a module name: 'a-b' cannot be imported (like util.pid)"),
    # issue: the compile check names the lines Python names
    (
        ["code", "set", "hi.syn", "-s", "syn.py"],
        4,
        "syn.py:3: expected an indented block after 'if' statement on line 2 (for hi.syn)",
    ),
    (
        ["code", "set", "hi.br", "-s", "br.py"],
        4,
        "br.py:2: closing parenthesis ']' does not match opening parenthesis '(' on line 1 (for hi.br)",
    ),
    # issue: code delete of a procedure that a job runs (was exit 0)
    (["code", "delete", "hi.p"], 4, "hi.p is run by job hi.j (any hig); use --force to delete it anyway"),
    # issue: run logs that match nothing (was exit 0, no output)
    (["run", "logs", "hi.j", "-g", "hig", "--from", "nosuch"], 3, "no output of job hi.j from node nosuch is stored"),
    (["run", "logs", "hi.j", "-g", "hig", "--run", "99"], 3, "no output of job hi.j of run 99 is stored"),
] + slow(
    [
        # ours
        (
            ["module", "set", "a.class", "-s", "m.py"],
            4,
            "'a.class' is not a module name: 'class' cannot be imported (like util.pid)",
        ),
        (
            ["module", "set", "hi.1x", "-s", "m.py"],
            4,
            "'hi.1x' is not a module name: '1x' cannot be imported (like util.pid)",
        ),
        (
            ["module", "set", "hi.syn", "-s", "syn.py"],
            4,
            "syn.py:3: expected an indented block after 'if' statement on line 2 (for hi.syn)",
        ),
        (["module", "set", "hi.self", "-s", "m.py", "-r", "hi.self"], 4, "module hi.self cannot require itself"),
        (
            ["run", "logs", "hi.j", "-g", "hig", "--from", "n1", "--run", "2"],
            3,
            "no output of job hi.j from node n1 and of run 2 is stored",
        ),
        (["run", "set", "hi.new", "-c", "hi.p", "-g", "hig"], 4, "procedure hi.p needs a: give them with -v/-e/-p"),
    ]
)


@pytest.mark.parametrize(("args", "status", "message"), REFUSED, ids=[" ".join(_args(c)[:3]) for c in REFUSED])
def test_refused_with_one_line(node, files, stored, args, status, message):
    cwd = os.getcwd()
    os.chdir(files)
    try:
        with store_unchanged(node.configs[0]):
            r = node.run(*args, timeout=30)
    finally:
        os.chdir(cwd)
    assert r.outcome == (status, "", f"Error: {message}\n")


def test_revert_of_a_pinned_procedure_names_the_pins(node, stored):
    old, cur = stored[1], stored["current"]
    with store_unchanged(node.configs[0]):
        r = node.run("code", "revert", "hi.pin")
    assert r.outcome == (
        4,
        "",
        f"Error: reverting hi.pin to version 1 ({old}) stops jobs pinned to another version: job hi.pinjob"
        f" (any hig) is pinned to {cur} (the current version); --repin pins them to the reverted version,"
        " --force reverts anyway\n",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # issue: an unreadable or malformed configuration file (was a ruyaml traceback)
        ("bad.yaml", "line 2: not YAML: expected the node content, but found '<stream end>'"),
        ("dir.yaml", "it is a directory"),
        # ours
        ("list.yaml", "must be a mapping of settings (key: value), not a list"),
        ("bin.yaml", "not UTF-8 text"),
        ("nowhere.yaml", "No such file or directory"),
    ],
)
def test_bad_configuration_file_is_one_line(node, files, name, message):
    with store_unchanged(node.configs[0]):
        r = node.run("code", "list", "hi", config=str(files / name))
    assert r.outcome == (2, "", f"Error: cannot use the configuration {files / name}: {message}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["code", "list", "hi"],  # issue
        ["run", "logs", "hi.j", "-g", "hig", "-f"],  # issue: it follows for ever otherwise
        ["code", "get", "hi.p"],  # ours
    ],
    ids=["code list", "run logs -f", "code get"],
)
def test_closed_pipe_is_quiet_exit_141(node, stored, args):
    """The reader of stdout has gone (as ``| head -1`` does after its line)."""
    rd, wr = os.pipe()
    os.close(rd)
    try:
        with store_unchanged(node.configs[0]):
            p = subprocess.Popen(
                [DISTKV, "-c", node.configs[0], "client", *args],
                stdout=wr,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            os.close(wr)
            wr = None
            _, err = p.communicate(timeout=30)
    finally:
        if wr is not None:
            os.close(wr)
    assert (p.returncode, err.decode()) == (141, "")


def test_revert_repin_and_delete_force(node, stored):
    """The ways past the refusals above (run last: they change the store)."""
    r = node.run("code", "revert", "hi.pin", "--repin")
    assert r.outcome == (0, "reverted: hi.pin\nrepinned: job hi.pinjob (any hig)\n", "")
    pin = json.loads(node.run("run", "get", "hi.pinjob", "-g", "hig", "-o", "json").out)["pin"]
    code = json.loads(node.run("code", "get", "hi.pin", "-o", "json").out)
    assert code["code"] == "return 1\n"  # the version brought back ...
    assert pin_matches(pin, code, {}.get)  # ... is what the job is pinned to (it needs no modules)
    r = node.run("code", "delete", "hi.p", "--force")
    assert r.outcome == (0, "deleted: hi.p\n", "")
