#!/bin/sh
# wotr's system install (see docs/install.md): called by `make install`, `make install-hooks`
# and `make uninstall` with the Makefile's variables in the environment.
#
#   install        a venv at $PREFIX (default /opt/wotr) with wotr from this tree, and links
#                  $BINDIR/wotr, $BINDIR/git-wotr (default /usr/local/bin: on sudo's secure_path)
#   install-hooks  the hook files under $HOOKSDIR (default /usr/local/lib/wotr/hooks); for every
#                  package manager named in $ENABLE (apt pacman dnf) also its configuration, which
#                  turns the check ON, and the bundles directory $BUNDLESDIR
#   uninstall      removes every path the two wrote (listed in $MANIFEST), then $PREFIX
#
# Every path written is appended to $MANIFEST (default $PREFIX/install-manifest.txt) before it is
# written, so an interrupted install still uninstalls cleanly.  Nothing is ever overwritten that
# this script did not write: an existing foreign file stops it.
set -eu
# apt, pacman and dnf run the hooks as root: nothing written here may be writable by others,
# whatever umask the administrator's shell has (mkdir and the venv follow it)
umask 022
: "${PREFIX:=/opt/wotr}" "${BINDIR:=/usr/local/bin}" "${HOOKSDIR:=/usr/local/lib/wotr/hooks}"
: "${SYSCONFDIR:=/etc}" "${BUNDLESDIR:=/var/lib/wotr/bundles}" "${PYTHON:=python3}"
: "${MANIFEST:=$PREFIX/install-manifest.txt}" "${ENABLE:=}"
: "${APTCONFDIR:=$SYSCONFDIR/apt/apt.conf.d}" "${ALPMHOOKDIR:=$SYSCONFDIR/pacman.d/hooks}"
: "${DNFPLUGINDIR:=/usr/lib/python3/dist-packages/dnf-plugins}"
: "${DNFCONFDIR:=$SYSCONFDIR/dnf/plugins}"
SRC=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "install: $*" >&2; exit 2; }
absolute() { case "$2" in /*) ;; *) die "$1=$2 must be an absolute path" ;; esac; }
for v in PREFIX BINDIR HOOKSDIR SYSCONFDIR BUNDLESDIR MANIFEST; do
  eval "absolute $v \"\$$v\""
done

note() { printf '%s\n' "$1" >>"$MANIFEST"; }
fresh() {  # refuse to replace what we did not write
  if [ -e "$1" ] || [ -L "$1" ]; then
    grep -qxF "$1" "$MANIFEST" 2>/dev/null || die "$1 exists and was not installed by wotr: remove it first"
  fi
}
mkdirs() {  # create a directory and its missing parents, noting each one created
  [ -d "$1" ] && return 0
  mkdirs "$(dirname "$1")"
  note "$1/"
  mkdir "$1"
}
put() {  # put SOURCE DEST MODE
  fresh "$2"; mkdirs "$(dirname "$2")"; note "$2"
  cp "$1" "$2.tmp.$$" && chmod "$3" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}
link() {  # link TARGET NAME
  fresh "$2"; mkdirs "$(dirname "$2")"; note "$2"
  ln -sfn "$1" "$2"
}

case "${1:-}" in
install)
  if [ -e "$PREFIX" ] && ! grep -qxF "$PREFIX/" "$MANIFEST" 2>/dev/null; then
    die "$PREFIX exists and was not created by wotr's install: choose another PREFIX"
  fi
  missing="" d="$PREFIX"
  while [ ! -d "$d" ]; do missing="$d/
$missing" d=$(dirname "$d"); done
  mkdir -p "$PREFIX" "$(dirname "$MANIFEST")"
  printf '%s' "$missing" >>"$MANIFEST"
  "$PYTHON" -m venv "$PREFIX" || die "cannot create a venv at $PREFIX (Debian: apt install python3-venv)"
  "$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check "$SRC" ||
    die "pip could not install wotr into $PREFIX"
  link "$PREFIX/bin/wotr" "$BINDIR/wotr"
  link "$PREFIX/bin/git-wotr" "$BINDIR/git-wotr"
  echo "installed wotr in $PREFIX; $BINDIR/wotr and $BINDIR/git-wotr link to it"
  ;;
install-hooks)
  grep -qxF "$PREFIX/" "$MANIFEST" 2>/dev/null || die "run 'make install' first (PREFIX=$PREFIX)"
  put "$SRC/hooks/wotr_hooklib.py" "$HOOKSDIR/wotr_hooklib.py" 644
  put "$SRC/hooks/verify-file" "$HOOKSDIR/verify-file" 755
  put "$SRC/hooks/apt/wotr-apt-hook" "$HOOKSDIR/apt/wotr-apt-hook" 755
  put "$SRC/hooks/pacman/wotr-pacman-hook" "$HOOKSDIR/pacman/wotr-pacman-hook" 755
  put "$SRC/hooks/dnf/wotr.py" "$HOOKSDIR/dnf/wotr.py" 644
  put "$SRC/hooks/pip/wotr-pip-lock" "$HOOKSDIR/pip/wotr-pip-lock" 755
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  for pm in $ENABLE; do
    case "$pm" in
    apt)
      sed "s|/usr/lib/wotr/wotr-apt-hook|$HOOKSDIR/apt/wotr-apt-hook|g" \
        "$SRC/hooks/apt/80wotr.conf" >"$tmp"
      put "$tmp" "$APTCONFDIR/80wotr" 644 ;;
    pacman)
      sed "s|^Exec = .*|Exec = $HOOKSDIR/pacman/wotr-pacman-hook|" \
        "$SRC/hooks/pacman/wotr.hook" >"$tmp"
      put "$tmp" "$ALPMHOOKDIR/wotr.hook" 644 ;;
    dnf)
      link "$HOOKSDIR/dnf/wotr.py" "$DNFPLUGINDIR/wotr.py"
      put "$SRC/hooks/dnf/wotr.conf" "$DNFCONFDIR/wotr.conf" 644 ;;
    *) die "ENABLE names $pm: known are apt, pacman, dnf" ;;
    esac
  done
  if [ -n "$ENABLE" ]; then
    mkdirs "$BUNDLESDIR"
    mkdirs "$SYSCONFDIR/wotr"
  fi
  echo "installed the hooks in $HOOKSDIR${ENABLE:+; enabled for: $ENABLE}"
  ;;
uninstall)
  [ -f "$MANIFEST" ] || die "no $MANIFEST: nothing was installed with this PREFIX"
  # files and links first (newest first), then the directories this install created, deepest
  # first, and only when empty (a directory holding the administrator's files stays)
  list=$(mktemp)
  trap 'rm -f "$list"' EXIT
  tac "$MANIFEST" >"$list"
  while IFS= read -r p; do
    case "$p" in */) ;; *) rm -f "$p" ;; esac
  done <"$list"
  if grep -qxF "$PREFIX/" "$list"; then rm -rf "$PREFIX"; fi
  sort -ru "$list" | while IFS= read -r p; do
    case "$p" in
    */) [ ! -d "${p%/}" ] || rmdir "${p%/}" 2>/dev/null || echo "install: kept ${p%/} (not empty)" >&2 ;;
    esac
  done
  echo "uninstalled wotr from $PREFIX"
  ;;
*) die "usage: tools/install.sh install|install-hooks|uninstall" ;;
esac
