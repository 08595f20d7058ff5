"""Distribution-scale sharing (issue 13 items 4 and 5): fetch into 30,000 notes, 50 pushers.

- 24: ``git wotr fetch`` of one new note into 30,000 noted commits with 150,000 notes commits
  of history, against the same into 1,000 notes (5,000 commits); target <= 2 x.
- 25: 50 clones ``sign --push`` at once into one bare remote, and 20 into a remote holding
  30,000 notes: every one must succeed, every claim arrive exactly once.

The notes history is written as a pack by hand (one commit object per notes commit, all over
the same tree, indexed by ``git index-pack``): 150,000 commits in a few seconds, where
``git fast-import`` needs half a minute. The merge's cost that issue 13 measured grew with the
number of commits (libgit2's history walk), which this history has in full.
"""

from __future__ import annotations

import hashlib
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from testing import sim

from .cases import Ctx, Row, Sizes
from .fixtures import COMMITTER
from .timing import BenchError, clock, run


def _quick(ctx: Ctx) -> bool:
    return ctx.sizes.noted_commits < Sizes.full().noted_commits


def _git(repo: Path, *args: str, data: bytes | None = None) -> str:
    res = subprocess.run(
        ["git", *args], cwd=repo, env=sim.base_env(), input=data, capture_output=True, check=False
    )
    if res.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {res.stderr.decode(errors='replace')}")
    return res.stdout.decode().strip()


def _note_name(i: int) -> str:
    return hashlib.sha1(f"noted {i}".encode()).hexdigest()


def _note(name: str) -> bytes:
    return f"{name} ".encode() + b"x" * 400 + b"\n"


def _pack_header(kind: int, size: int) -> bytes:
    first = (kind << 4) | (size & 15)
    size >>= 4
    out = bytearray()
    while size:
        out.append(first | 0x80)
        first, size = size & 0x7F, size >> 7
    out.append(first)
    return bytes(out)


def notes_remote(path: Path, notes: int, history: int) -> str:
    """A bare repository: main with one commit, refs/notes/wotr with ``notes`` notes (2/38
    fanout, as git and wotr write them) at the tip of ``history`` commits. The tip's id."""
    path.mkdir(parents=True)
    _git(path, "init", "-q", "--bare", "-b", "main")
    stream = bytearray(
        f"commit refs/heads/main\ncommitter {COMMITTER}\ndata 0\nM 644 inline README\n"
        "data 3\nhi\n\n".encode()
    )
    stream += f"commit refs/notes/wotr\ncommitter {COMMITTER}\ndata 0\n".encode()
    for i in range(notes):
        name = _note_name(i)
        data = _note(name)
        stream += f"M 100644 inline {name[:2]}/{name[2:]}\ndata {len(data)}\n".encode()
        stream += data + b"\n"
    _git(path, "fast-import", "--quiet", data=bytes(stream))
    parent = _git(path, "rev-parse", "refs/notes/wotr")
    tree = _git(path, "rev-parse", "refs/notes/wotr^{tree}")
    pack = bytearray(b"PACK" + struct.pack(">II", 2, history - 1))
    for i in range(1, history):
        who = f"Bench <bench@wotr.invalid> {1_700_000_000 + i} +0000"  # a commit a second
        body = (
            f"tree {tree}\nparent {parent}\nauthor {who}\ncommitter {who}\n\nwotr: claim {i}\n"
        ).encode()
        parent = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
        pack += _pack_header(1, len(body)) + zlib.compress(body, 1)
    pack += hashlib.sha1(pack).digest()
    target = path / "objects" / "pack" / "pack-history.pack"
    target.write_bytes(pack)
    _git(path, "index-pack", str(target))
    _git(path, "update-ref", "refs/notes/wotr", parent)
    return parent


def add_note(bare: Path, index: int) -> str:
    """One more notes commit on the remote, adding one note; the new tip."""
    name = _note_name(index)
    data = _note(name)
    now = "Bench <bench@wotr.invalid> 1800000000 +0000"  # after the whole history
    stream = (
        (
            f"commit refs/notes/wotr\ncommitter {now}\ndata 0\nfrom refs/notes/wotr^0\n"
            f"M 100644 inline {name[:2]}/{name[2:]}\ndata {len(data)}\n"
        ).encode()
        + data
        + b"\n"
    )
    _git(bare, "fast-import", "--quiet", data=stream)
    return _git(bare, "rev-parse", "refs/notes/wotr")


def _fetch_scene(where: Path, notes: int, history: int) -> tuple[Path, str]:
    """(a clone whose refs/notes/wotr holds the remote's notes, that tip); the remote then
    gains one note."""
    bare = where / "remote.git"
    tip = notes_remote(bare, notes, history)
    clone = where / "clone"
    _git(where, "clone", "-q", str(bare), str(clone))  # objects hard-linked: fast
    _git(clone, "update-ref", "refs/notes/wotr", tip)
    add_note(bare, notes)
    return clone, tip


def case_24(ctx: Ctx) -> Row:
    small, big = (30, 300) if _quick(ctx) else (1_000, 30_000)
    scenes = {n: _fetch_scene(ctx.root / "c24" / str(n), n, 5 * n) for n in (small, big)}
    fetch = ["git", "wotr", "fetch", "origin"]

    def one(n: int) -> float:
        clone, tip = scenes[n]
        _git(clone, "update-ref", "refs/notes/wotr", tip)  # as before the fetch (not timed)
        _git(clone, "update-ref", "-d", "refs/notes/remotes/origin/wotr")
        seconds = clock(lambda: run(fetch, cwd=clone, env=ctx.env))
        got = _git(clone, "notes", "--ref=wotr", "show", _note_name(n)).encode() + b"\n"
        if got != _note(_note_name(n)):
            raise BenchError("the fetched note did not arrive")
        return seconds

    samples: dict[int, list[float]] = {small: [], big: []}
    for _ in range(ctx.warmup):
        one(small), one(big)
    for i in range(ctx.reps):
        for n in (small, big) if i % 2 == 0 else (big, small):
            samples[n].append(one(n))
    med = {n: statistics.median(v) for n, v in samples.items()}
    ratio = med[big] / med[small]
    packed = sum(
        f.stat().st_size for f in (scenes[big][0] / ".git" / "objects").rglob("*") if f.is_file()
    )
    return Row(
        "24",
        f"fetch 1 new note into {big} notes ({5 * big} notes commits)",
        f"{ratio:.2f} x {small} notes",
        "<= 2",
        ratio <= 2,
        f"{med[big] * 1000:.0f} ms vs {med[small] * 1000:.0f} ms; objects "
        f"{packed / (1 << 20):.0f} MiB",
    )


# --- 25: many rebuilders push at once ------------------------------------------------------------


def _pushers(ctx: Ctx, where: Path, bare: Path, n: int, noted: str | None) -> tuple[str, bool]:
    """``n`` clones of ``bare`` run ``sign --push`` at once; (what happened, all fine)."""
    keys = ctx.keys.get(3)
    where.mkdir(parents=True)
    procs = []
    clones = []
    for i in range(n):
        clone = where / f"p{i}"
        _git(where, "clone", "-q", str(bare), str(clone))
        if noted is not None:
            _git(clone, "update-ref", "refs/notes/wotr", noted)  # fetched earlier
        art = clone / "dist" / "app.tar.gz"
        art.parent.mkdir()
        art.write_bytes(f"built by rebuilder {i}\n".encode())  # one distinct claim each
        clones.append(clone)
    head = _git(clones[0], "rev-parse", "HEAD")
    start = time.monotonic()
    for i, clone in enumerate(clones):
        env = {**ctx.env, "GNUPGHOME": str(keys[i % len(keys)].home)}
        argv = ["git", "wotr", "sign", "--push", "origin", "dist/app.tar.gz"]
        procs.append(
            subprocess.Popen(
                argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    failed = []
    for i, p in enumerate(procs):
        _out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            failed.append(f"p{i}: {err.decode(errors='replace').strip()[-200:]}")
    elapsed = time.monotonic() - start
    lines = [ln for ln in _git(bare, "notes", "--ref=wotr", "show", head).splitlines() if ln]
    once = len(lines) == len(set(lines)) == n
    if failed:
        print("\n".join(failed[:5]), file=sys.stderr)
    ok = not failed and once
    return (
        f"{n - len(failed)}/{n} ok in {elapsed:.0f} s, {len(set(lines))} claims arrived"
        + ("" if once else f" ({len(lines)} lines)"),
        ok,
    )


def case_25(ctx: Ctx) -> list[Row]:
    many, into_big, big = (3, 2, 300) if _quick(ctx) else (50, 20, 30_000)
    where = ctx.root / "c25"
    plain = where / "plain.git"
    src = sim.init_repo(where / "src")
    _git(where, "clone", "-q", "--bare", str(src), str(plain))
    text, ok = _pushers(ctx, where / "a", plain, many, None)
    rows = [Row("25", f"{many} clones sign --push at once", text, "all ok, once each", ok, "")]
    bare = where / "big.git"
    tip = notes_remote(bare, big, 5 * big)
    text, ok = _pushers(ctx, where / "b", bare, into_big, tip)
    rows.append(
        Row(
            "25b",
            f"{into_big} clones sign --push at once into {big} notes",
            text,
            "all ok, once each",
            ok,
            "",
        )
    )
    return rows


SYNC_CASES: list[tuple[str, Callable[[Ctx], Row | list[Row]]]] = [("24", case_24), ("25", case_25)]
