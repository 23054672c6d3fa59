"""Packaging is declarative (setup.cfg, pyproject.toml); this file adds the
one thing a declarative setup cannot: ``distkv_code.pth`` at the top of
the wheel, so that it lands in site-packages.

DistKV's ``distkv`` command reads its ``-c`` configuration file before it
loads any plugin; that file makes the ``distkv`` command load
``distkv_ext.codekit.upstream.boot`` first, which repairs the reading (a
bad file is one line and exit status 2, not a traceback).  See
``distkv_ext/codekit/upstream/boot.py``.  An editable install does not
carry it; ``./dev.sh`` copies it into its environment.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = os.path.join("distkv_ext", "codekit", "upstream", "distkv_code.pth")


class BuildPyWithPth(build_py):
    """build_py, plus ``distkv_code.pth`` at the top of the build."""

    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            self.copy_file(PTH, os.path.join(self.build_lib, os.path.basename(PTH)))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, os.path.basename(PTH)))
        return outputs


if __name__ == "__main__":  # (setuptools runs it so; a test reads the class only)
    setup(cmdclass={"build_py": BuildPyWithPth})
