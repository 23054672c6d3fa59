"""Options shared by commands that take procedure variables."""

import ast

import asyncclick as click
from moat.util import P

__all__ = ["variable_options", "collect_variables", "NO_DEFAULT", "DROP"]

#: ``-e NAME -``: the variable has no default (it is required).
NO_DEFAULT = object()
#: ``-e NAME /``: remove the variable.
DROP = object()


def variable_options(fn):
    """``-v NAME VALUE`` (string), ``-e NAME LITERAL``, ``-p NAME PATH``."""
    fn = click.option(
        "-p",
        "--path",
        "paths",
        nargs=2,
        multiple=True,
        metavar="NAME PATH",
        help="Variable NAME, a DistKV path (a.b.c).",
    )(fn)
    fn = click.option(
        "-e",
        "--eval",
        "evals",
        nargs=2,
        multiple=True,
        metavar="NAME LITERAL",
        help="Variable NAME, a Python literal (42, [1, 2], {'a': 1}, None).",
    )(fn)
    fn = click.option(
        "-v",
        "--value",
        "values",
        nargs=2,
        multiple=True,
        metavar="NAME VALUE",
        help="Variable NAME, a string.",
    )(fn)
    return fn


def _check_name(name):
    if not name.isidentifier():
        raise click.BadParameter(f"{name!r} is not a variable name")
    return name


def collect_variables(values, evals, paths, *, markers=False):
    """The ``-v/-e/-p`` options as a list of (name, value).

    With ``markers``, ``-e NAME -`` yields (name, `NO_DEFAULT`) and
    ``-e NAME /`` yields (name, `DROP`), as in DistKV's ``code set``.
    """
    res = []
    for k, v in values:
        res.append((_check_name(k), v))
    for k, v in evals:
        if markers and v in ("-", "/"):
            res.append((_check_name(k), NO_DEFAULT if v == "-" else DROP))
            continue
        try:
            val = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            raise click.BadParameter(f"{v!r} is not a Python literal", param_hint=f"-e {k}") from None
        res.append((_check_name(k), val))
    for k, v in paths:
        res.append((_check_name(k), P(v)))
    return res
