"""Mapping speed: a typical record through each shipped field map.

    python bench/mapping.py [--records N]

Each map is fed the typical case kept beside it (``<map>.tests/typical.input.json``: an offer
for the HRIS maps, a lead or an assessment for the inbound ones, a job record for the ATS map).
Prints microseconds per record per map, and two ratios to baselines measured in the same run:
JSON-decoding the same source document (a floor every record pays anyway), and the example map
(``example_hris``), so that a figure taken on a busy machine still compares the maps (the
machine's load average is printed first). Target: < 500 us.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from worker.mapping.engine import apply_map  # noqa: E402
from worker.mapping.loader import load_field_map  # noqa: E402
from worker.mapping.testing import cases_folder  # noqa: E402

TARGET_US = 500.0


def per_record_us(work: object, records: int) -> float:
    started = time.perf_counter()
    for _ in range(records):
        work()  # type: ignore[operator]
    return (time.perf_counter() - started) / records * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.records} records per map; load average {load} (1, 5, 15 min)")
    print("baselines: json.loads of the same document; the example map (example_hris)\n")
    rows = []
    for path in sorted((REPO / "mappings").glob("*.yaml")):
        field_map = load_field_map(path, choosing=True)  # applications maps may have when:
        encoded = (cases_folder(path) / "typical.input.json").read_text()
        document = json.loads(encoded)
        apply_map(field_map, document)
        baseline = per_record_us(lambda e=encoded: json.loads(e), args.records)
        cost = per_record_us(lambda fm=field_map, d=document: apply_map(fm, d), args.records)
        fields = len(field_map.rules)  # every step's
        rows.append((path.stem, fields, cost, baseline))
    example = next(cost for name, _, cost, _ in rows if name == "example_hris")
    print(f"{'map':<24} {'fields':>6} {'us/record':>10} {'json.loads':>10} {'x json':>7} "
          f"{'x example':>9} {'target':>7}")  # fmt: skip
    for name, fields, cost, baseline in rows:
        verdict = "ok" if cost < TARGET_US else "OVER"
        print(f"{name:<24} {fields:>6} {cost:>10.1f} {baseline:>10.1f} {cost / baseline:>7.1f} "
              f"{cost / example:>9.2f} {verdict:>7}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
