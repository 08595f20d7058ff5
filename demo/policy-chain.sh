#!/usr/bin/env bash
# Trust that lasts for years (docs/policy.md): a project of three signers rotates one key,
# removes a compromised one, re-audits, and an installer that pinned serial 1 verifies today's
# release after one `git wotr fetch` — or, without a repository, from ONE bundle — without
# editing any file.
# Everything is throwaway: a temporary directory, keys without passphrases, a bare remote.
set -euo pipefail

command -v git-wotr >/dev/null || { echo "git-wotr is not on PATH (run: make demo)" >&2; exit 3; }
command -v wotr >/dev/null || { echo "wotr is not on PATH (run: make demo)" >&2; exit 3; }
tmp=$(mktemp -d /tmp/wotr-chain.XXXXXX)
cleanup() {
  for p in alice bob bob2 carol; do gpgconf --homedir "$tmp/gpg-$p" --kill all 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
unset WOTR_POLICY

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
as() { local who=$1; shift; printf '$ (%s) %s\n' "$who" "$*"; GNUPGHOME="$tmp/gpg-$who" "$@"; }

say "1. Keys: alice, bob, carol — and the new key bob will rotate to (bob2)"
for p in alice bob bob2 carol; do
  home="$tmp/gpg-$p"; mkdir -m 700 "$home"
  gpg --homedir "$home" --batch --quiet --pinentry-mode loopback --passphrase '' \
      --quick-gen-key "$p <$p@example.invalid>" ed25519 sign never 2>/dev/null
  gpg --homedir "$home" --armor --export 2>/dev/null > "$tmp/$p.asc"
  eval "fpr_$p=$(gpg --homedir "$home" --with-colons --list-keys 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')"
done

signer() {  # name keyfile fingerprint
  printf '\n[[signers]]\nname = "%s"\nkeys = ["keys/%s.asc"]\nfingerprints = ["%s"]\n' "$1" "$2" "$3"
}
policy() {  # serial, then "name:key" entries
  local serial=$1; shift
  rm -rf keys; mkdir keys
  { printf 'version = 1\nserial = %s\nthreshold = 2\n' "$serial"
    for entry in "$@"; do
      name=${entry%%:*}; key=${entry#*:}; cp "$tmp/$key.asc" "keys/$key.asc"
      fpr_var="fpr_$key"; signer "$name" "$key" "${!fpr_var}"
    done; } > threshold.toml
  git add -A && git commit -q -m "policy serial $serial"
}
build() { mkdir -p dist; printf 'app %s\n' "$1" > dist/app.tar.gz; }

say "2. The project: serial 1 = alice, bob, carol; threshold 2. Release v1.0, signed by all three"
git init -q --bare -b main "$tmp/origin.git"
mkdir "$tmp/project"; cd "$tmp/project"
git init -q -b main && git remote add origin "$tmp/origin.git"
printf 'dist/\n' > .gitignore
policy 1 alice:alice bob:bob carol:carol
run git wotr init >/dev/null
git tag -a v1.0 -m "release 1.0"; build 1.0
for p in alice bob carol; do as "$p" git wotr sign --rev v1.0 dist/app.tar.gz >/dev/null; done
git push -q origin main v1.0 && run git wotr push

say "3. An installer clones and pins serial 1 (once, a year ago)"
git clone -q "$tmp/origin.git" "$tmp/installer"
(cd "$tmp/installer" && run git wotr init >/dev/null && git wotr policy show)
say "   ... and a device without a repository pins serial 1 too (wotr policy pin)"
mkdir -p "$tmp/device/etc" "$tmp/device/bundles"
cp threshold.toml "$tmp/device/etc/policy.toml"; cp -r keys "$tmp/device/etc/keys"
export WOTR_POLICY_STATE="$tmp/device/state" WOTR_BUNDLES="$tmp/device/bundles"
run wotr policy pin --policy "$tmp/device/etc/policy.toml"
etc_sum=$(cd "$tmp/device/etc" && find . -type f -exec sha256sum {} + | sort | sha256sum)

say "4. Rotation: bob moves to a new key (serial 2), proposed by alice, signed by carol"
policy 2 alice:alice bob:bob2 carol:carol
as alice git wotr policy propose
as carol git wotr policy sign
say "   bob re-signs v1.0 with his new key, so it stays valid"
build 1.0; as bob2 git wotr sign --rev v1.0 dist/app.tar.gz >/dev/null

say "5. carol's key is compromised: re-audit what leans on her, then remove her (serial 3)"
set +e; run git wotr audit --signer carol; set -e
policy 3 alice:alice bob:bob2
as alice git wotr policy propose
as bob2 git wotr policy sign
run git wotr policy show

say "6. Today's release v2.0, signed by alice and bob (new key); pushed with the policy chain"
git tag -a v2.0 -m "release 2.0"; build 2.0
for p in alice bob2; do as "$p" git wotr sign --rev v2.0 dist/app.tar.gz >/dev/null; done
git push -q origin main v2.0 && run git wotr push
cp dist/app.tar.gz "$tmp/app-2.0.tar.gz"

say "7. The installer: one 'git wotr fetch' (plus the release's commit), then verify"
cd "$tmp/installer"
git fetch -q origin --tags
run git wotr fetch
run git wotr verify --rev v2.0 "$tmp/app-2.0.tar.gz"
serial=$(git wotr verify --json --rev v2.0 "$tmp/app-2.0.tar.gz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy_serial"])')
[ "$serial" = 3 ] || { echo "demo: expected serial 3, got $serial" >&2; exit 1; }
git diff --quiet || { echo "demo: the installer's files changed" >&2; exit 1; }

say "7b. The device: ONE bundle (exported with the chain inside), no repository, no edit"
cd "$tmp/project"
run git wotr export --rev v2.0 -o "$tmp/device/app-2.0.tar.gz.wotr"
cp "$tmp/app-2.0.tar.gz" "$tmp/device/app-2.0.tar.gz"
cd "$tmp/device"
run wotr verify --policy "$tmp/device/etc/policy.toml" --rev v2.0 app-2.0.tar.gz
serial=$(wotr verify --json --policy "$tmp/device/etc/policy.toml" --rev v2.0 app-2.0.tar.gz | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy_serial"])')
[ "$serial" = 3 ] || { echo "demo: the device expected serial 3, got $serial" >&2; exit 1; }
[ "$(cd "$tmp/device/etc" && find . -type f -exec sha256sum {} + | sort | sha256sum)" = "$etc_sum" ] \
  || { echo "demo: the device's policy files changed" >&2; exit 1; }
unset WOTR_POLICY_STATE WOTR_BUNDLES

say "8. carol's key alone no longer counts: a release signed by alice and carol is refused"
cd "$tmp/project"; git tag -a v2.1 -m "2.1"; build 2.1
as alice git wotr sign --rev v2.1 dist/app.tar.gz >/dev/null
as carol git wotr sign --allow-uncounted --rev v2.1 dist/app.tar.gz >/dev/null  # wotr warns: it won't count
set +e; run git wotr verify --rev v2.1 dist/app.tar.gz; code=$?; set -e
[ "$code" -eq 1 ] || { echo "demo: expected exit 1 for v2.1" >&2; exit 1; }

say "Done: serial 1 -> 2 -> 3 followed by the installer (one fetch) and the device (one bundle); the removed key counts for nothing."
