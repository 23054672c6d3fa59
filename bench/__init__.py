"""Benchmarks of distkv-code, each against DistKV's built-in equivalent.

Run with ``./dev.sh bench`` (all) or ``./dev.sh bench NAME``.  Each
prints its raw figures and the ratio ours / built-in, measured in the
same run, interleaved, because these machines are shared and noisy.
"""
