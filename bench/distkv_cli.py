"""Run the ``distkv`` command, optionally with DistKV's built-in ``code``.

``python bench/distkv_cli.py [--builtin] ARGS...``: with ``--builtin`` our
``distkv_ext.code`` plugin is hidden, so ``distkv client code`` is DistKV's
own (still connected through the repaired ``distkv client``, without which
it cannot connect at all).  Both variants pay for this wrapper alike.
"""

import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--builtin":
        args = args[1:]
        sys.modules["distkv_ext.code.client"] = None  # makes the loader skip it
    sys.argv = ["distkv", *args]
    from distkv.command import cmd

    cmd()
