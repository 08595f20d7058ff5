"""Rebuilders at work: ``git wotr follow`` against a real bare remote, and ``git wotr report``'s
static site, read back by a real headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing import sim
from tests.test_build import RECIPE, REPRODUCIBLE_MAKEFILE, UNREPRODUCIBLE_MAKEFILE, wotr
from wotr import site, status

ROOT = Path(__file__).resolve().parents[1]
# Where the screenshot of the status page is kept (CI keeps it as an artifact; README shows one).
SCREENSHOT_DIR = ROOT / "test-artifacts"


# --- follow -----------------------------------------------------------------------------------


def _published(world: sim.World, makefile: bytes = REPRODUCIBLE_MAKEFILE) -> tuple[Path, Path]:
    """The author's repository pushed to a bare origin with tag v1.0; a rebuilder's clone."""
    sim.commit(world.repo, "project", files={"Makefile": makefile, "wotr.toml": RECIPE})
    sim.git(world.repo, "tag", "v1.0")
    origin = world.root / "origin.git"
    sim.git(world.root, "init", "-q", "--bare", "-b", "main", str(origin))
    sim.git(world.repo, "remote", "add", "origin", str(origin))
    sim.git(world.repo, "push", "-q", "origin", "main", "v1.0")
    clone = world.root / "rebuilder"
    sim.git(world.root, "clone", "-q", "--no-tags", str(origin), str(clone))
    return origin, clone


def _follow(
    world: sim.World, clone: Path, *args: str, party: str = "bob"
) -> subprocess.CompletedProcess[str]:
    return wotr(
        world,
        "follow",
        "--once",
        "--build-root",
        world.root / f"broot-{party}",
        *args,
        party=party,
        cwd=clone,
    )


def _remote_note(origin: Path, commit: str) -> bytes:
    res = subprocess.run(
        ["git", "--git-dir", str(origin), "notes", "--ref=wotr", "show", commit],
        capture_output=True,
        env=sim.base_env(),
        check=False,
    )
    return res.stdout


def test_follow_builds_each_new_release_once_signs_and_pushes(world: sim.World) -> None:
    origin, clone = _published(world)
    first = _follow(world, clone)
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"v1\.0: building [0-9a-f]{12} \(attempt 1 of 3\)", first.stdout)
    assert re.search(r"v1\.0: reproduced, signed, pushed in [0-9.]+ s", first.stdout)
    commit = sim.git(world.repo, "rev-parse", "v1.0^{commit}")
    assert _remote_note(origin, commit).count(b"\n") == 1
    # The next round has nothing to do: one run per release.
    again = _follow(world, clone)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing new to build" in again.stdout
    assert _remote_note(origin, commit).count(b"\n") == 1
    # A new release is picked up on the next round; an old one is not rebuilt.
    sim.commit(world.repo, "two", files={"src/two.c": b"int two;\n"})
    sim.git(world.repo, "tag", "v1.1")
    sim.git(world.repo, "push", "-q", "origin", "main", "v1.1")
    third = _follow(world, clone)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "v1.1: reproduced" in third.stdout and "v1.0" not in third.stdout
    # The claim counts for the tag: alice's policy with bob alone at threshold 1 verifies it.
    sim.git(world.repo, "fetch", "-q", "origin", "refs/notes/wotr:refs/notes/wotr")
    policy = world.policy(1, ["bob"])
    built = clone / ".git" / "wotr" / "builds" / commit / "app.tar.gz"
    ok = world.verify("--rev", "v1.0", built, policy=policy)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_follow_in_a_new_clone_skips_what_this_key_already_claimed(world: sim.World) -> None:
    origin, clone = _published(world)
    assert _follow(world, clone).returncode == 0
    fresh = world.root / "fresh"
    sim.git(world.root, "clone", "-q", "--no-tags", str(origin), str(fresh))
    res = _follow(world, fresh)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "v1.0: already claimed with this signer's key; not rebuilt" in res.stdout
    assert "building" not in res.stdout


def test_follow_is_not_stopped_by_a_line_that_only_names_its_key(world: sim.World) -> None:
    """A forged line (carol's signature, bob's fingerprint as keyid) must not count as bob's."""
    _, clone = _published(world)
    commit = sim.git(world.repo, "rev-parse", "v1.0^{commit}")
    claim = world.claim({"app.tar.gz": b"x"}, rev=commit, ref="refs/tags/v1.0")
    line = sim.envelope_line(world.parties["carol"].key, claim)
    forged = line.replace(
        world.parties["carol"].fingerprint.encode(), world.parties["bob"].fingerprint.encode()
    )
    sim.write_note(world.repo, commit, forged)
    sim.git(world.repo, "push", "-q", "origin", "refs/notes/wotr")
    res = _follow(world, clone)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    assert "already claimed" not in res.stdout
    assert "v1.0: building" in res.stdout


def test_follow_signs_dissent_and_exits_1(world: sim.World) -> None:
    origin, clone = _published(world, UNREPRODUCIBLE_MAKEFILE)
    # alice signs her own (unreproducible) build first; bob's differs from it.
    built = wotr(
        world,
        "build",
        "--build-root",
        world.root / "ba",
        "--sign",
        "--rev",
        "v1.0",
        "--push",
        "origin",
        party="alice",
    )
    assert built.returncode == 0, built.stderr
    res = _follow(world, clone)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "v1.0: DIFFERS from earlier claims; dissent signed, pushed" in res.stdout
    commit = sim.git(world.repo, "rev-parse", "v1.0^{commit}")
    assert _remote_note(origin, commit).count(b"\n") == 2


def test_follow_gives_up_on_a_release_that_never_builds(world: sim.World) -> None:
    _, clone = _published(world, b"dist/app.tar.gz:\n\texit 7\n")
    codes = []
    for _ in range(3):
        res = _follow(world, clone, "--retries", "2")
        codes.append(res.returncode)
        last = res.stdout
    assert codes == [2, 2, 2]
    assert "v1.0: gave up after 2 failed build(s)" in last
    fourth = _follow(world, clone, "--retries", "2")
    assert "building" not in fourth.stdout  # never looped on
    logs = list((clone / ".git" / "wotr" / "follow" / "logs").iterdir())
    assert len(logs) == 1 and "exit status 2" in logs[0].read_text(), logs[0].read_text()


def test_follow_kills_a_build_past_its_timeout(world: sim.World) -> None:
    _, clone = _published(world, b"dist/app.tar.gz:\n\tsleep 617\n")
    res = _follow(world, clone, "--timeout", "2", "--retries", "1")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "build TIMED OUT after 2 s" in res.stdout
    # Nothing of the killed build is left running.
    leftover = subprocess.run(["pgrep", "-f", "sleep 617"], capture_output=True, check=False)
    assert leftover.returncode == 1, leftover.stdout


def test_follow_never_rebuilds_a_moved_tag(world: sim.World) -> None:
    _, clone = _published(world)
    assert _follow(world, clone).returncode == 0
    # The tag moves on the remote: git refuses to clobber ours, wotr says so and builds nothing.
    sim.commit(world.repo, "evil", files={"src/main.c": b"int main(void) { return 1; }\n"})
    sim.git(world.repo, "tag", "-f", "v1.0")
    sim.git(world.repo, "push", "-q", "-f", "origin", "main", "v1.0")
    res = _follow(world, clone)
    assert "tag v1.0 on origin differs from ours; not followed" in res.stdout
    assert "building" not in res.stdout
    # Moved locally too (a forced fetch): reported as moved, never rebuilt.
    sim.git(clone, "fetch", "-q", "-f", "origin", "refs/tags/v1.0:refs/tags/v1.0")
    moved = _follow(world, clone)
    assert moved.returncode == 2, moved.stdout + moved.stderr
    assert "v1.0: MOVED from" in moved.stdout and "building" not in moved.stdout


def test_follow_refuses_a_second_follower_and_a_bad_state_file(world: sim.World) -> None:
    import fcntl

    _, clone = _published(world)
    d = clone / ".git" / "wotr" / "follow"
    d.mkdir(parents=True)
    with open(d / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        res = _follow(world, clone)
    assert res.returncode == 2 and "another 'git wotr follow' is running" in res.stderr
    (d / "state.json").write_text("{not json")
    bad = _follow(world, clone)
    assert bad.returncode == 2 and "is not a follow state file" in bad.stderr
    assert "Traceback" not in bad.stderr


# --- the status page --------------------------------------------------------------------------

# Artifact names are file names (no '/', no C0 control characters, at most 255 bytes), which
# still leaves markup, quotes, C1 controls and bidi overrides.
HOSTILE = [
    "<script>alert(1)<script>.tar.gz",
    '"><img src=x onerror=alert(2)>.zip',
    "quote'\"&amp;.bin",
    "a" * 248 + ".tar.gz",
    "tab\u00a0nbsp \u00e9t\u00e9.txt",
]
# Names with C1 controls or bidi overrides are refused by the claim parser; the line is listed
# as rejected, with a reason that quotes the name.
CONTROL_NAME = "ctl\x9b31mred\u202eevil.txt"


def _release(world: sim.World, tag: str, signers: dict[str, dict[str, bytes]]) -> str:
    slug = hashlib.sha256(tag.encode()).hexdigest()[:12]
    commit = sim.commit(world.repo, slug, files={f"{slug}.txt": tag.encode()})
    sim.git(world.repo, "tag", tag)
    lines = b""
    for name, artifacts in signers.items():
        claim = world.claim(artifacts, rev=commit, ref=f"refs/tags/{tag}")
        lines += sim.envelope_line(world.parties[name].key, claim)
    if lines:
        sim.write_note(world.repo, commit, lines)
    return commit


def _site(world: sim.World, out: Path) -> subprocess.CompletedProcess[str]:
    good = {"app.tar.gz": b"good\n"}
    _release(world, "v1.0", {"alice": good, "bob": good, "carol": good})
    _release(world, "v1.1", {"alice": good, "bob": good, "carol": {"app.tar.gz": b"bad\n"}})
    _release(world, "v1.2", {"alice": good})
    hostile = {name: name.encode() for name in HOSTILE}
    _release(world, 'v2.0-"<b>x</b>', {"alice": hostile, "bob": hostile})
    policy = world.policy(2)
    return world.run("report", "-o", out, "--policy", policy)


def test_report_writes_a_matrix_and_a_page_per_release(world: sim.World) -> None:
    out = world.root / "site"
    res = _site(world, out)
    assert res.returncode == 0, res.stderr
    assert "4 release(s), 3 verified" in res.stdout
    index = (out / "index.html").read_text()
    for word in ("agrees", "differs", "missing", "verified", "not verified"):
        assert word in index
    pages = sorted((out / "r").iterdir())
    assert len(pages) == 4
    # File names never come from the project's text.
    assert all(re.fullmatch(r"\d{5}-[0-9a-f]{12}\.html", p.name) for p in pages)
    # Links are relative: the copied site works anywhere.
    copy = world.root / "copy"
    shutil.copytree(out, copy)
    for page in [copy / "index.html", *sorted((copy / "r").iterdir())]:
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            assert not href.startswith(("/", "http:", "https:", "file:")), href
            assert (page.parent / href).resolve().exists(), (page, href)


def test_report_escapes_everything_from_notes(world: sim.World) -> None:
    out = world.root / "site"
    assert _site(world, out).returncode == 0
    for page in [out / "index.html", *(out / "r").iterdir()]:
        text = page.read_text()
        assert "<script" not in text.lower() and "<img" not in text.lower()
        assert "<b>x</b>" not in text
        assert "\x9b" not in text and "\u202e" not in text
        assert "onerror=alert" not in text or "&quot;&gt;&lt;img" in text


def test_site_text_helper_shortens_and_shows_controls() -> None:
    assert site._t("<a>") == "&lt;a&gt;"
    assert site._t("x\x00y\x1b") == "x\\x00y\\x1b"
    assert site._t("\u202e") == "\\u202e"
    long = site._t("b" * 500, 100)
    assert long.startswith("b" * 100) and "(500 characters)" in long


def test_report_is_bounded_by_limit(world: sim.World) -> None:
    good = {"app.tar.gz": b"good\n"}
    for i in range(5):
        _release(world, f"v0.{i}", {"alice": good, "bob": good})
    policy = world.policy(2)
    res = world.run("report", "-o", world.root / "s", "--policy", policy, "--limit", "2")
    assert res.returncode == 0, res.stderr
    assert "2 release(s), 2 verified, 3 older not shown" in res.stdout
    assert "3 older release(s) are not shown" in (world.root / "s" / "index.html").read_text()


def test_status_cells_follow_the_counting_rules(world: sim.World) -> None:
    """A claim by a key outside the policy never shows as agreement."""
    from wotr import git
    from wotr import policy as policy_mod

    good = {"app.tar.gz": b"good\n"}
    _release(world, "v1.0", {"alice": good, "bob": good})
    pol = policy_mod.load(world.policy(2, ["alice", "carol"]))
    found = status.collect(git.open_repo(world.repo), pol, pattern="v*")
    (release,) = found.releases
    cells = {c.signer: c.state for c in release.cells}
    assert cells == {"alice": status.AGREE, "carol": status.MISSING}
    assert not release.verified and "1 of 2" in release.reason


# --- in a real browser ------------------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    exe = _chromium()
    assert exe is not None
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={home / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    _chromium() is None and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
)
def test_report_in_a_real_browser(world: sim.World) -> None:
    out = world.root / "site"
    assert _site(world, out).returncode == 0
    dom = _browser(["--dump-dom", (out / "index.html").as_uri()], world.root)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # What a reader sees: the releases, the verdicts, the words beside the colours.
    for text in ("v1.0", "v1.1", "verified", "agrees", "differs", "missing"):
        assert text in html
    # The hostile names are text, not markup: no element the page did not write.
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    page = next(p for p in (out / "r").iterdir() if "alert(1)" in p.read_text())
    release = _browser(["--dump-dom", page.as_uri()], world.root)
    assert "&lt;script&gt;alert(1)&lt;script&gt;.tar.gz" in release.stdout
    assert "<script" not in release.stdout.lower()
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    shot = SCREENSHOT_DIR / "report.png"
    res = _browser(
        [f"--screenshot={shot}", "--window-size=1000,700", (out / "index.html").as_uri()],
        world.root,
    )
    assert res.returncode == 0 and shot.stat().st_size > 1000, res.stderr[-2000:]
    assert hashlib.sha256(shot.read_bytes()).hexdigest()


# --- the systemd units -------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    """docs/systemd/*: systemd-analyze verify accepts them (with git-wotr at this venv's path)."""
    exe = str(Path(sys.executable).parent / "git-wotr")
    units = sorted((ROOT / "docs" / "systemd").iterdir())
    assert {u.name for u in units} == {
        "wotr-follow.service",
        "wotr-follow-once.service",
        "wotr-follow-once.timer",
    }
    for unit in units:
        text = unit.read_text().replace("/usr/local/bin/git-wotr", exe)
        (tmp_path / unit.name).write_text(text)
    res = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in units)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Unknown" not in res.stderr, res.stderr


def test_status_shows_a_withdrawn_claim(world: sim.World) -> None:
    """bob withdraws his claim on v1.0: his cell says so and v1.0 no longer verifies at 2."""
    from wotr import git
    from wotr import policy as policy_mod

    sim.commit(world.repo, "rel", files={"rel.txt": b"1"})
    sim.git(world.repo, "tag", "v1.0")
    art = world.artifact("app.tar.gz", b"good\n")
    policy = world.policy(2, ["alice", "bob"])
    for name in ("alice", "bob"):
        res = world.run("sign", "--rev", "v1.0", "--policy", policy, art, party=name)
        assert res.returncode == 0, res.stderr
    pol = policy_mod.load(policy)
    before = status.collect(git.open_repo(world.repo), pol, pattern="v*").releases[0]
    assert before.verified
    res = world.run("withdraw", "--rev", "v1.0", "--all", party="bob")
    assert res.returncode == 0, res.stdout + res.stderr
    (after,) = status.collect(git.open_repo(world.repo), pol, pattern="v*").releases
    cells = {c.signer: c.state for c in after.cells}
    assert cells == {"alice": status.AGREE, "bob": status.WITHDRAWN}, after.cells
    assert not after.verified
