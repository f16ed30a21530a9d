"""`make bench`: run every benchmark on the sandbox and rewrite docs/benchmarks.md with the figures.

Each benchmark is a module of this directory with a docstring that states its method and a
`run_default()` that returns its figures as a dict with "rows" (a list of dicts, one table row each).
The page records when and on what machine the figures were measured. Benchmarks are not tests: a
slow machine gives slower figures, it fails nothing.

    PYTHONPATH=tests/sandbox .venv/bin/python benchmarks/run.py [--only NAME ...] [--output docs/benchmarks.md]
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["detection_scale", "simple_downtime", "gateway_throughput", "pool_scaling"]


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    return f"{os.cpu_count()} cores ({model}), {memory_kib / 2**20:.0f} GiB, Linux {platform.release()}"


def _table(rows):
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value):
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def render(results, measured_on):
    parts = ["# Benchmarks", "",
             "Written by `make bench` (benchmarks/run.py); do not edit by hand. Each section states its method",
             "(the benchmark's own docstring) and the figures of the latest run. Reproduce them with",
             "`make bench` after `make test`'s setup (or `make venv sandbox-build`), with nothing else running.", "",
             f"Measured {measured_on}.", ""]
    for name, (doc, figures) in results.items():
        parts += [f"## {name}", "", doc.strip(), ""]
        notes = {k: v for k, v in figures.items() if k != "rows"}
        if notes:
            parts += ["Run: " + ", ".join(f"{k} {v}" for k, v in notes.items()) + ".", ""]
        parts += [_table(figures["rows"]), ""]
    return "\n".join(parts)


def _write(output, results, planned):
    total = sum(figures["benchmark seconds"] for _doc, figures in results.values())
    done = f"{total} s for these benchmarks" + ("" if len(results) == planned else f", {len(results)} of {planned} run")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    output.write_text(render(results, f"{now} on {machine()}, {done}"))
    print(f"[bench] wrote {output}: {done}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--output", type=Path, default=HERE.parent / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    results = {}
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(name)
        print(f"[bench] {name}: {module.__doc__.splitlines()[0]}", file=sys.stderr, flush=True)
        # The machine may be shared: the 1-minute load average says how busy it was when the benchmark began.
        load_at_start = round(os.getloadavg()[0], 1)
        started = time.monotonic()
        try:
            figures = module.run_default()
        except Exception as error:  # noqa: BLE001 - one benchmark failing must not cost the others' figures
            traceback.print_exc()
            figures = {"failed": f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}",
                       "rows": [{"benchmark": name, "result": "failed, no figures"}]}
        figures["benchmark seconds"] = round(time.monotonic() - started)
        figures["load average at start"] = load_at_start
        print(json.dumps(figures, indent=1), file=sys.stderr, flush=True)
        results[name] = (module.__doc__.split("\n\n", 1)[1].split("\n\n    ")[0], figures)
        # Written after every benchmark, so that an interrupted run keeps the figures it measured.
        _write(args.output, results, len(args.only or BENCHMARKS))
    return 1 if any("failed" in figures for _doc, figures in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
