"""DistKV 0.65's own any-node runner, through its Python API (its CLI
``distkv client job run`` crashes).  ``python bench/distkv_runner.py CFG GROUP NAME``."""

import sys

import anyio


async def main(cfg_path, group, name):
    from distkv.client import open_client
    from distkv.code import CodeRoot
    from distkv.runner import AnyRunnerRoot
    from moat.util import combine_dict, yload

    with open(cfg_path, encoding="utf-8") as f:
        cfg = yload(f, attr=True)
    cfg = combine_dict({"connect": {"name": name}}, cfg)
    async with open_client(**cfg) as c:
        cr = await CodeRoot.as_handler(c)
        # the fastest settings asyncactor accepts (cycle >= 3 * gap); FACTS: 170 s failover
        await AnyRunnerRoot.as_handler(c, subpath=("any", group), code=cr, cfg={"actor": {"cycle": 5, "gap": 1}})
        print("ready", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4], backend="trio")
