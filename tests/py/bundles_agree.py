"""Python's jsonschema judges herald's examples against herald's bundles.

Usage: python3 bundles_agree.py BUNDLE_DIR CASES_JSON

BUNDLE_DIR is what `herald export --bundle` wrote. CASES_JSON is a list of
{schema, version, example, event, herald_valid, expect}: one per example and
schema version, with herald's own verdict, computed by the Rust test that runs
this script. Every verdict must agree, and every invalid example must fail for
the reason it states (`expect`: [[instance path, keyword]]).

The bundles are loaded with an empty registry: a `$ref` that the bundle does
not itself resolve is an error, never a fetch. Formats are asserted; a missing
format checker is an error, not a silent pass.

Exit 0 and one JSON summary line on agreement; exit 1 listing every
disagreement otherwise.
"""

import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry

REQUIRED_FORMATS = {"uuid", "date-time", "uri"}


def pointer(path):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def flatten(errors):
    for e in errors:
        yield e
        yield from flatten(e.context or [])


def main(bundle_dir, cases_file):
    checker = Draft202012Validator.FORMAT_CHECKER
    missing = REQUIRED_FORMATS - set(checker.checkers)
    if missing:
        sys.exit(
            f"error: jsonschema cannot check the formats {sorted(missing)}: "
            "pip install -r tests/py/requirements.txt"
        )
    cases = json.loads(pathlib.Path(cases_file).read_text())
    if not cases:
        sys.exit("error: no cases to check")
    validators = {}
    problems = []
    counts = {"cases": len(cases), "valid": 0, "invalid": 0, "expectations": 0}
    for case in cases:
        key = (case["schema"], case["version"])
        if key not in validators:
            path = pathlib.Path(bundle_dir) / case["schema"] / f"{case['version']}.json"
            schema = json.loads(path.read_text())
            Draft202012Validator.check_schema(schema)
            validators[key] = Draft202012Validator(
                schema, format_checker=checker, registry=Registry()
            )
        errors = list(validators[key].iter_errors(case["event"]))
        valid = not errors
        counts["valid" if valid else "invalid"] += 1
        where = f"{case['example']} under {case['schema']}@{case['version']}"
        if valid != case["herald_valid"]:
            said = "; ".join(f"{pointer(e.absolute_path)}: {e.message}" for e in errors)
            problems.append(
                f"{where}: herald says {'valid' if case['herald_valid'] else 'invalid'}, "
                f"jsonschema says {'valid' if valid else 'invalid: ' + said}"
            )
        for want_path, want_keyword in case.get("expect", []):
            counts["expectations"] += 1
            if not any(
                pointer(e.absolute_path) == want_path and e.validator == want_keyword
                for e in flatten(errors)
            ):
                problems.append(
                    f"{where}: expected `{want_keyword}` at `{want_path}`, jsonschema found "
                    + (", ".join(f"`{e.validator}` at `{pointer(e.absolute_path)}`" for e in flatten(errors)) or "nothing")
                )
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(counts))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
