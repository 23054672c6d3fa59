"""Shell completion: in-process with asyncclick's ShellComplete, and once
through real bash against a real server."""

import os
import subprocess
import sys

from asyncclick.shell_completion import BashComplete

from distkv_ext.codekit.cli import complete as callbacks
from distkv_ext.devtools import complete

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def values(args, incomplete):
    comp = BashComplete(complete.root_command(), {}, "distkv", complete.COMPLETE_VAR)
    return [c.value for c in await comp.get_completions(args, incomplete)]


async def test_commands_options_and_cached_paths(monkeypatch):
    monkeypatch.setattr(
        callbacks,
        "CACHE",
        {
            "code": ["heating.pump", "heating.valve", "x.y"],
            "group": ["boiler", "lab"],
            "module": ["util.pid"],
            "job": ["pump"],
        },
    )
    assert await values(["client"], "") == ["code", "module", "run"]
    assert set(await values(["client", "code"], "")) >= {"set", "get", "list", "delete", "diff", "call"}
    assert await values(["client", "code", "get"], "heat") == ["heating.pump", "heating.valve"]
    assert await values(["client", "module", "delete"], "u") == ["util.pid"]
    assert await values(["client", "run", "all", "-g"], "") == ["boiler", "lab"]
    assert await values(["client", "run", "set", "pump", "-c"], "x") == ["x.y"]
    assert "--all-nodes" in await values(["client", "run", "all"], "--a")
    assert await values(["-c", "f.yaml", "client", "code", "set", "p", "--"], "--asy") == ["--async"]


def test_through_real_bash(node):
    node.run("code", "set", "comp.one", "-s", "-", input="return 1")
    node.run("code", "set", "comp.two", "-s", "-", input="return 2")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    script = (
        f"source {TOP}/completions/distkv.bash; "
        f"COMP_WORDS=(distkv -c {node.configs[0]} client code call comp.); COMP_CWORD=6; "
        '_distkv_completion; echo "${COMPREPLY[@]}"'
    )
    res = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=60, check=False)
    assert res.stdout.decode().split() == ["comp.one", "comp.two"], res.stderr.decode()


async def items(args, incomplete):
    comp = BashComplete(complete.root_command(), {}, "distkv", complete.COMPLETE_VAR)
    return [(c.type, c.value) for c in await comp.get_completions(args, incomplete)]


async def test_files_and_the_jobs_of_the_group_given(monkeypatch):
    monkeypatch.setattr(
        callbacks,
        "CACHE",
        {
            "job": ["pump", "poll", "probe"],
            "jobs_of": {"any boiler": ["pump"], "all boiler": ["poll"], "single lab pi1": ["probe"]},
        },
    )
    assert await items(["client", "code", "set", "p", "-s"], "pu") == [("file", "pu")]
    assert await items(["client", "module", "set", "m", "-s"], "") == [("file", "")]
    assert await items(["client", "code", "get", "p", "-s"], "") == [("file", "")]
    assert await items(["client", "code", "diff", "p"], "x") == [("file", "x")]
    assert await items(["client", "module", "diff", "m"], "") == [("file", "")]
    assert await values(["client", "run", "why", "-g", "boiler"], "p") == ["pump"]
    assert await values(["client", "run", "why", "-g", "boiler", "--all-nodes"], "") == ["poll"]
    assert await values(["client", "run", "logs", "-g", "lab", "-n", "pi1"], "") == ["probe"]
    assert await values(["client", "run", "why", "-g", "nogroup"], "") == []
    assert await values(["client", "run", "why"], "p") == ["poll", "probe", "pump"]


def test_only_our_commands_are_completed():
    for words, cword, want in (
        (["distkv", "client", "data", ""], 3, False),
        (["distkv", "-c", "f.yaml", "client", "data", "get", ""], 6, False),
        (["distkv", "server", ""], 2, False),
        (["distkv", "client", ""], 2, True),
        (["distkv", "-c", "f.yaml", "client", "-h", "x", "code", "get", ""], 8, True),
        (["distkv", "client", "run", "why", ""], 4, True),
        (["distkv", ""], 1, True),
    ):
        assert complete.ours(words, cword) is want, words


def test_distkvs_own_commands_get_nothing_through_real_bash():
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    script = (
        f"source {TOP}/completions/distkv.bash; "
        "COMP_WORDS=(distkv client data ''); COMP_CWORD=3; "
        '_distkv_completion; echo "[${COMPREPLY[@]}]"'
    )
    res = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=60, check=False)
    assert res.stdout.decode().strip() == "[]", res.stderr.decode()
