"""``distkv client code deploy``: the command, and its output (the plan,
progress, problems)."""

import sys

import asyncclick as click

from distkv_ext.codekit.cli.boundary import Finished, boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES
from distkv_ext.codekit.cli.output import emit, highlight, output_option, stdout_of, use_color
from distkv_ext.codekit.cli.signing import signing_key_of
from distkv_ext.codekit.core.errors import InputRefused

__all__ = ["deploy", "show_plan", "show_problems", "Progress", "plan_data"]

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
                "why": c.why,
                "diff": c.diff or None,
            }
            for c in pending
        ],
        "unchanged": [c.label for c in plan.changes if c.action == "unchanged"],
        "not_pruned": plan.not_pruned,
        "restarts": plan.restarts,
        "notes": plan.notes,
        "problems": plan.problems,
        "tree": plan.name,
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
        if c.source or c.why:
            line = f"{line:<50} {c.source or c.why}"
        print(click.style(line, fg=fg) if color else line, file=out)
        if diffs and c.diff:
            text = "".join("    " + ln for ln in c.diff.splitlines(keepends=True))
            print(highlight(text, "diff", out), end="", file=out)
    for r in plan.restarts:
        print(f"! restarts {r['job']} on {', '.join(r['nodes'])}: {r['why']}", file=out)
    for k in plan.not_pruned:
        print(f"= not pruned: {k['label']}: {k['why']}", file=out)
    for note in plan.notes:
        print(f"note: {note}", file=out)
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


def _tree_name(ctx, param, value):
    # lazy: as in deploy() below; the check needs the deploy engine
    from distkv_ext.deploy import check_tree_name

    if value is None:
        return value
    try:
        return check_tree_name(value)
    except InputRefused as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command(epilog=EXIT_CODES)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="Show the plan, write nothing; exit status 1 if there are changes.")
@click.option(
    "--prune",
    is_flag=True,
    help="Remove what earlier deploys of this tree wrote and DIR no longer has (of the kinds DIR has).",
)
@click.option(
    "--name",
    callback=_tree_name,
    help="The deploy tree's name, which its manifest is kept under (default: DIR's name).",
)
@click.option("--take-over", is_flag=True, help="Move entries that another deploy tree wrote to this one.")
@click.option("--pin", is_flag=True, help="Pin every job to the content hash of the procedure deployed.")
@click.option("--no-diff", is_flag=True, help="List changed entries without their diffs.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def deploy(obj, directory, dry_run, prune, name, take_over, pin, no_diff, output):
    """
    Make the store match DIR: procedures, modules and jobs.

    DIR/procs/a/b.py is procedure a.b, DIR/modules/util/pid.py module
    util.pid, DIR/jobs.yaml the runner entries (see the README).  Prints
    the plan: added (+), changed (~, with a diff), removed (-, only with
    --prune) and the running jobs that the change restarts.

    A deploy records what it wrote (the tree's manifest, .distkv.code.deploy
    NAME), so --prune removes only what earlier deploys of this tree wrote
    and DIR no longer has: never entries written by hand, with 'code set',
    or by another tree.  An entry that another tree wrote is refused
    unless --take-over.

    Every file is checked first (compile, cycles, missing modules, jobs
    whose procedure is missing); if anything is wrong, nothing is written.
    Then modules, procedures and jobs are written, each only if nobody
    changed it since the plan was made (else: exit status 1, not
    overwritten).  --dry-run exits 1 when there are changes, 0 when none.
    With codes.signing_key set, every procedure and module is signed.
    """
    # lazy: deploy (with the runner engine) costs ~30 ms at every start of
    # `distkv client code`; only this command needs it
    from distkv_ext.deploy import DeployRefused, Prefixes, apply_deploy, plan_deploy, read_tree
    from distkv_ext.run import calendar_defaults

    key = signing_key_of(obj)
    tree = read_tree(directory, lambda: calendar_defaults(obj.cfg.get("runner")))
    client = get_client(obj)
    plan = await plan_deploy(
        client,
        tree,
        prune=prune,
        pin=pin,
        prefixes=Prefixes.from_config(obj.cfg),
        name=name,
        take_over=take_over,
        signing_key=key,
    )
    if plan.problems:
        if output:
            show_plan(obj, plan, dry_run=dry_run, output=output)
        else:
            show_problems(plan.problems)
        raise DeployRefused(directory, plan.problems)
    if dry_run or not (plan.pending or plan.manifest_changed):
        show_plan(obj, plan, dry_run=dry_run, output=output, diffs=not no_diff)
        if dry_run and plan.pending:
            raise Finished(1)
        return
    progress = Progress(len(plan.pending))
    try:
        result = await apply_deploy(client, plan, progress=progress)
    finally:
        progress.close()
    show_plan(obj, plan, dry_run=False, output=output, diffs=not no_diff, result=result)
