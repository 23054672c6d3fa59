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
