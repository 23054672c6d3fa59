"""Bad deploy trees, and deploys that stay in their lane, through the real
``distkv client code deploy``.

Every problem of a tree is listed (one line each, naming the file and
line) before anything is written: each refusal below asserts the whole
of stderr, exit status 4, and a store byte for byte unchanged (a dump of
the whole store before and after).  ``--prune`` removes only what an
earlier deploy of the same tree wrote.  The cases of issue 16 are marked
``# issue``.  The servers are this module's own (``--prune`` tests).
"""

import json
import os
import shutil

import pytest

from tests.helpers import running_node, store_dump, store_unchanged

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "deploy")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with running_node(tmp_path_factory.mktemp("hostile-deploy-node"), n=1) as nd:
        yield nd


def tree(root, files):
    """A deploy directory at ``root`` with ``files`` ({relative name: text})."""
    os.makedirs(root, exist_ok=True)
    for rel, text in files.items():
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
    return str(root)


def refused(node, root, problems, *args):
    """Deploy ``root``: exit 4, exactly ``problems`` listed, nothing written."""
    with store_unchanged(node.configs[0]):
        r = node.run("code", "deploy", root, *args)
    n = len(problems)
    want = "".join(p + "\n" for p in problems) + f"Error: {root}: {n} problem{'s' if n != 1 else ''}; nothing written\n"
    assert r.outcome == (4, "", want)
    return r


def test_half_deploy_is_refused_before_the_first_write(node, tmp_path):
    """issue: YAML dates, sets and timestamps passed --dry-run, then failed
    after modules and procedures were written."""
    root = tree(
        tmp_path / "t",
        {
            "modules/hd/util.py": "X = 1\n",
            "procs/hd/p.py": "# distkv:\n#   default: {when: 2020-01-01, tags: !!set {a, b}}\nreturn when\n",
            "jobs.yaml": "jobs:\n  - code: hd.p\n    group: hdg\n    data:\n      at: 2021-02-03T04:05:06\n",
        },
    )
    problems = [
        "procs/hd/p.py:2: default.when: a date (2020-01-01) cannot be stored; quote it to store it as text",
        "procs/hd/p.py:2: default.tags: a set cannot be stored; use a list",
        "jobs.yaml:5: job 1: data.at: a timestamp (2021-02-03T04:05:06) cannot be stored; quote it to store it as text",
    ]
    refused(node, root, problems, "--dry-run")
    refused(node, root, problems)


def test_every_problem_of_a_jobs_file_is_listed(node, tmp_path):
    root = tree(
        tmp_path / "t",
        {
            "procs/jf/p.py": "return 1\n",
            "jobs.yaml": (
                "defaults: {group: jfg}\n"
                "jobs:\n"
                "  - code: jf.p\n"
                "    repeat: 1e400\n"  # issue
                "    delay: .nan\n"  # issue
                "  - {code: jf.p, path: jf.two, 1: x}\n"  # issue: a key that is no text
                "  - code: jf.p\n"
                "    path: jf.three\n"
                "    group: [a]\n"  # ours from here
                "    node: {}\n"
                "  - code: jf.p\n"
                "    path: jf.four\n"
                "    target: 1900-01-01\n"
                "    backoff: 0\n"
                "    max_tries: 2.5\n"
                "    data: [1, 2]\n"
                '    info: "two\\nlines"\n'
                "    pin: maybe\n"
                "  - {code: 5}\n"
                "  - code: jf.p\n"
                "    path: jf.six\n"
                "    target: 1e300\n"
                "    ok_after: -1\n"
                "    data: {big: 123456789012345678901234567890, self: &s [*s], f: .inf}\n"
                "  - [not, a, mapping]\n"
            ),
        },
    )
    refused(
        node,
        root,
        [
            "jobs.yaml:4: job 1: repeat must be a finite number, not inf",
            "jobs.yaml:5: job 1: delay must be a finite number, not nan",
            "jobs.yaml:6: job 2 (jf.two): setting 1 is not text (settings are names like repeat)",
            "jobs.yaml:9: job 3 (jf.three): group must be a name, not ['a']",
            "jobs.yaml:10: job 3 (jf.three): node must be a name, not {}",
            "jobs.yaml:13: job 4 (jf.four): target '1900-01-01' is before 1970 (0 means never)",
            "jobs.yaml:14: job 4 (jf.four): backoff must be at least 1, not 0",
            "jobs.yaml:15: job 4 (jf.four): max_tries must be a whole number, not 2.5",
            "jobs.yaml:16: job 4 (jf.four): data must be a mapping of variable names to values",
            "jobs.yaml:17: job 4 (jf.four): info must be one line of text",
            "jobs.yaml:18: job 4 (jf.four): pin must be true or false (deploy pins the hash of what it deploys)",
            "jobs.yaml:19: job 5: path must be a path like heating.pump, not 5",
            "jobs.yaml:22: job 6 (jf.six): target 1e+300 is more than 100 years away",
            "jobs.yaml:23: job 6 (jf.six): ok_after must be at least 0, not -1",
            "jobs.yaml:24: job 6 (jf.six): data.big: an integer of 30 digits is too large to store (more than 64 bits)",
            "jobs.yaml:24: job 6 (jf.six): data.self[0]: contains itself (a YAML alias inside its own anchor?)",
            "jobs.yaml:24: job 6 (jf.six): data.f: inf is not a finite number",
            "jobs.yaml:25: job 7: must be a mapping of job settings",
        ],
    )


def test_every_problem_of_a_header_is_listed(node, tmp_path):
    root = tree(
        tmp_path / "t",
        {
            # issue: requires: 5 and mode: [a] (were exit 1 with a raw exception)
            "procs/hh/a.py": "# distkv:\n#   requires: 5\n#   mode: [a]\nreturn 1\n",
            # issue: a default that contains itself (was accepted)
            "procs/hh/b.py": "# distkv:\n#   default:\n#     me: &m {again: *m}\nreturn me\n",
            # ours: each setting wrong, and the code does not compile either
            "procs/hh/c.py": (
                "# distkv:\n"
                "#   vars: [1, class]\n"
                "#   default: {1: x, y: .nan}\n"
                "#   info: [x]\n"
                "#   requires: [a-b]\n"
                "#   colour: red\n"
                "return (\n"
            ),
            "procs/hh/d.py": "# distkv:\n#   mode: [unclosed\nreturn 1\n",
            "modules/hh/e.py": "# distkv:\n#   requires: [x.1]\n#   info: {a: b}\nX = 1\n",
            "modules/hh/a-b.py": "X = 1\n",
        },
    )
    refused(
        node,
        root,
        [
            "modules/hh/a-b.py: 'hh.a-b' is not a module name: 'a-b' cannot be imported (like util.pid)",
            "modules/hh/e.py:2: requires: 'x.1' is not a module name: '1' cannot be imported (like util.pid)",
            "modules/hh/e.py:3: info must be one line of text",
            "procs/hh/a.py:2: requires must be a list of module names, not 5",
            "procs/hh/a.py:3: mode must be one of sync, thread, async, process, process-async, not ['a']",
            "procs/hh/b.py:3: default.me.again: contains itself (a YAML alias inside its own anchor?)",
            "procs/hh/c.py:2: vars: 1 cannot be a variable name",
            "procs/hh/c.py:2: vars: 'class' cannot be a variable name",
            "procs/hh/c.py:3: default: 1 cannot be a variable name",
            "procs/hh/c.py:3: default.y: nan is not a finite number",
            "procs/hh/c.py:4: info must be one line of text",
            "procs/hh/c.py:5: requires: 'a-b' is not a module name: 'a-b' cannot be imported (like util.pid)",
            "procs/hh/c.py:6: unknown header setting colour (known: mode, vars, default, requires, info)",
            "procs/hh/c.py:7: '(' was never closed (for hh.c)",
            "procs/hh/d.py:2: not YAML: expected ',' or ']', but got '<stream end>'",
        ],
    )


def test_jobs_file_that_is_not_yaml(node, tmp_path):
    root = tree(tmp_path / "t", {"jobs.yaml": "jobs:\n  - code: a\n    data: {x: [1, 2}\n"})
    refused(node, root, ["jobs.yaml:3: not YAML: expected ',' or ']', but got '}'"])


def test_bad_tree_name_is_a_usage_error(node, tmp_path):
    root = tree(tmp_path / "t", {"procs/n/p.py": "return 1\n"})
    with store_unchanged(node.configs[0]):
        r = node.run("code", "deploy", root, "--name", "two\nlines")
    assert r.returncode == 2
    assert r.err.splitlines()[-1] == (
        "Error: Invalid value for '--name': 'two\\nlines' cannot name a deploy tree (printable text, at most 100 characters)"
    )


def _entries(node, *prefixes):
    return [e for e in store_dump(node.configs[0]) if e[0].startswith(prefixes)]


def test_prune_removes_only_what_the_tree_wrote(node, tmp_path):
    """issue: --prune deleted other groups' jobs and a procedure DIR never named."""
    for args in (
        ("code", "set", "other.proc", "-s", "-"),
        ("run", "set", "job.tick", "-c", "other.proc", "-g", "grp"),
        ("run", "set", "job.single", "-c", "other.proc", "-g", "grp2", "-n", "box"),
        ("run", "set", "job.every", "-c", "other.proc", "-g", "grp", "--all-nodes"),
        ("run", "set", "by.hand", "-c", "other.proc", "-g", "boiler"),  # by hand, in the tree's own group
    ):
        assert node.run(*args, input="return 0\n").returncode == 0
    others = _entries(node, ":.distkv.code.proc.other", ":.distkv.run")
    root = os.path.join(tmp_path, "deploy")
    shutil.copytree(EXAMPLE, root)
    # a first deploy with --prune removes nothing it did not write
    r = node.run("code", "deploy", root, "--prune")
    assert r.returncode == 0 and r.out.splitlines()[-2:] == [
        "note: deploy tree 'deploy' has no record of an earlier deploy: --prune removes nothing this time",
        "Deployed: 6 added, 0 changed, 0 removed, 0 unchanged.",
    ]
    assert [e for e in _entries(node, ":.distkv.code.proc.other", ":.distkv.run") if e in others] == others
    # the tree drops heating.report (procedure and job): only those go
    os.remove(os.path.join(root, "procs/heating/report.py"))
    with open(os.path.join(root, "jobs.yaml"), "w", encoding="utf-8") as f:
        f.write("jobs:\n  - {path: heating.pump.1, code: heating.pump, group: boiler, data: {pump: 1}, target: now}\n")
    r = node.run("code", "deploy", root, "--prune", "--dry-run", "--no-diff")
    assert r.outcome == (
        1,
        f"- procedure heating.report                         written by deploy tree 'deploy', no longer in {root}\n"
        "~ job heating.pump.1 (any boiler)                  jobs.yaml:2: job 1 (heating.pump.1)\n"
        f"- job heating.report (at pi1 boiler)               written by deploy tree 'deploy', no longer in {root}\n"
        "Plan: 0 to add, 1 to change, 2 to remove, 3 unchanged. Dry run: nothing written.\n",
        "",
    )
    assert node.run("code", "deploy", root, "--prune").returncode == 0
    assert node.run("code", "get", "heating.report").returncode == 3
    now = _entries(node, ":.distkv.code.proc.other", ":.distkv.run")
    assert [e for e in others if e in now] == others  # every entry of others, unchanged


def test_an_entry_belongs_to_one_tree(node, tmp_path):
    a = tree(tmp_path / "a", {"procs/own/shared.py": "return 'a'\n"})
    b = tree(tmp_path / "b", {"procs/own/shared.py": "return 'b'\n", "procs/own/b.py": "return 1\n"})
    assert node.run("code", "deploy", a).returncode == 0
    refused(
        node,
        b,
        [
            "procs/own/shared.py: procedure own.shared belongs to deploy tree 'a'; an entry belongs to one tree"
            " (--take-over moves it to this one)"
        ],
    )
    r = node.run("code", "deploy", b, "--take-over", "--no-diff")
    assert r.outcome == (
        0,
        "+ procedure own.b                                  procs/own/b.py\n"
        "~ procedure own.shared                             procs/own/shared.py\n"
        "note: takes procedure own.shared over from deploy tree 'a'\n"
        "Deployed: 1 added, 1 changed, 0 removed, 0 unchanged.\n",
        "",
    )
    # tree a no longer has it: its --prune leaves it to b
    os.remove(os.path.join(a, "procs/own/shared.py"))
    with open(os.path.join(a, "procs/own/keep.py"), "w", encoding="utf-8") as f:
        f.write("return 2\n")
    r = node.run("code", "deploy", a, "--prune")
    assert r.outcome == (
        0,
        "+ procedure own.keep                               procs/own/keep.py\nDeployed: 1 added, 0 changed, 0 removed, 0 unchanged.\n",
        "",
    )
    assert json.loads(node.run("code", "get", "own.shared", "-o", "json").out)["code"] == "return 'b'\n"


def test_an_entry_deleted_by_hand_is_no_longer_the_other_trees(node, tmp_path):
    """A procedure tree a wrote, deleted by hand, is free for tree b (the
    scale benchmark's second size was refused so); a's manifest loses it,
    so a's --prune later never removes b's."""
    a = tree(tmp_path / "da", {"procs/gone/p.py": "return 'a'\n", "procs/gone/stay.py": "return 1\n"})
    assert node.run("code", "deploy", a).returncode == 0
    assert node.run("code", "delete", "gone.p").returncode == 0
    b = tree(tmp_path / "db", {"procs/gone/p.py": "return 'a'\n"})
    r = node.run("code", "deploy", b, "--no-diff")
    assert r.outcome == (
        0,
        "+ procedure gone.p                                 procs/gone/p.py\n"
        "note: deploy tree 'da' listed procedure gone.p, no longer stored as it wrote it: this tree's now\n"
        "Deployed: 1 added, 0 changed, 0 removed, 0 unchanged.\n",
        "",
    )
    # the same value as a wrote: a's manifest must not list it any more
    os.remove(os.path.join(a, "procs/gone/p.py"))
    r = node.run("code", "deploy", a, "--prune")
    assert r.outcome == (0, "No changes (1 unchanged).\n", "")
    assert json.loads(node.run("code", "get", "gone.p", "-o", "json").out)["code"] == "return 'a'\n"


def test_an_entry_changed_by_hand_is_not_pruned(node, tmp_path):
    root = tree(tmp_path / "t", {"procs/ch/one.py": "return 1\n", "procs/ch/two.py": "return 2\n"})
    assert node.run("code", "deploy", root).returncode == 0
    assert node.run("code", "set", "ch.two", "-s", "-", input="return 'mine'\n").returncode == 0
    os.remove(os.path.join(root, "procs/ch/two.py"))
    r = node.run("code", "deploy", root, "--prune")
    assert r.outcome == (
        0,
        "= not pruned: procedure ch.two: changed since deploy tree 't' wrote it; no longer the tree's\n"
        "No changes (1 unchanged).\n",
        "",
    )
    assert json.loads(node.run("code", "get", "ch.two", "-o", "json").out)["code"] == "return 'mine'\n"
