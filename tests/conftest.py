"""Shared fixtures: real DistKV servers, in-process and as processes."""

import pytest

pytest_plugins = ["tests.fixtures"]
