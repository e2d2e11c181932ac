"""Mapping speed: a typical offer through each shipped field map.

    python bench/mapping.py [--records N]

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
from worker.simulators.sample import make_offers  # noqa: E402

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
    sample = make_offers(1)[0]
    document = {"offer": sample.offer, "onboarding": sample.onboarding,
                "application": sample.application_form}  # fmt: skip
    encoded = json.dumps(document)
    baseline = per_record_us(lambda: json.loads(encoded), args.records)
    print(f"{args.records} records per map; baseline json.loads of the source: {baseline:.1f} us\n")
    print(f"{'map':<24} {'fields':>6} {'us/record':>10} {'x baseline':>10} {'target':>8}")
    for path in sorted((REPO / "mappings").glob("*.yaml")):
        field_map = load_field_map(path)
        apply_map(field_map, document)
        cost = per_record_us(lambda fm=field_map: apply_map(fm, document), args.records)
        verdict = "ok" if cost < TARGET_US else "OVER"
        print(f"{path.stem:<24} {len(field_map.rules):>6} {cost:>10.1f} {cost / baseline:>10.1f} "
              f"{verdict:>8}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
