#!/usr/bin/env python3
"""The gate's detection rates, from the CSV files examples/ci/sensitivity.sh writes: one row
per (repeats per side, PR build), counting the gates that exited 1, those that named a
latency figure, and the medians of both sides' combined p50 and p99.

    python3 examples/ci/sensitivity-table.py OUT/gates.csv [more.csv ...]
"""
import csv
import statistics
import sys

print("| runs per side | PR build | gates | exit 1 | a latency figure named | exit 0 | exit 2 "
      "| p50 base -> PR (median, ms) | p99 base -> PR (median, ms) |")
print("|---:|---|---:|---:|---:|---:|---:|---|---|")
for path in sys.argv[1:]:
    rows = list(csv.DictReader(open(path)))
    for runs, cond in dict.fromkeys((r.get("repeats", "?"), r["condition"]) for r in rows):
        rs = [r for r in rows if (r.get("repeats", "?"), r["condition"]) == (runs, cond)]
        exits = lambda code: sum(r["exit"] == code for r in rs)
        latency = sum(".latency_ms." in r["regressions"] for r in rs)

        def med(key):
            vals = [float(r[key]) for r in rs if r[key]]
            return f"{statistics.median(vals):.2f}" if vals else "-"

        print(f"| {runs} | {cond} | {len(rs)} | {exits('1')} | {latency} | {exits('0')} "
              f"| {exits('2')} | {med('base_p50_ms')} -> {med('pr_p50_ms')} "
              f"| {med('base_p99_ms')} -> {med('pr_p99_ms')} |")
