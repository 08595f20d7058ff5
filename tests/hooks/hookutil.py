"""Shared pieces of the package-manager hook tests (imported as tests.hooks.hookutil).

The hooks call the verifier through $WOTR_VERIFY_CMD.  Until the real `wotr verify` exists,
the `verifier` fixture (conftest.py) is the stub next to this file, which rejects files whose
bytes contain TAMPERED.  To run the same tests against the real verifier, change only that
fixture: return a Verifier whose `command` runs `wotr verify --policy ...` and whose
`approve()` has a quorum of the policy's signers sign the file's digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STUB = HERE / "stub_verifier.py"


@dataclass
class Verifier:
    command: str  # the value for WOTR_VERIFY_CMD
    log: Path  # one JSON line per verifier call (the stub writes it; the real one may not)

    def approve(self, path: Path) -> None:
        """Make `path` verifiable.  The stub trusts any file without TAMPERED in it."""
        assert b"TAMPERED" not in path.read_bytes()

    def env(self) -> dict[str, str]:
        return {"WOTR_VERIFY_CMD": self.command, "WOTR_STUB_LOG": str(self.log)}

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]
