"""``python -m bench [NAME ...]``: run the benchmarks (default: all)."""

import importlib
import sys

BENCHES = ["cli_startup", "module_loading", "runner", "deploy", "web", "groupauth", "procmode", "cron", "server_writes"]
#: Benchmarks run only when named (they take long): ``scale``.
ON_REQUEST = ["scale"]

if __name__ == "__main__":
    # NAME [OPTION ...] [NAME ...]: what follows a name, up to the next name, is its options
    runs: list[tuple[str, list[str]]] = []
    for arg in sys.argv[1:]:
        if arg in BENCHES + ON_REQUEST:
            runs.append((arg, []))
        elif runs and (arg.startswith("-") or runs[-1][1]):
            runs[-1][1].append(arg)
        else:
            print(f"Error: unknown benchmark {arg!r} (known: {', '.join(BENCHES + ON_REQUEST)})", file=sys.stderr)
            sys.exit(2)
    for name, options in runs or [(b, []) for b in BENCHES]:
        mod = importlib.import_module(f"bench.{name}")
        mod.main(options) if options else mod.main()
