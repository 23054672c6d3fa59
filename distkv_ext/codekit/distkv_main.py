"""Run DistKV's own ``distkv`` command, repaired (``python -m distkv_ext.codekit.distkv_main``).

This is the ``distkv`` command of DistKV 0.65.0, unchanged, run inside an
asyncscope main scope (which DistKV's entry point forgets to open, so a
``distkv server`` that joins a cluster crashes), with ``-C key=value``
honoured and with moat-mqtt repaired so that a server survives a restart
of its MQTT broker (`mqttfix`).  The launcher (`distkv_ext.codekit.node`) starts its servers
with it; it takes the same arguments as ``distkv``.
"""

import sys
import types

__all__ = ["main"]


def _repair_main():
    from asyncscope import main_scope
    from moat.util import main as mmain

    main_ = mmain.main_

    async def _main(self, main, args, kwargs):
        async with main_scope("distkv"):
            return await main(*args, **kwargs)

    main_._main = types.MethodType(_main, main_)

    orig_wrap = mmain.wrap_main

    def wrap_main(*a, conf=(), ctx=None, **kw):
        res = orig_wrap(*a, conf=(), ctx=ctx, **kw)
        if conf and ctx is not None:
            from .cli.hostfix import apply_overrides

            ctx.obj.cfg = apply_overrides(ctx.obj.cfg, conf)
        return res

    mmain.wrap_main = wrap_main


def main(argv=None):
    """Entry point; ``argv`` defaults to ``sys.argv[1:]``."""
    if argv is not None:
        sys.argv[1:] = list(argv)
    sys.argv[0] = "distkv"
    _repair_main()
    from . import mqttfix
    from .cli import hostfix

    hostfix.apply()
    mqttfix.apply()
    from distkv.command import cmd

    cmd()


if __name__ == "__main__":
    main()
