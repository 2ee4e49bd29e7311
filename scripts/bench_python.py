#!/usr/bin/env python3
"""Validate the same example events as `herald bench validate` with Python's
`jsonschema` and `fastjsonschema`, using the project's schema files, and print
events per second (parse + validate, like herald's raw baseline).

For the README's Performance comparison only; not part of the tests.

    pip install jsonschema fastjsonschema
    python3 scripts/bench_python.py [--events 20000] [--json]

Works offline: every `$ref` (e.g. `../common/1.0.0.json#/$defs/uuid`) resolves
against the schemas' `$id`s to files under contracts/schemas/, never the network.
fastjsonschema implements drafts 4/6/7 only; the schemas use nothing from 2020-12
beyond `$defs`, which it reaches through plain JSON pointers, so its verdicts match
(checked below on every example before timing). Neither library checks herald's
per-subject constraint (e.g. `status == "failed"` on `ingest.document.failed`).
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "contracts"

CASES = [
    ("UsageEvent", "examples/UsageEvent/valid/spec-example.json"),
    ("OrchestratorStep", "examples/OrchestratorStep/valid/spec-example.json"),
    ("RealtimeMessage", "examples/RealtimeMessage/valid/spec-example.json"),
    ("IngestDocumentEvent", "examples/IngestDocumentEvent/valid/processed.json"),
    ("AlertEvent", "examples/AlertEvent/valid/quota-exceeded.json"),
]

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def load_schemas():
    """Every schema file by its $id, and the latest version of each by name."""
    by_id, latest = {}, {}
    for path in sorted((ROOT / "schemas").glob("*/*.json")):
        doc = json.loads(path.read_text())
        by_id[doc["$id"]] = doc
        latest[path.parent.name] = doc  # sorted: the last is the newest version
    return by_id, latest


def timed(fn, payload, events, rounds=4):
    """Events per second of fn(payload) over `events` calls in `rounds` rounds (best round)."""
    per = max(1, events // rounds)
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(per):
            fn(payload)
        best = max(best, per / (time.perf_counter() - t))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20000, help="validations per library and event type")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()

    by_id, latest = load_schemas()
    rows = []

    try:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        registry = Registry().with_resources(
            (sid, Resource.from_contents(doc, default_specification=DRAFT202012)) for sid, doc in by_id.items()
        )
        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        js_validators = {
            name: jsonschema.Draft202012Validator(doc, registry=registry, format_checker=checker)
            for name, doc in latest.items()
        }
    except ImportError:
        js_validators = None
        print("jsonschema not installed (pip install jsonschema): skipped", file=sys.stderr)

    try:
        import fastjsonschema

        def local(uri):
            if uri.split("#")[0] in by_id:
                return by_id[uri.split("#")[0]]
            raise ValueError(f"unknown schema {uri} (offline: only contracts/schemas/)")

        formats = {"uuid": UUID.pattern, "uri": r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$"}
        fast_validators = {
            name: fastjsonschema.compile(doc, handlers={"https": local, "http": local}, formats=formats)
            for name, doc in latest.items()
        }
    except ImportError:
        fast_validators = None
        print("fastjsonschema not installed (pip install fastjsonschema): skipped", file=sys.stderr)

    # Verdicts first: every shipped example, valid and invalid, through both libraries.
    for path in sorted((ROOT / "examples").glob("*/*/*.json")):
        name, kind = path.parent.parent.name, path.parent.name
        event = json.loads(path.read_bytes())
        verdicts = {}
        if js_validators is not None:
            verdicts["jsonschema"] = js_validators[name].is_valid(event)
        if fast_validators is not None:
            try:
                fast_validators[name](event)
                verdicts["fastjsonschema"] = True
            except fastjsonschema.JsonSchemaException:
                verdicts["fastjsonschema"] = False
        for lib, ok in verdicts.items():
            if ok != (kind == "valid"):
                print(f"note: {lib} finds {path.relative_to(ROOT)} {'valid' if ok else 'invalid'}"
                      " (herald also applies the subject constraint / stricter formats)", file=sys.stderr)

    for name, example in CASES:
        raw = (ROOT / example).read_bytes()
        row = {"schema": name, "bytes": len(raw)}
        if js_validators is not None:
            v = js_validators[name]
            if not v.is_valid(json.loads(raw)):
                sys.exit(f"{example}: jsonschema says invalid")
            row["jsonschema_eps"] = timed(lambda b: v.is_valid(json.loads(b)), raw, args.events)
        if fast_validators is not None:
            f = fast_validators[name]
            f(json.loads(raw))  # raises when invalid

            def fast(b, f=f):
                f(json.loads(b))

            row["fastjsonschema_eps"] = timed(fast, raw, args.events)
        rows.append(row)

    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2))
        return
    print(f"{'SCHEMA':<22}{'BYTES':>7}{'jsonschema ev/s':>18}{'fastjsonschema ev/s':>22}")
    for r in rows:
        js = f"{r['jsonschema_eps']:.0f}" if "jsonschema_eps" in r else "-"
        fj = f"{r['fastjsonschema_eps']:.0f}" if "fastjsonschema_eps" in r else "-"
        print(f"{r['schema']:<22}{r['bytes']:>7}{js:>18}{fj:>22}")
    print(f"python {sys.version.split()[0]}; parse (json.loads) + validate per event")


if __name__ == "__main__":
    main()
