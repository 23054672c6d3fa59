"""``distkv client``: DistKV's own command group, repaired.

DistKV's loader resolves the extension ``distkv_ext.client.main.cli``
before its built-in ``client`` command, so importing this module applies
`distkv_ext.codekit.upstream.apply_client` before ``distkv client`` connects; every
``distkv client ...`` command (DistKV's own ``data``, ``code``, ``job``
included) then works.  The price: ``distkv --help`` lists ``client``
twice (the top-level loader does not de-duplicate, and nothing of ours
runs before it lists).
"""

from distkv.command.client import cli

from distkv_ext.codekit.upstream import apply_client

# repair DistKV's `distkv client` before its group callback connects
apply_client()

__all__ = ["cli"]
