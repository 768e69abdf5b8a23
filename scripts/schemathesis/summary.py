"""Summarise a schemathesis HAR report: requests sent, statuses, operations touched.

usage: summary.py REPORT.har [--unauthorized OPENAPI.json]

With --unauthorized (the run without an API key), checks every recorded answer independently of
schemathesis: 401 for a method the document defines on the path, 405 for any other method (the
method probes), and exits 1 otherwise.
"""

import json
import re
import sys
from collections import Counter
from urllib.parse import urlparse


def templates(doc):
    """(regex, documented methods) of every path of an OpenAPI document."""
    out = []
    for path, item in doc.get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]*", re.escape(path)) + "$"
        out.append((re.compile(pattern), {m.upper() for m in item}))
    return out


def main() -> int:
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    doc = None
    if "--unauthorized" in args:
        i = args.index("--unauthorized")
        with open(args[i + 1], encoding="utf-8") as f:
            doc = json.load(f)
        del args[i : i + 2]
    with open(args[0], encoding="utf-8") as f:
        har = json.load(f)
    entries = har.get("log", {}).get("entries", [])
    statuses = Counter(e["response"]["status"] for e in entries)
    shapes = Counter()
    for e in entries:
        path = urlparse(e["request"]["url"]).path
        shapes[e["request"]["method"] + " " + re.sub(r"/[^/]*\d[^/]*", "/{}", path)] += 1
    print(f"requests: {len(entries)}")
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    print(f"5xx responses: {sum(n for s, n in statuses.items() if s >= 500)}")
    if doc is None:
        return 0
    paths = templates(doc)
    wrong = Counter()
    for e in entries:
        method = e["request"]["method"].upper()
        path = urlparse(e["request"]["url"]).path
        documented = any(rx.match(path) and method in methods for rx, methods in paths)
        expected = 401 if documented else 405
        if e["response"]["status"] != expected:
            wrong[(method, path[:80], e["response"]["status"], expected)] += 1
    if wrong or not entries:
        for (method, path, got, expected), n in wrong.most_common(20):
            print(f"FAIL: {n} x {method} {path}: {got}, expected {expected}", file=sys.stderr)
        return 1
    print("every answer without a key: 401 (405 for methods the route does not have)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
