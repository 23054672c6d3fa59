"""Generated files are up to date with the click tree."""

import os

from distkv_ext.devtools.mangen import pages

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_man_pages_are_fresh():
    for fn, text in pages().items():
        path = os.path.join(TOP, "man", fn)
        assert os.path.exists(path), f"{path} is missing: run ./dev.sh docs"
        with open(path, encoding="utf-8") as f:
            assert f.read() == text, f"{path} is stale: run ./dev.sh docs"


def test_man_pages_have_the_sections():
    for fn, text in pages().items():
        for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "EXAMPLES", "FILES", "SEE ALSO"):
            assert f"\n.SH {sec}\n" in text, (fn, sec)


def test_completion_scripts_are_fresh():
    from distkv_ext.devtools.complete import scripts

    for fn, text in scripts().items():
        path = os.path.join(TOP, "completions", fn)
        assert os.path.exists(path), f"{path} is missing: run ./dev.sh docs"
        with open(path, encoding="utf-8") as f:
            assert f.read() == text, f"{path} is stale: run ./dev.sh docs"
