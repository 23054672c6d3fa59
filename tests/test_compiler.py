"""Compiling procedures and modules: line numbers, modes, refusals."""

import traceback

import pytest

from distkv_ext.codekit.core.compiler import compile_module_code, compile_procedure
from distkv_ext.codekit.core.errors import CompileError, InputRefused


def test_body_is_a_function():
    p = compile_procedure("return 42", "forty.two")
    assert p() == 42


def test_variables_positional_keyword_defaults_and_globals():
    p = compile_procedure("return (a, b, c)", "x", variables=["a", "b"], defaults={"b": 2})
    assert p(1, c=3) == (1, 2, 3)
    assert p(a=5, b=6, c=7) == (5, 6, 7)


def test_missing_variable_is_named():
    p = compile_procedure("return a", "x", variables=["a"])
    with pytest.raises(TypeError, match="needs a value for variable 'a'"):
        p()


def test_syntax_error_has_the_users_line_number():
    with pytest.raises(CompileError) as ei:
        compile_procedure("x = 1\ny = 2\nreturn (x +\n", "a.b")
    assert ei.value.lineno == 3
    assert str(ei.value).startswith("a.b:3: ")


def test_indentation_error_line():
    with pytest.raises(CompileError) as ei:
        compile_procedure("x = 1\n  y = 2\n", "a.b")
    assert ei.value.lineno == 2
    assert "unexpected indent" in ei.value.msg


def test_traceback_shows_the_stored_line():
    p = compile_procedure("x = 0\nreturn 1 / x\n", "calc.div")
    with pytest.raises(ZeroDivisionError) as ei:
        p()
    text = "".join(traceback.format_exception(ei.value))
    assert 'File "<distkv:proc calc.div>", line 2, in _proc' in text
    assert "return 1 / x" in text


def test_multiline_strings_are_indented_like_distkv():
    p = compile_procedure('return """a\nb"""', "s")
    assert p() == "a\n    b"


async def test_async_procedure():
    p = compile_procedure("import trio\nawait trio.sleep(0)\nreturn 7", "a", is_async=True)
    assert await p() == 7


def test_await_in_sync_code_is_refused():
    with pytest.raises(CompileError, match="outside async function"):
        compile_procedure("await foo()", "a")


@pytest.mark.parametrize("variables", [["1x"], ["a", "a"], ["class"], "ab"])
def test_bad_variable_names(variables):
    with pytest.raises(InputRefused):
        compile_procedure("return 1", "a", variables=variables)


def test_non_text_and_bad_mode_refused():
    with pytest.raises(InputRefused, match="not text"):
        compile_procedure(b"return 1", "a")
    with pytest.raises(InputRefused, match="is_async"):
        compile_procedure("return 1", "a", is_async="yes")


def test_nul_byte_is_a_compile_error():
    with pytest.raises(CompileError):
        compile_procedure("return 1\0", "a")


def test_module_line_numbers():
    with pytest.raises(CompileError) as ei:
        compile_module_code("import os\n\ndef f(:\n  pass\n", "util.x")
    assert ei.value.lineno == 3
