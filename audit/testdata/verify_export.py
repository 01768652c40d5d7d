#!/usr/bin/env python3
"""Verify a byok audit export (JSON lines) from docs/audit.md alone.

usage: verify_export.py FILE    (or - for stdin)

Recomputes every line's hash and checks that each chain runs 1, 2, 3, ...
with every prev_hash equal to the hash of the line before. Exits 0 if the
export verifies, 1 (listing the problems) if not. It needs only the
Python standard library and imports nothing of byok.
"""
import hashlib
import json
import sys

GENESIS = "0" * 64


def field(h, s):
    b = s.encode("utf-8")
    h.update(len(b).to_bytes(4, "big"))
    h.update(b)


def event_hash(e):
    h = hashlib.sha256()
    vault = e.get("vault") or {}
    details = e.get("details") or {}
    for s in [
        "byok-audit-v1",
        e["tenant"],
        str(e["seq"]),
        e["prev_hash"],
        e["id"],
        e["time"],
        e["actor"]["kind"],
        e["actor"]["id"],
        e["action"],
        e.get("target", ""),
        e.get("before", ""),
        e.get("after", ""),
        e["outcome"],
        e.get("reason", ""),
        vault.get("operation", ""),
        vault.get("key_id", ""),
        vault.get("purpose", ""),
        vault.get("request_id", ""),
        str(len(details)),
    ]:
        field(h, s)
    for k in sorted(details, key=lambda k: k.encode("utf-8")):
        field(h, k)
        field(h, details[k])
    return h.hexdigest()


def main():
    f = sys.stdin if sys.argv[1:] in ([], ["-"]) else open(sys.argv[1], encoding="utf-8")
    heads = {}  # chain -> (seq, hash)
    problems = []
    n = 0
    for n, line in enumerate(f, 1):
        e = json.loads(line)
        chain = e["tenant"]
        seq, prev = heads.get(chain, (0, GENESIS))
        if e["seq"] != seq + 1:
            problems.append(f"chain {chain!r} seq {e['seq']}: follows seq {seq}")
        elif e["prev_hash"] != prev:
            problems.append(f"chain {chain!r} seq {e['seq']}: prev_hash is not the hash of seq {seq}")
        if event_hash(e) != e["hash"]:
            problems.append(f"chain {chain!r} seq {e['seq']}: hash does not match the fields")
        heads[chain] = (e["seq"], e["hash"])
    for p in problems:
        print(p)
    for chain, (seq, h) in sorted(heads.items()):
        print(f"chain {chain!r}: {seq} events, head {h}")
    print(f"{n} lines, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
