"""DistKV's error tree (``.distkv error``), one handler per process.

DistKV names error records by the client's name, which is the host name
unless configured.  Two processes on one host (two runner daemons, or a
daemon and a CLI call) would then write records under the same name, and
DistKV's `ErrorRoot` dies on that ("This cannot happen").  So ours is
named ``HOST.PID``; records are looked up by subsystem and path, not by
name, so an error recorded by one process is still resolved by another.
"""

import os
from typing import Any

from distkv.errors import ErrorRoot
from moat.util import Path

from .clientapi import Client

__all__ = ["error_root"]


async def error_root(client: Client) -> Any:
    """The process's `distkv.errors.ErrorRoot` for ``client``: started on
    the first call (named ``HOST.PID``, loaded before it is returned),
    shared by every later call with the same client."""
    name = f"{client.client_name}.{os.getpid()}"
    cfg = client._cfg[ErrorRoot.CFG]

    def make() -> Any:
        return client.mirror(cfg["prefix"], root_type=ErrorRoot, need_wait=True, cfg=cfg, name=name)

    return await client.unique_helper(str(Path("_distkv_code", client.name, "errors")), factory=make)
