"""Procedures stored in DistKV (``.distkv code proc``).

Public API (the names of DistKV 0.65's ``distkv.code``)::

    cr = await CodeRoot.as_handler(client)
    await cr.add("forty.two", code="return 42")
    assert cr("forty.two") == 42

Plus helpers for reading the store without a live handler, used by
``distkv client code``.
"""

from distkv_ext.codekit.core.compiler import Procedure, compile_procedure
from distkv_ext.codekit.core.errors import CodeError, CompileError, EmptyCode, InputRefused, NotFound
from distkv_ext.codekit.core.signing import SigningKey

from ._keys import load_signing_key, new_signing_key
from ._ops import (
    DEFAULT_PREFIX,
    call_procedure,
    get_procedure,
    list_procedures,
    remove_procedure,
    revert_procedure,
    store_procedure,
)
from ._root import CodeEntry, CodeRoot
from ._value import MODES, is_process, mode_fields, mode_of, procedure_value

__all__ = [
    "CodeRoot",
    "CodeEntry",
    "Procedure",
    "compile_procedure",
    "procedure_value",
    "get_procedure",
    "list_procedures",
    "store_procedure",
    "remove_procedure",
    "call_procedure",
    "revert_procedure",
    "new_signing_key",
    "load_signing_key",
    "SigningKey",
    "DEFAULT_PREFIX",
    "MODES",
    "mode_of",
    "mode_fields",
    "is_process",
    "CodeError",
    "CompileError",
    "EmptyCode",
    "InputRefused",
    "NotFound",
]
