"""OCI registries (issue 15): sign, attach, verify --oci, copy, mirrors, credentials, against
Debian's real docker-registry on 127.0.0.1 (referrers tag schema) and a fake registry that
implements the referrers API and misbehaves on demand."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import oci, sim
from wotr.oci import auth, registry
from wotr.oci import ref as ref_mod
from wotr.oci.referrers import ARTIFACT_TYPE, MAX_ATTACHMENTS


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with oci.real_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture
def away(world: sim.World) -> Path:
    path = world.root / "device"
    path.mkdir()
    return path


def one_error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    return lines[0]


def run_ok(world: sim.World, *args: str | Path, party: str | None = None) -> str:
    res = world.run(*args, party=party)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def verify_oci(
    world: sim.World, ref: str, *extra: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    pol = world.policy_dir / "threshold.toml"
    return world.run("verify", "--policy", pol, "--oci", ref, *extra, cwd=cwd, env=env)


def image_in(host: str, repo: str, tag: str, text: str = "hello") -> oci.Image:
    image = oci.make_image(text)
    oci.push(registry.Client(host), repo, tag, image)
    return image


def signed_and_attached(world: sim.World, ref: str, *names: str) -> str:
    for name in names:
        run_ok(world, "oci", "sign", ref, party=name)
    return run_ok(world, "oci", "attach", ref)


# --- the real registry (distribution 2.8: referrers tag schema) -------------------------------


def test_attach_and_verify_through_the_tag_schema(world: sim.World, real: str, away: Path) -> None:
    image = image_in(real, "acme/app", "1.0")
    ref = f"{real}/acme/app:1.0"
    out = run_ok(world, "oci", "sign", ref, party="alice")
    assert f"app:1.0  {image.digest}" in out
    run_ok(world, "oci", "sign", ref, party="bob")
    out = run_ok(world, "oci", "attach", ref)
    assert "referrers tag schema" in out and "attached 2 claim(s)" in out
    world.policy(2)
    # the fallback index exists under sha256-<hex> and lists one wotr artifact
    index = registry.Client(real).get_manifest("acme/app", image.digest.replace(":", "-"))
    assert [m["artifactType"] for m in index.doc()["manifests"]] == [ARTIFACT_TYPE]
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resolved {ref} to {image.digest}" in res.stderr
    assert res.stdout.rstrip().endswith("VERIFIED")
    by_digest = verify_oci(world, f"{real}/acme/app@{image.digest}", "--json", cwd=away)
    assert by_digest.returncode == 0, by_digest.stderr
    doc = json.loads(by_digest.stdout)
    assert doc["verified"] and doc["artifacts"][0]["signers"] == ["alice", "bob"]
    assert doc["oci"]["manifest"] == image.digest
    # the usual rules: a threshold above the signers fails (exit 1); attaching again is a no-op
    assert verify_oci(world, ref, "--threshold", "3", cwd=away).returncode == 1
    run_ok(world, "oci", "attach", ref)
    index = registry.Client(real).get_manifest("acme/app", image.digest.replace(":", "-"))
    assert len(index.doc()["manifests"]) == 1


def test_claims_for_another_image_or_commit_do_not_count(
    world: sim.World, real: str, away: Path
) -> None:
    image_in(real, "acme/other", "1.0", "other")
    image_in(real, "acme/other", "2.0", "second")
    signed_and_attached(world, f"{real}/acme/other:1.0", "alice", "bob")
    world.policy(2)
    # the bundle of 1.0's claims attached to 2.0: it names 1.0's digest, not 2.0's
    out = run_ok(world, "oci", "attach", f"{real}/acme/other:2.0")
    assert "note: no claim on HEAD names" in out
    res = verify_oci(world, f"{real}/acme/other:2.0", cwd=away)
    assert res.returncode == 1, res.stdout
    assert "FAIL" in res.stdout and res.stdout.rstrip().endswith("NOT VERIFIED")


def test_copy_carries_the_claims_and_a_bare_copy_fails(
    world: sim.World, real: str, away: Path
) -> None:
    image = image_in(real, "vendor/app", "2.0", "copied")
    signed_and_attached(world, f"{real}/vendor/app:2.0", "alice", "bob")
    world.policy(2)
    res = world.run("oci", "copy", f"{real}/vendor/app:2.0", f"{real}/mirror/app")
    assert res.returncode == 0, res.stderr
    assert "1 wotr attachment(s)" in res.stdout
    assert verify_oci(world, f"{real}/mirror/app:2.0", cwd=away).returncode == 0
    # a copy made by any other tool: the image alone
    oci.push(registry.Client(real), "bare/app", "2.0", image)
    res = verify_oci(world, f"{real}/bare/app:2.0", cwd=away)
    assert res.returncode == 1
    assert f"NOT VERIFIED: no claims attached to {real}/bare/app@{image.digest}" in res.stdout
    assert "wotr oci copy" in res.stderr
    res = verify_oci(world, f"{real}/bare/app:2.0", "--json", cwd=away)
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and doc["verified"] is False and doc["threshold"] == 2
    assert "no claims attached" in doc["reason"] and doc["artifacts"] == []


def test_a_device_with_a_mirror_uses_the_mirror_alone(
    world: sim.World, real: str, away: Path, tmp_path: Path
) -> None:
    image_in(real, "vendor/tool", "3.0", "mirrored")
    signed_and_attached(world, f"{real}/vendor/tool:3.0", "alice", "bob")
    world.policy(2)
    run_ok(world, "oci", "copy", f"{real}/vendor/tool:3.0", f"{real}/edge/vendor/tool")
    # the original registry is unreachable from the device (and not on loopback: HTTPS only)
    original = "registry.example.invalid/vendor/tool:3.0"
    env = {"WOTR_OCI_MIRRORS": f"registry.example.invalid={real}/edge"}
    res = verify_oci(world, original, cwd=away, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"using mirror {real}/edge/vendor/tool" in res.stderr
    # the same from the configuration file
    conf = tmp_path / "oci.toml"
    conf.write_text(f'[mirrors]\n"registry.example.invalid/vendor" = "{real}/edge/vendor"\n')
    res = verify_oci(world, original, cwd=away, env={"WOTR_OCI_CONFIG": str(conf)})
    assert res.returncode == 0, res.stdout + res.stderr
    # a broken configuration never falls back to the original registry
    conf.write_text("[mirrors\n")
    res = verify_oci(world, original, cwd=away, env={"WOTR_OCI_CONFIG": str(conf)})
    assert res.returncode == 2 and "OCI configuration" in one_error(res)


def test_helm_chart_verifies_by_its_tgz_claim(world: sim.World, real: str, away: Path) -> None:
    tgz = world.artifact("mychart-1.2.0.tgz", b"\x1f\x8b chart bytes")
    for name in ("alice", "bob"):
        world.sign(name, tgz)  # the ordinary file claim, nothing OCI about it
    chart = oci.make_chart(tgz.read_bytes())
    oci.push(registry.Client(real), "charts/mychart", "1.2.0", chart)
    run_ok(world, "oci", "attach", f"{real}/charts/mychart:1.2.0")
    world.policy(2)
    res = verify_oci(world, f"{real}/charts/mychart:1.2.0", cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Helm chart (the .tgz): verifying its digest {oci.digest(tgz.read_bytes())}" in (
        res.stderr
    )
    # with no attachment, a bundle on disk does the same
    oci.push(registry.Client(real), "charts/bare", "1.2.0", chart)
    bundle = world.root / "mychart.wotr"
    run_ok(world, "export", "-o", bundle)
    res = verify_oci(world, f"{real}/charts/bare:1.2.0", "--bundle", str(bundle), cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr


def test_sign_from_a_layout_or_a_digest(world: sim.World, real: str, away: Path) -> None:
    image = oci.make_image("layout")
    layout = oci.write_layout(world.root / "layout", image, "4.0")
    out = run_ok(world, "oci", "sign", "--layout", layout, party="alice")
    assert f"layout:4.0  {image.digest}" in out
    out = run_ok(world, "oci", "sign", "--digest", image.digest, "layout:4.0", party="bob")
    oci.push(registry.Client(real), "acme/layout", "4.0", image)
    run_ok(world, "oci", "attach", f"{real}/acme/layout:4.0")
    world.policy(2)
    assert verify_oci(world, f"{real}/acme/layout:4.0", cwd=away).returncode == 0
    # a claim the policy would not count is refused, as sign refuses it (nothing written)
    only_bob = world.policy(1, ["bob"], name="bob-only.toml")
    tip = sim.notes_tip(world.repo)
    res = world.run(
        "oci", "sign", "--policy", only_bob, "--digest", image.digest, "x:1", party="alice"
    )
    assert res.returncode == 2 and "is not listed in the policy" in one_error(res)
    assert sim.notes_tip(world.repo) == tip
    # a damaged layout is refused
    blob = layout / "blobs" / "sha256" / image.digest.removeprefix("sha256:")
    blob.write_bytes(blob.read_bytes() + b" ")
    res = world.run("oci", "sign", "--layout", layout, party="alice")
    assert res.returncode == 2 and "does not hash to" in one_error(res)


def test_credentials_from_the_docker_config(world: sim.World, tmp_path: Path, away: Path) -> None:
    with oci.real_registry(tmp_path / "reg", htpasswd=oci.htpasswd_line("ci", "s3cret")) as host:
        docker = tmp_path / "docker"
        docker.mkdir()
        auth_value = base64.b64encode(b"ci:s3cret").decode()
        (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth_value}}}))
        env = {"DOCKER_CONFIG": str(docker)}
        client = registry.Client(host, env=env)
        image = oci.make_image("private")
        oci.push(client, "private/app", "1.0", image)
        ref = f"{host}/private/app:1.0"
        # without credentials: exit 3, and how to fix it
        res = world.run("oci", "sign", ref, party="alice", env={"DOCKER_CONFIG": str(tmp_path)})
        assert res.returncode == 3 and "user name and password" in one_error(res)
        for name in ("alice", "bob"):
            assert world.run("oci", "sign", ref, party=name, env=env).returncode == 0
        res = world.run("oci", "attach", ref, env=env)
        assert res.returncode == 0, res.stderr
        world.policy(2)
        res = verify_oci(world, ref, cwd=away, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        res = verify_oci(world, ref, cwd=away, env={"DOCKER_CONFIG": str(tmp_path)})
        assert res.returncode == 3


# --- the referrers API (fake registry) --------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[oci.FakeRegistry]:
    with oci.fake_registry() as f:
        yield f


def fake_image(fake: oci.FakeRegistry, repo: str = "acme/app", tag: str = "1.0") -> oci.Image:
    image = oci.make_image(f"{repo}:{tag}")
    oci.push(registry.Client(fake.address), repo, tag, image)
    return image


def test_attach_and_verify_through_the_referrers_api(
    world: sim.World, fake: oci.FakeRegistry, away: Path
) -> None:
    image = fake_image(fake)
    ref = f"{fake.address}/acme/app:1.0"
    out = signed_and_attached(world, ref, "alice", "bob")
    assert "(referrers API)" in out
    assert image.digest.replace(":", "-") not in fake.manifests  # no fallback tag
    world.policy(2)
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    # copy to another repository of the same registry: the API again
    run_ok(world, "oci", "copy", ref, f"{fake.address}/mirror/app")
    assert verify_oci(world, f"{fake.address}/mirror/app:1.0", cwd=away).returncode == 0


# --- hostile registries -----------------------------------------------------------------------


@pytest.fixture
def attached(world: sim.World, fake: oci.FakeRegistry) -> tuple[str, oci.Image]:
    image = fake_image(fake)
    ref = f"{fake.address}/acme/app:1.0"
    signed_and_attached(world, ref, "alice", "bob")
    world.policy(2)
    return ref, image


def bundle_digest(fake: oci.FakeRegistry, image: oci.Image) -> tuple[str, str]:
    """(attachment manifest digest, bundle blob digest) of the one attachment of ``image``."""
    entry = fake.referrers[image.digest][0]
    doc = json.loads(fake.manifests[entry["digest"]][0])
    return entry["digest"], doc["layers"][0]["digest"]


def test_wrong_bytes_for_a_bundle_or_manifest_only_fail(
    world: sim.World, fake: oci.FakeRegistry, attached: tuple[str, oci.Image], away: Path
) -> None:
    ref, image = attached
    manifest_digest, blob = bundle_digest(fake, image)
    fake.wrong_blobs.add(blob)
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "served other bytes for blob" in res.stdout and "no claims attached" in res.stdout
    fake.wrong_blobs.clear()
    fake.wrong_manifests.add(manifest_digest)
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 1 and "served other bytes" in res.stdout
    fake.wrong_manifests = {image.digest}
    res = verify_oci(world, f"{fake.address}/acme/app@{image.digest}", cwd=away)
    assert res.returncode == 3 and "served other bytes" in one_error(res)


def test_endless_and_slow_responses_are_cut(
    world: sim.World, fake: oci.FakeRegistry, attached: tuple[str, oci.Image], away: Path
) -> None:
    ref, image = attached
    fake.endless.add("/manifests/1.0")
    start = time.monotonic()
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 3 and "over 4194304 bytes" in one_error(res)
    fake.endless.clear()
    _, blob = bundle_digest(fake, image)
    fake.slow.add(blob)
    res = verify_oci(world, ref, cwd=away, env={"WOTR_OCI_TIMEOUT": "3"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "did not finish in time" in res.stdout
    fake.slow.clear()
    fake.drip_headers.add("/manifests/1.0")
    res = verify_oci(world, ref, cwd=away, env={"WOTR_OCI_TIMEOUT": "3"})
    assert res.returncode == 3 and "did not finish in time" in one_error(res)
    assert time.monotonic() - start < 30


def test_redirects_off_the_registry(
    world: sim.World, attached: tuple[str, oci.Image], fake: oci.FakeRegistry, away: Path
) -> None:
    ref, image = attached
    with oci.fake_registry(host="127.0.0.2") as storage:
        storage.blobs.update(fake.blobs)
        # blobs may go to storage elsewhere (digest-checked), without credentials
        fake.redirect_blobs = f"http://{storage.address}"
        fake.basic = ("ci", "pw")
        docker = world.root / "docker"
        docker.mkdir()
        creds = base64.b64encode(b"ci:pw").decode()
        (docker / "config.json").write_text(json.dumps({"auths": {fake.address: {"auth": creds}}}))
        env = {"DOCKER_CONFIG": str(docker)}
        res = verify_oci(world, ref, cwd=away, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert storage.requests and all(auth_h == "" for _, _, auth_h in storage.requests)
        assert any(a for _, _, a in fake.requests)  # the registry itself got them
        # storage serving other bytes: only fails
        _, blob = bundle_digest(fake, image)
        storage.blobs[blob] = b"{}"
        assert verify_oci(world, ref, cwd=away, env=env).returncode == 1
        # manifests are never fetched off the registry
        fake.redirect_manifests = f"http://{storage.address}"
        res = verify_oci(world, ref, cwd=away, env=env)
        assert res.returncode == 3 and "redirected a request to" in one_error(res)


def test_hundreds_of_fake_referrers_are_bounded(
    world: sim.World, fake: oci.FakeRegistry, attached: tuple[str, oci.Image], away: Path
) -> None:
    ref, _ = attached
    fake.fake_referrers = 500
    before = len(fake.requests)
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 1
    assert f"more wotr attachments not read (at most {MAX_ATTACHMENTS}" in res.stdout
    assert len(fake.requests) - before <= MAX_ATTACHMENTS + 5


def test_token_service_gets_credentials_only_under_the_registry_domain(
    world: sim.World, fake: oci.FakeRegistry, tmp_path: Path
) -> None:
    fake_image(fake)
    fake.basic = ("ci", "pw")
    fake.bearer_realm = f"http://{fake.address}/token"
    docker = tmp_path / "docker"
    docker.mkdir()
    creds = base64.b64encode(b"ci:pw").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {fake.address: {"auth": creds}}}))
    env = {"DOCKER_CONFIG": str(docker)}
    client = registry.Client(fake.address, env=env)
    assert client.get_manifest("acme/app", "1.0").digest
    token_requests = [r for r in fake.requests if r[1].startswith("/token")]
    assert token_requests and token_requests[-1][2].startswith("Basic ")
    with oci.fake_registry(host="127.0.0.2", basic=("ci", "pw")) as thief:
        fake.bearer_realm = f"http://{thief.address}/token"
        with pytest.raises(registry.RegistryError):
            registry.Client(fake.address, env=env).get_manifest("acme/app", "1.0")
        assert thief.requests and all(a == "" for _, _, a in thief.requests)


# --- references, schemes, credentials ------------------------------------------------------


def test_references_and_schemes() -> None:
    r = ref_mod.parse("127.0.0.1:5000/acme/app:1.0")
    assert (r.host, r.repo, r.tag, r.digest) == ("127.0.0.1:5000", "acme/app", "1.0", None)
    d = "sha256:" + "a" * 64
    assert ref_mod.parse(f"oci://ghcr.io/a/b@{d}").digest == d
    for bad in ("app:1.0", "ghcr.io/App:1", f"ghcr.io/a@sha256:{'A' * 64}", "ghcr.io/a", "x/y:1"):
        with pytest.raises(ref_mod.RefError):
            ref_mod.parse(bad)
    assert registry.Client("127.0.0.1:5000").scheme == "http"
    assert registry.Client("[::1]:5000").scheme == "http"
    assert registry.Client("127.9.9.9").scheme == "http"
    assert registry.Client("localhost:5000").scheme == "https"
    assert registry.Client("registry.example.com").scheme == "https"
    assert registry.Client("10.0.0.1:5000").scheme == "https"
    assert registry.Client("10.0.0.1:5000", plain_http=True).scheme == "http"


def test_where_credentials_may_go() -> None:
    assert auth.may_send("registry-1.docker.io", "auth.docker.io")
    assert auth.may_send("ghcr.io", "ghcr.io")
    assert auth.may_send("127.0.0.1:5000", "127.0.0.1:5001")
    assert not auth.may_send("ghcr.io", "evil.io")
    assert not auth.may_send("registry.example.com", "example.com.evil.net")
    assert not auth.may_send("127.0.0.1:5000", "127.0.0.2:5000")
    assert not auth.may_send("example.com", "other.com")


def test_bad_references_are_bad_input(world: sim.World, away: Path) -> None:
    from wotr import entry

    assert entry.parse_verify(["--oci", "127.0.0.1:1/a:1"]) is None  # to click, not the fast path
    world.policy(1)
    res = verify_oci(world, "app:latest", cwd=away)
    assert res.returncode == 2 and "does not start with a registry host" in one_error(res)
    res = world.run("verify", "--oci", "127.0.0.1:1/a:1", "dist/x", cwd=away)
    assert res.returncode == 2
    # nothing listens there: exit 3, one line; a failed sign leaves the notes as they were
    res = verify_oci(world, "127.0.0.1:1/a:1", cwd=away)
    assert res.returncode == 3 and "failed" in one_error(res)
    tip = sim.notes_tip(world.repo)
    res = world.run("oci", "sign", "127.0.0.1:1/a:1", party="alice")
    assert res.returncode == 3 and "failed" in one_error(res)
    res = world.run("oci", "sign", "--digest", "sha256:12", "x:1", party="alice")
    assert res.returncode == 2 and "is not sha256" in one_error(res)
    assert sim.notes_tip(world.repo) == tip


def test_a_chart_with_anything_beside_the_chart_is_verified_as_an_image(
    world: sim.World, fake: oci.FakeRegistry, away: Path
) -> None:
    tgz = world.artifact("mychart-1.2.0.tgz", b"\x1f\x8b signed chart")
    for name in ("alice", "bob"):
        world.sign(name, tgz)
    world.policy(2)
    chart = oci.make_chart(tgz.read_bytes())
    smuggled = oci.make_image("payload")
    doc = json.loads(chart.manifest)
    doc["layers"].append(json.loads(smuggled.manifest)["layers"][0])
    manifest = oci.canonical(doc)
    client = registry.Client(fake.address)
    for d, data in {**chart.blobs(), **smuggled.blobs()}.items():
        client.put_blob("charts/evil", d, len(data), data)
    client.put_manifest("charts/evil", "1.2.0", manifest, oci.OCI_MANIFEST)
    run_ok(world, "oci", "attach", f"{fake.address}/charts/evil:1.2.0")
    res = verify_oci(world, f"{fake.address}/charts/evil:1.2.0", cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Helm chart" not in res.stderr
    # the honest chart in the same registry verifies
    oci.push(client, "charts/good", "1.2.0", chart)
    run_ok(world, "oci", "attach", f"{fake.address}/charts/good:1.2.0")
    assert verify_oci(world, f"{fake.address}/charts/good:1.2.0", cwd=away).returncode == 0


def test_oversized_attachments_stop_at_the_byte_budget(
    world: sim.World, fake: oci.FakeRegistry, attached: tuple[str, oci.Image], away: Path
) -> None:
    ref, image = attached
    # an attachment that claims a bundle of 300 MiB: never downloaded
    entry = fake.referrers[image.digest][0]
    doc = json.loads(fake.manifests[entry["digest"]][0])
    doc["layers"][0]["size"] = 300 * 1024 * 1024
    doc["layers"][0]["digest"] = oci.digest(b"huge")
    huge = oci.canonical(doc)
    fake.manifests[oci.digest(huge)] = (huge, oci.OCI_MANIFEST)
    fake.referrers[image.digest].insert(0, {**entry, "digest": oci.digest(huge), "size": len(huge)})
    res = verify_oci(world, ref, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "over 83886080" in res.stdout  # the one bundle's own limit


def test_copy_an_index_with_its_children(
    world: sim.World, fake: oci.FakeRegistry, real: str, away: Path
) -> None:
    client = registry.Client(fake.address)
    children = [oci.make_image("amd64"), oci.make_image("arm64")]
    for child in children:
        oci.push(client, "multi/app", child.digest, child)
    index = oci.canonical(
        {
            "schemaVersion": 2,
            "mediaType": oci.OCI_INDEX,
            "manifests": [
                {"mediaType": oci.OCI_MANIFEST, "digest": c.digest, "size": len(c.manifest)}
                for c in children
            ],
        }
    )
    client.put_manifest("multi/app", "5.0", index, oci.OCI_INDEX)
    ref = f"{fake.address}/multi/app:5.0"
    signed_and_attached(world, ref, "alice", "bob")
    world.policy(2)
    # across registries: from the fake (referrers API) to the real one (tag schema)
    out = run_ok(world, "oci", "copy", ref, f"{real}/multi/app")
    assert "3 manifest(s), 6 blob(s) uploaded, 1 wotr attachment(s)" in out  # + bundle, config
    target = registry.Client(real)
    assert target.get_manifest("multi/app", "5.0").digest == oci.digest(index)
    for child in children:
        assert target.get_manifest("multi/app", child.digest).data == child.manifest
    assert verify_oci(world, f"{real}/multi/app:5.0", cwd=away).returncode == 0
