"""Kept so that ``python -m distkv_ext.codekit.distkv_main`` in existing
unit files keeps working: it is `distkv_ext.codekit.upstream.main`
(also installed as ``distkv-code-server``)."""

from distkv_ext.codekit.upstream.main import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
