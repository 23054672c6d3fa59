"""Shared fixtures: real DistKV servers, in-process and as processes."""

pytest_plugins = ["tests.fixtures"]
