"""Generated files are up to date with the click tree."""

import os

from distkv_ext.devtools.mangen import all_pages, pages

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_man_pages_are_fresh():
    for fn, text in all_pages().items():
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


def test_exit_status_list_ends_before_the_next_paragraph():
    for fn, text in pages().items():
        assert "\n.PP\nErrors are one line" in text, fn


def test_deploy_formats_page_names_every_key():
    from distkv_ext.deploy._header import MODULE_KEYS, PROC_KEYS
    from distkv_ext.deploy._jobs import _PLACE_KEYS
    from distkv_ext.run import JOB_FIELDS

    text = all_pages()["distkv-code-deploy.5"]
    for key in (*PROC_KEYS, *MODULE_KEYS, *JOB_FIELDS, *_PLACE_KEYS):
        assert f"\\fB{key}\\fR" in text, key
    for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "THE SETTINGS HEADER", "JOBS.YAML", "EXAMPLES", "SEE ALSO"):
        assert f"\n.SH {sec}\n" in text, sec
