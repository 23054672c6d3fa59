"""Run when the ``distkv`` command starts, before DistKV reads anything.

``distkv_code.pth`` (in site-packages, next to this package) imports this
module in ``distkv`` processes only (it checks ``sys.argv[0]``; every
other Python program pays one string comparison).  DistKV's command reads
its ``-c`` configuration file before it loads any plugin, so that is the
one repair that has to be in place this early: `moat_util.repair_config_file`;
and DistKV's flow-control window must be raised before that file is
merged into its defaults (`distkv_flow`).
Everything else is repaired when a plugin of this project loads.

The ``.pth`` file is `PTH_FILE` of this directory; the package's build
(``setup.py``) puts it into the wheel's top level, and ``./dev.sh``
copies it into the development environment's site-packages (an editable
install carries no such file).
"""

import os

from . import distkv_flow
from .moat_util import repair_config_file

__all__ = ["PTH_FILE", "PTH_NAME"]

#: The name of the file in site-packages.
PTH_NAME = "distkv_code.pth"
#: This package's copy of it.
PTH_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), PTH_NAME)

repair_config_file()
distkv_flow.apply()
