"""A job's entries read their fields from the stored value (`_jobentry`)
and make DistKV's per-entry lock only when they save: what each of the
two entries per job costs a runner of 10,000 jobs.  Against an
in-process DistKV server, as DistKV's own `AttrClientEntry` behaves."""

from distkv_ext.run import STATE_PREFIX, StateEntry
from distkv_ext.run._entry import RunnerEntry
from tests.helpers import wait_for
from tests.test_state_writes import StatesRoot

BASE = STATE_PREFIX + ("any", "ef")
PATH = BASE + ("j",)


async def test_fields_read_the_value_and_a_local_change_wins_until_the_next(client):
    async with client.mirror(BASE, root_type=StatesRoot, need_wait=True) as root:
        await client.set(PATH, value={"node": "r5", "runs": 3, "reason": "started"})
        st = root.follow(("j",), create=True)
        await wait_for(lambda: st.node == "r5", timeout=10, what="the state")
        assert (st.runs, st.reason, st.stopped, st.backoff) == (3, "started", 0, 0)  # absent: the class default
        assert "_lock" not in vars(st) and "runs" not in vars(st)  # nothing copied, no lock yet

        st.runs = 4
        st.node = None
        assert (st.runs, st.node, st.value["runs"]) == (4, None, 3)  # set, not yet saved
        await st.save()
        assert "_lock" in vars(st)  # made by the first save
        assert (await client.get(PATH)).value == dict(st.get_value())
        assert (await client.get(PATH)).value["runs"] == 4

        # another node's write replaces everything, a field set and not saved too
        st.reason = "mine, unsaved"
        await client.set(PATH, value={"node": "r2", "last_node": "r2"}, chain=st.chain)
        await wait_for(lambda: st.node == "r2", timeout=10, what="the other write")
        assert (st.runs, st.reason, st.last_node) == (0, "", "r2")
        del st.node  # a local change undone: the value's again
        assert st.node == "r2"


def test_class_defaults_and_a_value_that_is_no_mapping():
    assert (RunnerEntry.delay, RunnerEntry.repeat, StateEntry.backoff, StateEntry.reason) == (100, 0, 0, "")

    class Parent:
        _path = ("x",)
        client = None

        @property
        def root(self):
            return self

        def entry_changed(self, entry):
            pass

    r = RunnerEntry(Parent(), "j")
    r.value = ["not", "a", "job"]
    assert (r.code, r.delay, r.target) == (None, 100, 0)
    r.value = {"code": ["p"], "delay": 5}
    assert (r.code, r.delay, r.target) == (["p"], 5, 0)
