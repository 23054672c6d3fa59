"""Output of ``distkv client code deploy``: the plan, progress, problems."""

import sys

import asyncclick as click

from .output import emit, highlight, stdout_of, use_color

__all__ = ["show_plan", "show_problems", "Progress", "plan_data"]

_MARK = {"add": ("+", "green"), "change": ("~", "yellow"), "remove": ("-", "red")}
_ORDER = {"module": 0, "procedure": 1, "job": 2}


def plan_data(plan, dry_run, result=None):
    """The plan (and what was done) as plain data for ``-o json|yaml``."""
    pending = sorted(plan.pending, key=lambda c: (_ORDER[c.kind], str(c.path)))
    data = {
        "dry_run": dry_run,
        "summary": {a: plan.count(a) for a in ("add", "change", "remove", "unchanged")},
        "changes": [
            {
                "kind": c.kind,
                "path": str(c.path),
                "action": c.action,
                "label": c.label,
                "source": c.source,
                "diff": c.diff or None,
            }
            for c in pending
        ],
        "unchanged": [c.label for c in plan.changes if c.action == "unchanged"],
        "restarts": plan.restarts,
        "problems": plan.problems,
    }
    if result is not None:
        data["written"] = result.written
    return data


def show_plan(obj, plan, *, dry_run, output=None, diffs=True, result=None):
    """Print the plan: one line per change (with its diff), the jobs it
    restarts, and a summary line."""
    if output:
        emit(obj, plan_data(plan, dry_run, result), output)
        return
    out = stdout_of(obj)
    color = use_color(out)
    for c in sorted(plan.pending, key=lambda c: (_ORDER[c.kind], str(c.path))):
        mark, fg = _MARK[c.action]
        line = f"{mark} {c.label}"
        if c.source:
            line = f"{line:<50} {c.source}"
        print(click.style(line, fg=fg) if color else line, file=out)
        if diffs and c.diff:
            text = "".join("    " + ln for ln in c.diff.splitlines(keepends=True))
            print(highlight(text, "diff", out), end="", file=out)
    for r in plan.restarts:
        print(f"! restarts {r['job']} on {', '.join(r['nodes'])}: {r['why']}", file=out)
    n = {a: plan.count(a) for a in ("add", "change", "remove", "unchanged")}
    if not plan.pending:
        print(f"No changes ({n['unchanged']} unchanged).", file=out)
        return
    summary = f"{n['add']} to add, {n['change']} to change, {n['remove']} to remove, {n['unchanged']} unchanged"
    if result is None:
        print(f"Plan: {summary}." + (" Dry run: nothing written." if dry_run else ""), file=out)
    else:
        print(
            f"Deployed: {len(result.added)} added, {len(result.changed)} changed, "
            f"{len(result.removed)} removed, {n['unchanged']} unchanged.",
            file=out,
        )


def show_problems(problems):
    """Each problem on its own line on stderr (the error line follows)."""
    for p in problems:
        print(p, file=sys.stderr)


class Progress:
    """``deploying 57/200`` on a terminal's stderr, rewritten in place;
    silent in a pipe and for small deploys."""

    def __init__(self, total, min_total=20, stream=None):
        self.stream = stream or sys.stderr
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.on = tty and total >= min_total
        self.shown = False

    def __call__(self, done, total):
        if self.on:
            self.stream.write(f"\rdeploying {done}/{total}")
            self.stream.flush()
            self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
