"""Option values checked before a command runs.

The checks themselves are the library's (`distkv_ext.codekit.core.checks`,
the runner's job fields); here they become click parameter types and
callbacks, so that a bad option value is a usage error: exit status 2,
``Error: Invalid value for '-r' / '--repeat': must be a finite number, not
nan``, before anything is read or written.
"""

import asyncclick as click

from distkv_ext.codekit.core.checks import identifier, module_name, one_line
from distkv_ext.codekit.core.errors import InputRefused

__all__ = ["Checked", "usage_message", "one_line_option", "module_names", "variable_names"]


def usage_message(exc):
    """A check's message for click's "Invalid value for OPTION: ..." line:
    without the leading "value " (or "value: ", "value.") that names what
    was checked."""
    msg = str(exc)
    for lead in ("value: ", "value ", "value."):
        if msg.startswith(lead):
            return msg[len(lead) :]
    return msg


class Checked(click.ParamType):
    """An option value (text) turned into a value by ``check(text)``,
    which raises `InputRefused` to refuse it (then: exit status 2, naming
    the option).  ``check`` should call what it checks ``value``."""

    def __init__(self, check, metavar="VALUE"):
        self.check = check
        self.name = metavar.lower()
        self.metavar = metavar

    def get_metavar(self, param):
        return self.metavar

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value  # a default, or already converted
        try:
            return self.check(value)
        except InputRefused as exc:
            self.fail(usage_message(exc), param, ctx)


def one_line_option(ctx, param, value):
    """Callback: the option's value must be one line of text."""
    if value is None:
        return value
    try:
        return one_line(value, "value")
    except InputRefused as exc:
        raise click.BadParameter(usage_message(exc), ctx=ctx, param=param) from None


def module_names(ctx, param, value):
    """Callback: each value (``-r MODULE``) must be a module name that
    ``import`` could find."""
    try:
        return tuple(module_name(v) for v in value or ())
    except InputRefused as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def variable_names(ctx, param, value):
    """Callback: each value (``--var NAME``) must be a variable name."""
    try:
        return tuple(identifier(v) for v in value or ())
    except InputRefused as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
