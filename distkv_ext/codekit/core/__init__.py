"""The kernel: errors and exit statuses, the compiler, dependency graphs,
values, paths, digests, sources and text diffs.

Imports nothing of this project outside this package and no DistKV
connection: everything here is pure and testable without a server.
"""
