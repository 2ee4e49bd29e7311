"""A subscriber app that speaks only Dapr's pub/sub delivery contract.

It knows nothing of herald: it reads the CloudEvents binary-mode headers Dapr
sends and answers like a Dapr app does, 200 with {"status": "SUCCESS" | "RETRY" |
"DROP"}. Per event, by its `quantity`: 1 -> SUCCESS; 2 -> RETRY on the first
delivery, then SUCCESS; 3 -> DROP. A request missing a required CloudEvents
attribute gets 400 (so the test sees it in the dead-letter queue).

Usage: python3 tests/py/dapr_app.py PORT LOGFILE   (one JSON line per request)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
LOG = sys.argv[2]
ATTEMPTS = {}
CE = ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-dataschema", "traceparent"]


class Subscriber(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ce = {k: self.headers.get(k) for k in CE}
        missing = [k for k in ("ce-specversion", "ce-id", "ce-type", "ce-source") if not ce[k]]
        if missing or ce["ce-specversion"] != "1.0":
            self.answer(400, {"error": f"not a CloudEvent: missing {missing}"})
            return
        event = json.loads(body)
        key = event["event_id"]
        ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
        status = {1: "SUCCESS", 3: "DROP"}.get(event["quantity"])
        if status is None:
            status = "RETRY" if ATTEMPTS[key] == 1 else "SUCCESS"
        with open(LOG, "a") as f:
            f.write(json.dumps({"event_id": key, "quantity": event["quantity"], "attempt": ATTEMPTS[key], "status": status, "ce": ce}) + "\n")
        self.answer(200, {"status": status})

    def answer(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Subscriber).serve_forever()
