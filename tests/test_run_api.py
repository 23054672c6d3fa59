"""Every public name of `distkv_ext.run` says what it does."""

import inspect
import pathlib
import re

import distkv_ext.run as run

SOURCES = "\n".join(p.read_text() for p in pathlib.Path(run.__file__).parent.glob("_*.py"))


def test_every_public_name_has_a_docstring():
    missing = []
    for name in run.__all__:
        obj = getattr(run, name)
        if inspect.isclass(obj):
            doc = vars(obj).get("__doc__")  # its own, not inherited
        elif callable(obj):
            doc = obj.__doc__
        else:  # a constant: a "#:" comment right above its definition
            doc = re.search(rf"^#:.*\n(?:#:.*\n)*{name}\b", SOURCES, re.M)
        if not doc:
            missing.append(name)
    assert not missing
