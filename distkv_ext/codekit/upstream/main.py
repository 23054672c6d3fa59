"""Run DistKV's own ``distkv`` command, repaired (``python -m distkv_ext.codekit.upstream.main``).

This is the ``distkv`` command of DistKV 0.65.0, unchanged, run inside an
asyncscope main scope (which DistKV's entry point forgets to open, so a
``distkv server`` that joins a cluster crashes), with ``-C key=value``
honoured and with moat-mqtt repaired so that a server survives a restart
of its MQTT broker (`moat_mqtt`): `apply_server`.  The launcher
(`distkv_ext.devtools.node`) starts its servers with it; it takes the same arguments as ``distkv``.
"""

import sys

from distkv.command import cmd

from . import apply_server

__all__ = ["main"]


def main(argv=None):
    """Entry point; ``argv`` defaults to ``sys.argv[1:]``."""
    if argv is not None:
        sys.argv[1:] = list(argv)
    sys.argv[0] = "distkv"
    apply_server()
    cmd()


if __name__ == "__main__":
    main()
