"""The procedure library (`distkv_ext.code`) against in-process servers."""

import anyio
import pytest
from moat.util import P

from distkv_ext.code import CodeRoot, CompileError, EmptyCode, NotFound, get_procedure

from .fixtures import cluster


async def test_add_and_call_by_string_tuple_path():
    async with cluster() as st, st.client() as c:
        cr = await CodeRoot.as_handler(c)
        await cr.add("forty.two", code="return 42")
        assert cr("forty.two") == 42
        assert cr(("forty", "two")) == 42
        assert cr(P("forty.two")) == 42
