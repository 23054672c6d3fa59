"""Options shared by commands that take procedure variables."""

import ast

import asyncclick as click

from distkv_ext.codekit.core.checks import identifier, storable_problems
from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.paths import as_path

from .params import usage_message

__all__ = ["variable_options", "collect_variables", "positional_values", "NO_DEFAULT", "DROP"]

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


def _check_name(name, hint):
    try:
        return identifier(name)
    except InputRefused as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


def _literal(name, text, hint=None):
    """``-e NAME LITERAL``: a Python literal that DistKV can store."""
    hint = hint or f"-e {name}"
    try:
        val = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        # TypeError: {[]: 1} (an unhashable key); RecursionError: deep nesting
        raise click.BadParameter(f"{text!r} is not a Python literal", param_hint=hint) from None
    problems = storable_problems(val, "value")
    if problems:
        raise click.BadParameter(usage_message(problems[0]), param_hint=hint)
    return val


def _path(name, text):
    try:
        return as_path(text, "variable")
    except InputRefused as exc:
        raise click.BadParameter(str(exc), param_hint=f"-p {name}") from None


def positional_values(texts, literal=False, hint=None):
    """Positional arguments from the command line (``code call PATH
    ARG...``): each ARG as text or, with ``literal``, as a Python literal
    that DistKV can store (as ``-e`` reads a value; ``'text'`` then needs
    its quotes); else `click.BadParameter` naming the argument (``ARG
    2``, or ``hint``, exit status 2)."""
    if not literal:
        return [str(t) for t in texts]
    return [_literal(None, t, hint=hint or f"ARG {i}") for i, t in enumerate(texts, 1)]


def collect_variables(values, evals, paths, *, markers=False):
    """The ``-v/-e/-p`` options as a list of (name, value).

    Names must be variable names; ``-e`` values Python literals that
    DistKV can store (no sets, no complex numbers, finite floats, ...),
    ``-p`` values DistKV paths; else `click.BadParameter` (exit status 2).
    With ``markers``, ``-e NAME -`` yields (name, `NO_DEFAULT`) and
    ``-e NAME /`` yields (name, `DROP`), as in DistKV's ``code set``.
    """
    res = []
    for k, v in values:
        res.append((_check_name(k, f"-v {k}"), v))
    for k, v in evals:
        _check_name(k, f"-e {k}")
        if markers and v in ("-", "/"):
            res.append((k, NO_DEFAULT if v == "-" else DROP))
            continue
        res.append((k, _literal(k, v)))
    for k, v in paths:
        res.append((_check_name(k, f"-p {k}"), _path(k, v)))
    return res
