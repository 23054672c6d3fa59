"""Pure parts of the runner: assignment, schedule, chains, sd_notify."""

import socket
import time

from distkv_ext.run import RunnerEntry, StateEntry
from distkv_ext.run._assign import assign, owner
from distkv_ext.run._entry import chain_covers
from distkv_ext.run._explain import _Shim, explain_job
from distkv_ext.run._schedule import next_start, retry_delay
from distkv_ext.run._sdnotify import notify, watchdog_interval


def test_assign_spreads_by_count_and_weight():
    jobs = [f"j{i}" for i in range(30)]
    a = assign(jobs, {"a": 1, "b": 1, "c": 1})
    counts = {n: list(a.values()).count(n) for n in "abc"}
    assert counts == {"a": 10, "b": 10, "c": 10}
    a = assign(jobs, {"a": 2, "b": 1})
    assert list(a.values()).count("a") == 20
    assert set(assign(jobs, {"a": 1, "b": 0}).values()) == {"a"}
    assert set(assign(jobs, {"a": 0}).values()) == {None}


def test_assign_moves_only_the_excess_to_a_new_node():
    jobs = [f"j{i}" for i in range(30)]
    before = assign(jobs, {"a": 1, "b": 1})
    after = assign(jobs, {"a": 1, "b": 1, "c": 1}, current=before)
    moved = [j for j in jobs if before[j] != after[j]]
    assert len(moved) == 10 and all(after[j] == "c" for j in moved)


def test_assign_moves_only_a_dead_nodes_jobs():
    jobs = [f"j{i}" for i in range(30)]
    before = assign(jobs, {"a": 1, "b": 1, "c": 1})
    after = assign(jobs, {"a": 1, "b": 1}, current={j: n for j, n in before.items() if n != "c"})
    assert all(after[j] == before[j] for j in jobs if before[j] != "c")


def test_owner_is_deterministic():
    assert owner("x", {"a": 1, "b": 1}) == owner("x", {"b": 1, "a": 1})


def shim(cls, **kw):
    return _Shim(cls, kw)


def test_next_start():
    now = 1000.0
    e = shim(RunnerEntry, code="p", target=900)
    assert next_start(e, shim(StateEntry), now) == (900, "target")
    assert next_start(e, shim(StateEntry, started=950, stopped=960), now) == (None, "done")
    e = shim(RunnerEntry, code="p", target=900, repeat=60)
    assert next_start(e, shim(StateEntry, started=950, stopped=960), now) == (1020, "repeat")
    e = shim(RunnerEntry, code="p", target=900, delay=10, backoff=2, max_delay=25, max_tries=4)
    st = shim(StateEntry, started=950, stopped=960, backoff=3)
    assert next_start(e, st, now) == (985, "retry after error 3")  # 10 * 2**2 = 40, capped at 25
    assert next_start(e, shim(StateEntry, started=950, stopped=960, backoff=4), now) == (None, "gave up after 4 errors")
    assert next_start(e, shim(StateEntry, started=950, node="x"), now) == (None, "running on x")
    assert next_start(shim(RunnerEntry, code="p"), shim(StateEntry), now) == (None, "no target")
    st = shim(StateEntry, started=950, stopped=960, resume=True, reason="moved to b")
    assert next_start(shim(RunnerEntry, code="p", target=900), st, now) == (960, "resume (moved to b)")
    assert retry_delay(shim(RunnerEntry, delay=100, backoff=1.1), 1) == 100


def test_explain():
    now = time.time()
    res = explain_job({"code": "p", "target": now + 60}, {}, now)
    assert res["verdict"] == "starts in 60 s (target)"
    res = explain_job({"code": "p", "target": 1}, {"node": "b", "started": now - 5, "runs": 1}, now)
    assert res["verdict"] == "running on b since 5 s"


def test_chain_covers():
    old = {"node": "s1", "tick": 5}
    assert chain_covers({"node": "s1", "tick": 6}, old)
    assert not chain_covers({"node": "s1", "tick": 4}, old)
    assert chain_covers({"node": "s2", "tick": 1, "prev": {"node": "s1", "tick": 5}}, old)
    assert chain_covers({"node": "s2", "tick": 1}, old)  # unknown: taken as later


def test_sd_notify(tmp_path):
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        assert notify("READY=1", "STATUS=hi", env={"NOTIFY_SOCKET": path})
        assert s.recv(100) == b"READY=1\nSTATUS=hi"
    assert not notify("READY=1", env={})
    assert watchdog_interval(env={"WATCHDOG_USEC": "3000000"}) == 1.5
    assert watchdog_interval(env={"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval(env={}) is None


def test_own_errors_leave_out_a_stop_that_came_with_them():
    """A job whose code fails just as it is stopped raises a group of its
    error and the cancellation: the error is the run's outcome (it was
    not caught as one and crashed the runner)."""
    import trio

    from distkv_ext.run._job import own_errors

    err, stop = ImportError("requires form a cycle"), trio.Cancelled._create()
    assert own_errors(err) == [err]
    assert own_errors(stop) == []
    assert own_errors(trio.MultiError([stop, err])) == [err]
    assert own_errors(BaseExceptionGroup("g", [stop, BaseExceptionGroup("h", [KeyboardInterrupt(), err])])) == [err]
    assert own_errors(trio.MultiError([stop, KeyboardInterrupt()])) == []


async def test_conflict_verdict_applies_after_the_echo_window(autojump_clock):
    """After our own write, an update that does not include it counts as
    the late echo of an older write (held back) only for ECHO_WINDOW; if
    nothing follows, it is the servers' verdict on a conflict (a healed
    partition) and applies: a runner kept its own stale view for good."""
    import anyio
    from moat.util import Path, attrdict

    changes = []
    async with anyio.create_task_group() as tg:

        class Root:
            _path = Path("state")
            client = None

            @property
            def root(self):
                return self

            async def spawn(self, fn):  # a coroutine, as DistKV 0.65's ClientRoot.spawn
                tg.start_soon(fn)

            def state_changed(self, state, old_node):
                changes.append(state.node)

        root = Root()
        st = StateEntry(root, "j")
        st._written, st._written_at = attrdict(node="s2", tick=6), time.monotonic()
        st.chain = attrdict(node="s1", tick=13, prev=attrdict(node="s2", tick=2))
        await st.set_value({"node": "r1"})
        assert st.node is None and changes == []  # held back: maybe a late echo
        await anyio.sleep(StateEntry.ECHO_WINDOW + 1)
        assert st.node == "r1" and changes == ["r1"]
