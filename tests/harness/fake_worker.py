"""FAKE worker: speaks the protocol's framing with canned behaviour, for transport tests."""
import json
import sys
import time

for line in sys.stdin:
    try:
        req = json.loads(line)
    except json.JSONDecodeError as exc:
        error = {"type": "JsonException", "message": str(exc)}
        print(json.dumps({"id": None, "status": "parse_error", "error": error}), flush=True)
        continue
    op, rid = req.get("op"), req.get("id")
    if op == "shutdown":
        print(json.dumps({"id": rid, "status": "ok", "result": {}}), flush=True)
        break
    if op == "echo":
        print("native library chatter on stdout", flush=True)
        print(json.dumps({"id": rid, "status": "ok", "result": {"echo": req.get("value")}}), flush=True)
    elif op == "boom":
        print(json.dumps({"id": rid, "status": "runtime_error",
                          "error": {"type": "ArgumentException", "message": "bad thing", "stack": "at X"}}), flush=True)
    elif op == "nope":
        print(json.dumps({"id": rid, "status": "skipped", "reason": "not here"}), flush=True)
    elif op == "sleep":
        time.sleep(30)
    elif op == "die":
        print("dying", file=sys.stderr, flush=True)
        sys.exit(3)
    else:
        print(json.dumps({"id": rid, "status": "parse_error", "error": {"message": f"unknown op {op}"}}), flush=True)
