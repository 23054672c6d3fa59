"""Reading source files: UTF-8 only, no binaries, bounded size."""

import pytest

from distkv_ext.codekit.core.errors import BadFile
from distkv_ext.codekit.core.source import MAX_SOURCE, decode_source, read_source


def test_utf8_and_bom():
    assert decode_source("return 'ä'\n".encode(), "f.py") == "return 'ä'\n"
    assert decode_source(b"\xef\xbb\xbfreturn 1", "f.py") == "return 1"


def test_not_utf8_names_file_and_line():
    with pytest.raises(BadFile, match=r"^f.py: not UTF-8 text \(byte 0xe4 in line 2\)$"):
        decode_source(b"x = 1\nreturn '\xe4'\n", "f.py")


def test_binary_refused():
    with pytest.raises(BadFile, match="binary file"):
        decode_source(b"\x7fELF\0\0", "a.out")


def test_too_large_refused():
    with pytest.raises(BadFile, match="too large"):
        decode_source(b"#" * (MAX_SOURCE + 1), "big.py")


def test_missing_file(tmp_path):
    with pytest.raises(BadFile, match="No such file or directory"):
        read_source(str(tmp_path / "nope.py"))
