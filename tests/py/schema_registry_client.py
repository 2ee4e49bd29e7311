"""Drive `herald serve`'s read-only Schema Registry subset with confluent-kafka's
SchemaRegistryClient (no Kafka broker needed) and print what it saw as JSON.

Usage: python3 tests/py/schema_registry_client.py http://127.0.0.1:PORT

The Rust test crates/herald-cli/tests/serve_cli.rs runs this against a live
`herald serve` and checks every value. Exit 3 when the package is missing.
"""

import json
import sys

try:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError
except ImportError as e:  # the test must fail loudly, never skip
    print(
        "confluent-kafka[schemaregistry,json] is not installed "
        f"(pip install -r tests/py/requirements.txt): {e}",
        file=sys.stderr,
    )
    sys.exit(3)


def error_code(call):
    try:
        call()
    except SchemaRegistryError as e:
        return {"http": e.http_status_code, "code": e.error_code, "message": e.error_message}
    return None


def main(url):
    client = SchemaRegistryClient({"url": url})
    subject = "usage.metered.api_call-value"
    out = {"subjects": client.get_subjects()}

    latest = client.get_latest_version(subject)
    out["latest"] = {
        "version": latest.version,
        "id": latest.schema_id,
        "subject": latest.subject,
        "type": latest.schema.schema_type,
        "references": [
            {"name": r.name, "subject": r.subject, "version": r.version}
            for r in latest.schema.references
        ],
    }
    out["versions"] = client.get_versions(subject)

    # A fresh client: get_schema by id must ask the server, not the cache.
    by_id = SchemaRegistryClient({"url": url}).get_schema(latest.schema_id)
    document = json.loads(by_id.schema_str)
    out["by_id"] = {"id": document.get("$id"), "type": by_id.schema_type}

    same = Schema(latest.schema.schema_str, "JSON", latest.schema.references)
    out["compatible_same"] = client.test_compatibility(subject, same)

    changed = json.loads(latest.schema.schema_str)
    changed["properties"]["quantity"] = {"type": "string"}
    changed_schema = Schema(json.dumps(changed), "JSON", latest.schema.references)
    out["compatible_changed_type"] = client.test_compatibility(subject, changed_schema)
    out["compatible_changed_type_v1"] = client.test_compatibility(subject, changed_schema, version=1)

    out["config"] = client.get_compatibility(subject)
    out["lookup_id"] = client.lookup_schema(subject, same).schema_id
    out["missing_subject"] = error_code(lambda: client.get_latest_version("no.such-value"))
    out["missing_version"] = error_code(lambda: client.get_version(subject, 99))
    out["register"] = error_code(lambda: client.register_schema(subject, changed_schema))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
