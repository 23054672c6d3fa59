"""The command-line layer shared by ``distkv client code|module|run``.

Only this package (and the plugins' ``client.py``) imports click; the
library modules beside it never do.
"""
