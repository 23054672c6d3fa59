"""The CLI's error boundary: which exit status a group of errors gets."""

from distkv_ext.codekit.cli.boundary import _translate
from distkv_ext.codekit.core.errors import BadArguments, ServerUnreachable
from distkv_ext.codekit.core.status import ExitStatus


def test_one_error_in_nested_groups_is_that_error():
    err = _translate(ExceptionGroup("tg", [ExceptionGroup("inner", [ServerUnreachable("gone")])]))
    assert (err.message, err.exit_code) == ("gone", ExitStatus.SERVER)


def test_concurrent_errors_of_one_status_are_the_first_of_them():
    group = ExceptionGroup("tg", [ServerUnreachable("lost a"), ExceptionGroup("x", [ServerUnreachable("lost b")])])
    err = _translate(group)
    assert (err.message, err.exit_code) == ("lost a", ExitStatus.SERVER)


def test_errors_of_different_statuses_are_not_merged():
    assert _translate(ExceptionGroup("tg", [ServerUnreachable("gone"), BadArguments("bad")])) is None
    assert _translate(ExceptionGroup("tg", [ServerUnreachable("gone"), ValueError("bug")])) is None
