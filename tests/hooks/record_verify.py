#!/usr/bin/env python3
"""`wotr verify ARGS...` -- the real one -- recording each call for the hook tests.

Appends ``{"argv": ARGS, "cwd": ...}`` as one JSON line to $WOTR_TEST_VERIFY_LOG (when set), then
runs ``wotr verify ARGS...`` in this process through ``wotr.entry.main``, the entry point of the
``wotr`` console script, and exits with its code.  Nothing is decided here: the verdict, the
output and the exit code are wotr's.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    log = os.environ.get("WOTR_TEST_VERIFY_LOG")
    if log:
        try:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")
        except OSError as exc:  # a broken test set-up: exit 3 (environment), not 1 (rejected)
            print(f"record_verify: cannot write {log}: {exc.strerror}", file=sys.stderr)
            return 3
    from wotr.entry import main as wotr_main

    return wotr_main(["verify", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
