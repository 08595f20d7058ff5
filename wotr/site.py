"""The status page: a static site drawn from a :class:`wotr.status.Status` (no I/O but writing).

Plain HTML and one stylesheet, no JavaScript, no external resource, relative links only, so the
directory can be copied to any web server or opened from disk. Everything that comes from the
notes or the repository (tag names, artifact names, roles, reasons) is attacker-controlled text:
it only ever reaches the page through :func:`_t`, which escapes HTML, shows control characters
as visible escapes and shortens what is too long to read. File names never derive from it.
"""

from __future__ import annotations

import contextlib
import html
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .errors import BadInput
from .status import AGREE, DISSENT, MISSING, REJECTED, WITHDRAWN, Release, Status

PAGE_SIZE = 50  # releases per index page
MAX_SHOWN = 160  # characters of one name shown in the matrix; release pages show 4,000

_SYMBOL = {
    AGREE: ("\u2714", "agrees"),
    DISSENT: ("\u2716", "differs"),
    WITHDRAWN: ("\u21a9", "withdrew"),
    REJECTED: ("\u26a0", "rejected"),
    MISSING: ("\u2013", "missing"),
}

# Colours from the Okabe-Ito palette (safe for the common colour-vision deficiencies), always
# beside a symbol and a word; contrast of text on each background is above 4.5:1.
_CSS = """\
:root{color-scheme:light}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:72rem;padding:1rem;color:#111;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
.wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid #888;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eee}
td.agree{background:#d4ecff}td.dissent{background:#ffd9b3}td.withdrawn{background:#e6e0f3}
td.rejected{background:#fff1a8}td.missing{background:#fff;color:#444}
.ok{color:#005a32;font-weight:bold}.no{color:#a30000;font-weight:bold}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere;
word-break:break-all}
.name{overflow-wrap:anywhere;word-break:break-word}
nav a{margin-right:1rem}
small{color:#444}
"""


def _t(text: str, limit: int = MAX_SHOWN) -> str:
    """Attacker-controlled text as safe HTML: escaped, control characters visible, shortened."""
    out = []
    for ch in text[: limit + 1]:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or 0x202A <= code <= 0x202E:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")  # a byte of a non-UTF-8 tag name: cannot be written
        elif 0x2066 <= code <= 0x2069 or code in (0x200E, 0x200F, 0x061C):
            out.append(f"\\u{code:04x}")  # bidi controls could reorder what a reader sees
        else:
            out.append(ch)
    shown = "".join(out)
    if len(text) > limit:
        shown = shown[:limit] + f"\u2026 ({len(text)} characters)"
    return html.escape(shown, quote=True)


def _page(title: str, body: Iterable[str], css: str = "style.css") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{title}</title>'
        f'<link rel="stylesheet" href="{css}"></head><body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _cell(state: str, detail: str) -> str:
    symbol, word = _SYMBOL[state]
    tip = f' title="{_t(detail, 300)}"' if detail else ""
    return f'<td class="{state}"{tip}><span aria-hidden="true">{symbol}</span> {word}</td>'


def _verdict(release: Release) -> str:
    if release.verified:
        return '<span class="ok">\u2714 verified</span>'
    return f'<span class="no">\u2716 not verified</span> <small>{_t(release.reason, 200)}</small>'


def _release_file(index: int, release: Release) -> str:
    # Never from the tag name (attacker text): the commit id is hex, the index makes it unique.
    return f"r/{index:05d}-{release.commit[:12]}.html"


def _differs(release: Release) -> str:
    names = [a.name for a in release.artifacts if a.others]
    if not names:
        return ""
    shown = ", ".join(_t(n, 60) for n in names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return shown + more


def _legend() -> str:
    items = "".join(
        f'<td class="{state}"><span aria-hidden="true">{sym}</span> {word}</td>'
        for state, (sym, word) in _SYMBOL.items()
    )
    return f'<div class="wrap"><table aria-label="legend"><tr>{items}</tr></table></div>'


def _index_pages(status: Status, generated: str) -> list[tuple[str, str]]:
    releases = list(enumerate(status.releases))
    chunks = [releases[i : i + PAGE_SIZE] for i in range(0, len(releases), PAGE_SIZE)] or [[]]
    pages: list[tuple[str, str]] = []
    names = ["index.html" if n == 0 else f"page-{n + 1}.html" for n in range(len(chunks))]
    for n, chunk in enumerate(chunks):
        verified = sum(1 for r in status.releases if r.verified)
        body = [
            "<h1>Release status</h1>",
            f"<p>Policy <code>{_t(status.policy, 300)}</code>: {status.threshold} of "
            f"{len(status.signers)} signers must agree. {verified} of "
            f"{len(status.releases)} releases shown verify.</p>",
            _legend(),
            '<div class="wrap"><table aria-label="releases by signer"><thead><tr>'
            '<th scope="col">release</th><th scope="col">verdict</th>'
            + "".join(f'<th scope="col" class="name">{_t(s, 60)}</th>' for s in status.signers)
            + '<th scope="col">differs</th></tr></thead><tbody>',
        ]
        for i, release in chunk:
            row = [
                f'<tr><th scope="row" class="name"><a href="{_release_file(i, release)}">'
                f'{_t(release.tag, 80)}</a><br><small class="mono">{release.commit[:12]}'
                "</small></th>",
                f"<td>{_verdict(release)}</td>",
            ]
            by_signer = {c.signer: c for c in release.cells}
            for signer in status.signers:
                cell = by_signer.get(signer)
                row.append(_cell(cell.state, cell.detail) if cell else _cell(MISSING, ""))
            row.append(f'<td class="name">{_differs(release)}</td></tr>')
            body.append("".join(row))
        body.append("</tbody></table></div>")
        if not status.releases:
            body.append(f"<p>No tag matches <code>{_t(status.pattern)}</code>.</p>")
        if status.not_checked:
            body.append(
                f"<p>{status.not_checked} older release(s) are not shown; run "
                "<code>git wotr report --limit N</code> to include more.</p>"
            )
        nav = [
            f'<a href="{name}">page {k + 1}</a>' if k != n else f"<b>page {k + 1}</b>"
            for k, name in enumerate(names)
        ]
        if len(names) > 1:
            body.append("<nav>" + "".join(nav) + "</nav>")
        body.append(f"<p><small>Generated by git wotr report, {generated}.</small></p>")
        pages.append((names[n], _page("Release status", body)))
    return pages


def _release_page(release: Release, status: Status, back: str) -> str:
    body = [
        f'<nav><a href="../{back}">\u2190 all releases</a></nav>',
        f'<h1 class="name">{_t(release.tag, 4000)}</h1>',
        f"<p>Commit <code>{release.commit}</code>. {_verdict(release)}</p>",
        "<h2>Signers</h2>",
        _legend(),
        '<div class="wrap"><table aria-label="signers"><tr>'
        + "".join(f'<th scope="col" class="name">{_t(c.signer, 60)}</th>' for c in release.cells)
        + "</tr><tr>"
        + "".join(_cell(c.state, c.detail) for c in release.cells)
        + "</tr></table></div>",
        "<h2>Artifacts</h2>",
    ]
    if release.artifacts:
        body.append(
            '<div class="wrap"><table aria-label="artifacts"><tr><th scope="col">artifact</th>'
            '<th scope="col">sha256</th><th scope="col">signers</th>'
            '<th scope="col">verdict</th><th scope="col">other digests</th></tr>'
        )
        for a in release.artifacts:
            verdict = (
                '<span class="ok">\u2714 quorum</span>'
                if a.verified
                else f'<span class="no">\u2716 {_t(a.reason, 200)}</span>'
            )
            others = "<br>".join(
                f"<code>{_t(d, 64)}</code>: {_t(', '.join(s), 300)}" for d, s in a.others
            )
            body.append(
                f'<tr><td class="name">{_t(a.name, 4000)}</td><td><code>{_t(a.sha256, 64)}'
                f"</code></td><td>{_t(', '.join(a.signers), 300)}</td><td>{verdict}</td>"
                f"<td>{others}</td></tr>"
            )
        body.append("</table></div>")
    else:
        body.append("<p>No artifact has a claim that counts.</p>")
    body.append(f"<h2>Claims ({len(release.claims)} lines listed)</h2>")
    if release.claims:
        body.append(
            '<div class="wrap"><table aria-label="claims"><tr><th scope="col">line</th>'
            '<th scope="col">signer</th><th scope="col">role</th><th scope="col">counts</th>'
            '<th scope="col">artifacts</th></tr>'
        )
        for c in release.claims:
            counts = "\u2714 yes" if c.counts else f"\u2716 no: {_t(c.reason, 300)}"
            arts = "<br>".join(
                f'<span class="name">{_t(n, 300)}</span> <code>{_t(d, 64)[:16]}\u2026</code>'
                for n, d in c.artifacts[:50]
            )
            if len(c.artifacts) > 50:
                arts += f"<br>and {len(c.artifacts) - 50} more"
            body.append(
                f'<tr><td>{c.line}</td><td class="name">{_t(c.signer, 120)}</td>'
                f'<td class="name">{_t(c.role, 60)}</td><td>{counts}</td><td>{arts}</td></tr>'
            )
        body.append("</table></div>")
    return _page(f"Release {_t(release.tag, 80)}", body, css="../style.css")


def write(status: Status, out: Path, *, now: float | None = None) -> list[Path]:
    """Write the site into ``out`` (created; files wotr wrote before are replaced)."""
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now))
    (out / "r").mkdir(parents=True, exist_ok=True)
    if (out / "r").is_symlink():  # pages would land wherever the link points
        raise BadInput(f"{out / 'r'} is a symbolic link", "remove it, or write to a new directory")
    files: list[tuple[str, str]] = [("style.css", _CSS)]
    files += _index_pages(status, generated)
    for i, release in enumerate(status.releases):
        back = "index.html" if i < PAGE_SIZE else f"page-{i // PAGE_SIZE + 1}.html"
        files.append((_release_file(i, release), _release_page(release, status, back)))
    written: list[Path] = []
    for name, text in files:
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        # O_EXCL|O_NOFOLLOW: never write through a link someone left in the output directory.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        written.append(path)
    return written
