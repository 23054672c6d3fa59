"""``python -m bench [NAME ...]``: run the benchmarks (default: all)."""

import importlib
import sys

BENCHES = ["cli_startup", "module_loading", "runner", "deploy", "web", "groupauth", "procmode", "cron"]

if __name__ == "__main__":
    names = sys.argv[1:] or BENCHES
    for name in names:
        if name not in BENCHES:
            print(f"Error: unknown benchmark {name!r} (known: {', '.join(BENCHES)})", file=sys.stderr)
            sys.exit(2)
    for name in names:
        importlib.import_module(f"bench.{name}").main()
