"""The drills' report: each drill adds a row; the table is printed at the
end of the test session and written to ``$DRILL_REPORT`` (default
``drill-report.md`` in pytest's base temporary directory)."""

import os

import pytest

ROWS = []
HEAD = ("drill", "runs", "jobs", "lost", "overlaps", "worst resume")


def report(drill, runs, jobs, lost, overlaps, worst_resume):
    ROWS.append((drill, runs, jobs, lost, overlaps, "-" if worst_resume is None else f"{worst_resume:.1f} s"))


@pytest.fixture
def drill_report():
    return report


def _table():
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in ROWS]
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, config):
    if not ROWS:
        return
    text = _table()
    terminalreporter.write_sep("=", "fault drills")
    terminalreporter.write(text)
    path = os.environ.get("DRILL_REPORT") or os.path.join(
        str(config._tmp_path_factory.getbasetemp()), "drill-report.md"
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    terminalreporter.write_line(f"(written to {path})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed drill's report ends with the end of every process log of
    its fleet (servers, broker, runners), so that a CI log says what went
    wrong."""
    outcome = yield
    rep = outcome.get_result()
    tmp = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
    if rep.when != "call" or not rep.failed or tmp is None:
        return
    for path in sorted(tmp.glob("*.log")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        rep.sections.append((f"{path.name} (last 40 of {len(lines)} lines)", "\n".join(lines[-40:])))
