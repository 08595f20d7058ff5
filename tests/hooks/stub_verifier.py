#!/usr/bin/env python3
"""Stand-in for `wotr verify [--policy P] [--bundles DIR] FILE...` in the hook tests.

A file is "verified" unless its bytes contain TAMPERED.  Exit codes follow DESIGN.md section 2:
0 all verified, 1 some not verified, 2 bad input (no file, unreadable file, bad option).
Every call is appended as one JSON line to $WOTR_STUB_LOG when that is set, so tests can check
how the hook called the verifier.  Swap in the real verifier by changing WOTR_VERIFY_CMD in the
test fixture; the tests themselves do not depend on this file's internals.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    log = os.environ.get("WOTR_STUB_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")
    files: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("--policy", "--bundles"):
            if next(args, None) is None:
                print(f"stub-verify: {arg} needs a value", file=sys.stderr)
                return 2
        elif arg.startswith("-"):
            print(f"stub-verify: unknown option {arg}", file=sys.stderr)
            return 2
        else:
            files.append(arg)
    if not files:
        print("stub-verify: no files given", file=sys.stderr)
        return 2
    bad: list[str] = []
    for name in files:
        try:
            with open(name, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            print(f"stub-verify: cannot read {name}: {exc.strerror}", file=sys.stderr)
            return 2
        if b"TAMPERED" in data:
            bad.append(name)
    for name in bad:
        print(f"stub-verify: {name}: NOT verified", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
