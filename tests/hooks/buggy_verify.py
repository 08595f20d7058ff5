#!/usr/bin/env python3
"""The real `wotr verify` (through record_verify.py) with a parser bug that attacker data triggers.

Models the C1 attack on the hooks' override: an attacker who controls a file the verifier reads
-- FILE.wotr next to a package, or a bundle in the --bundles directory -- turns "not verified"
(exit 1) into another failure.  Today's wotr skips malformed bundles (so it answers exit 1), but a
future parser bug, a crash or a hang must not let the package in either.  Before anything else,
this looks at those attacker-controlled files; one that starts with TRIGGER decides the outcome:

  ``TRIGGER exit N``    exit with code N (2 bad input, 3 environment, anything else),
  ``TRIGGER signal N``  die from signal N (a crash),
  ``TRIGGER hang``      never finish (like a verifier stuck on a FIFO).

Without such a file, the call is the real `wotr verify`, verbatim.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

TRIGGER = b"WOTR-TEST-PARSER-BUG "


def attacker_files(argv: list[str]) -> list[Path]:
    files = argv[argv.index("--") + 1 :] if "--" in argv else []
    found = [Path(f + ".wotr") for f in files]
    if "--bundles" in argv:
        directory = Path(argv[argv.index("--bundles") + 1])
        if directory.is_dir():
            found += sorted(directory.glob("*.wotr"))
    return found


def triggered(argv: list[str]) -> str | None:
    for path in attacker_files(argv):
        try:
            with path.open("rb") as fh:
                head = fh.read(64)
        except OSError:
            continue
        if head.startswith(TRIGGER):
            return head[len(TRIGGER) :].decode().strip()
    return None


def main(argv: list[str]) -> int:
    what = triggered(argv)
    if what is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import record_verify  # type: ignore[import-not-found]

        code: int = record_verify.main(argv)
        return code
    print(f"buggy_verify: attacker input triggers: {what}", file=sys.stderr, flush=True)
    kind, _, arg = what.partition(" ")
    if kind == "exit":
        return int(arg)
    if kind == "signal":
        os.kill(os.getpid(), int(arg))
        time.sleep(60)  # pragma: no cover - the signal ends the process
    if kind == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)
    raise SystemExit(f"buggy_verify: unknown trigger {what!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
