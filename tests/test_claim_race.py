"""A claim that reached us late: the other node's state write arrives
while we settle.  We must not write over it (both would run the job)."""

import anyio

from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._claim import Phase
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

STARTS: list[str] = []


async def test_a_state_written_by_a_live_node_while_we_settle_wins(autojump_clock, client, cr):
    STARTS.clear()
    await cr.add(
        "rec",
        code="import tests.test_claim_race as t\nt.STARTS.append((_entry.root.node, _entry.state.reason))\nreturn 1",
    )
    cfg = dict(FAST, settle=1.0)
    r1 = await AnyRunnerRoot.as_handler(client, subpath=("any", "cr"), code=cr, node="n1", cfg=cfg)
    # n2 is a live member that is assigned nothing (weight 0): its name in
    # the state is that of a live node that won the job
    r2 = await AnyRunnerRoot.as_handler(client, subpath=("any", "cr"), code=cr, node="n2", cfg=dict(cfg, weight=0))
    await r1.wait_ready()
    await r2.wait_ready()
    job = await add_job(r1, "j", "rec")
    await wait_for(lambda: any(r.claim.phase is Phase.CLAIMING for r in r1.scheduler.jobs.values()))
    st = r1.state_for(job.job_path)
    r2.scheduler.stopping = True  # n2 keeps what its state says (it would release a job it does not run)
    await client.set(st._path, value={"node": "n2", "last_node": "n2", "started": 1.0, "runs": 1, "reason": "target"})
    await wait_for(lambda: not r1.scheduler.jobs, what="n1's claim ends")
    await anyio.sleep(2)
    assert STARTS == [] and st.node == "n2"  # n1 wrote nothing and ran nothing


async def test_a_first_claim_stays_conditional_when_a_state_arrives_during_its_write(autojump_clock, cluster, cr):
    """n1 writes the first state of a job (none existed: its write requires
    that none does); another node's state arrives while the write waits its
    turn (behind the runner's other writes).  The write stays conditional
    on the absence it began with: it fails, and the other node's state
    stands.  (It used to take the arriving value's chain and write over
    the other node's claim.)"""
    from moat.util import NotGiven

    STARTS.clear()
    await cr.add("rec2", code="import tests.test_claim_race as t\nt.STARTS.append(_entry.root.node)\nreturn 1")
    async with cluster.client() as c1, cluster.client() as other:
        r1 = await AnyRunnerRoot.as_handler(c1, subpath=("any", "cw"), code=cr, node="n1", cfg=FAST)
        await r1.wait_ready()
        st = r1.state_for(("j",))
        assert st.value is NotGiven
        theirs = {"node": "n9", "last_node": "n9", "started": 1.0, "runs": 7, "reason": "target"}
        async with st._lock:  # n1's write waits (as behind the runner's other writes) ...
            await add_job(r1, "j", "rec2")
            await wait_for(lambda: st._saving > 0, what="n1's write under way")
            await other.set(st._path, value=theirs)  # ... while another node's arrives
            await wait_for(lambda: st._held is not None, what="it reaches n1 during the write")
        await wait_for(lambda: st.node == "n9", what="n9's state taken in")
        stored = (await c1.get(st._path)).value
        assert (stored["node"], stored["runs"]) == ("n9", 7)
        assert STARTS == []  # n1's claim failed: it ran nothing
        await r1.stop()
