#!/usr/bin/env bash
# wotr's main job in one minute: three parties build the same commit, each signs a claim,
# an installer accepts the artifact only when two trusted parties agree on its sha256.
# Everything is throwaway: a temporary repository, three keys without passphrases.
set -euo pipefail

command -v wotr >/dev/null || { echo "wotr is not on PATH (run: make demo)" >&2; exit 3; }
tmp=$(mktemp -d /tmp/wotr-demo.XXXXXX)
cleanup() {
  for p in alice bob ci; do gpgconf --homedir "$tmp/gpg-$p" --kill all 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "1. Three parties, three throwaway keys (alice = author, bob = reviewer, ci = CI)"
mkdir -p "$tmp/policy/keys"
for p in alice bob ci; do
  home="$tmp/gpg-$p"; mkdir -m 700 "$home"
  gpg --homedir "$home" --batch --quiet --pinentry-mode loopback --passphrase '' \
      --quick-gen-key "$p <$p@example.invalid>" ed25519 sign never 2>/dev/null
  gpg --homedir "$home" --armor --export 2>/dev/null > "$tmp/policy/keys/$p.asc"
  fpr=$(gpg --homedir "$home" --with-colons --list-keys 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')
  eval "fpr_$p=$fpr"
  echo "  $p: $fpr"
done

say "2. The installer's policy: trust these three, require 2 of them to agree"
cat > "$tmp/policy/threshold.toml" <<TOML
version = 1
threshold = 2

[[signers]]
name = "alice"
roles = ["author"]
keys = ["keys/alice.asc"]
fingerprints = ["$fpr_alice"]

[[signers]]
name = "bob"
roles = ["reviewer"]
keys = ["keys/bob.asc"]
fingerprints = ["$fpr_bob"]

[[signers]]
name = "ci"
roles = ["ci"]
keys = ["keys/ci.asc"]
fingerprints = ["$fpr_ci"]
TOML
sed 's/^/  /' "$tmp/policy/threshold.toml" | head -8; echo "  ..."

say "3. A project with a reproducible build (deterministic tarball)"
mkdir "$tmp/repo"; cd "$tmp/repo"
git init -q -b main
printf 'print("hello from app")\n' > app.py
cat > Makefile <<'MAKE'
dist/app.tar.gz: app.py
	mkdir -p dist
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - app.py | gzip -n > $@
MAKE
printf 'dist/\n' > .gitignore
git add -A && git commit -q -m "app 1.0" && git tag -a v1.0 -m "release 1.0"
echo "  commit $(git rev-parse --short HEAD), tag v1.0"

say "4. Each party builds v1.0 and signs what it got (on its own machine, in real life)"
for p in alice bob ci; do
  role=$([ $p = alice ] && echo author || ([ $p = bob ] && echo reviewer || echo ci))
  rm -rf dist && make -s dist/app.tar.gz
  run env GNUPGHOME="$tmp/gpg-$p" git wotr sign --rev v1.0 --role "$role" dist/app.tar.gz
done

say "5. Who built what (git wotr show)"
run git wotr show --rev v1.0 --policy "$tmp/policy/threshold.toml"

say "6. The installer verifies the artifact: 2 of 3 trusted parties must agree"
run git wotr verify --rev v1.0 --threshold 2 --policy "$tmp/policy/threshold.toml" dist/app.tar.gz
echo "  -> exit $? (verified)"

say "7. A tampered artifact (one byte appended) is refused"
cp dist/app.tar.gz "$tmp/app.tar.gz"; printf 'x' >> "$tmp/app.tar.gz"
set +e
run git wotr verify --rev v1.0 --threshold 2 --policy "$tmp/policy/threshold.toml" "$tmp/app.tar.gz"
code=$?
set -e
echo "  -> exit $code (not verified)"
[ "$code" -eq 1 ] || { echo "demo: expected exit 1 for the tampered artifact" >&2; exit 1; }

say "Done: the real artifact verified, the tampered one did not."
