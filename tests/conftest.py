"""Shared fixtures: real DistKV servers, in-process and as processes."""

pytest_plugins = ["tests.fixtures"]


def pytest_collection_modifyitems(session, config, items):
    """Run the fault drills last: they take minutes, load the machine and
    kill processes; the quick tests report first."""
    items.sort(key=lambda item: "drills" in item.path.parts)
