"""Mapping speed: a typical record through each shipped field map.

    python bench/mapping.py [--records N]

Each map is fed the typical case kept beside it (``<map>.tests/typical.input.json``: an offer
for the HRIS maps, a lead or an assessment for the inbound ones, a job record for the ATS map).
Prints microseconds per record per map, and the ratio to a baseline measured in the same run:
JSON-decoding the same source document (a floor every record pays anyway). Target: < 500 us.
"""

from __future__ import annotations

import argparse
import json
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
    print(f"{args.records} records per map; baseline: json.loads of the same document\n")
    print(f"{'map':<24} {'fields':>6} {'us/record':>10} {'json.loads':>10} {'x baseline':>10} "
          f"{'target':>8}")  # fmt: skip
    for path in sorted((REPO / "mappings").glob("*.yaml")):
        field_map = load_field_map(path)
        encoded = (cases_folder(path) / "typical.input.json").read_text()
        document = json.loads(encoded)
        apply_map(field_map, document)
        baseline = per_record_us(lambda e=encoded: json.loads(e), args.records)
        cost = per_record_us(lambda fm=field_map, d=document: apply_map(fm, d), args.records)
        verdict = "ok" if cost < TARGET_US else "OVER"
        print(f"{path.stem:<24} {len(field_map.rules):>6} {cost:>10.1f} {baseline:>10.1f} "
              f"{cost / baseline:>10.1f} {verdict:>8}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
