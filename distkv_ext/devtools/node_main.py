"""``distkv-code-node``: run a local DistKV node to try things on.

Starts an MQTT broker (in this process) and N DistKV servers on free
loopback ports, prints how to use them, and stops everything on Ctrl-C
or SIGTERM.  No configuration file, broker or systemd is needed.
"""

import argparse
import signal
import sys

import anyio

from .node import local_cluster

__all__ = ["main"]


def _parser():
    p = argparse.ArgumentParser(
        prog="distkv-code-node",
        description="Run a local DistKV node (or cluster) with its own MQTT broker.",
    )
    p.add_argument("-n", "--servers", type=int, default=1, help="number of servers (default 1)")
    p.add_argument("-d", "--dir", help="keep configuration and logs in this directory")
    p.add_argument(
        "--ready-file",
        help="write the client configuration's path to this file once the node serves",
    )
    return p


async def _run(args):
    async with local_cluster(args.servers, workdir=args.dir) as cl:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
            s = cl.servers[0]
            print(f"DistKV is running: {len(cl.servers)} server(s), broker {cl.broker_uri}")
            for srv in cl.servers:
                print(f"  {srv.name}: 127.0.0.1:{srv.port}  config {srv.config}  log {srv.log}")
            print("Use it with, for example:")
            print(f"  distkv -c {s.config} client code list")
            print("Stop with Ctrl-C.", flush=True)
            if args.ready_file:
                with open(args.ready_file, "w", encoding="utf-8") as f:
                    f.write(s.config + "\n")
            async for _ in sigs:
                break
        print("Stopping.", flush=True)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.servers < 1:
        print("Error: need at least one server", file=sys.stderr)
        sys.exit(2)
    try:
        anyio.run(_run, args, backend="trio")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
