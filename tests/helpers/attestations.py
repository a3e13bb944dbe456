"""Sigstore bundles for tests: unsigned ones we write, and a real one signed by GitHub Actions.

`unsigned_bundle` writes what actions/attest-build-provenance writes (a v0.3 bundle
with a DSSE envelope around an in-toto statement of SLSA provenance) but with no
signature and no log entry: enough for every digest check, refused by any signature
check. The rehearsal uses it in place of the action, which needs GitHub's OIDC token.

`real_attestation` gives a genuine build-provenance attestation, signed in GitHub Actions
through the public-good Sigstore instance, with the file it attests: the
`pypi-attestations` project ships both in its sdist's test assets. pip (the ordinary
client of the index pip is configured with) downloads the sdist once into the test cache;
the PEP 740 attestation is repacked as the Sigstore bundle it was made from. Nothing of
it is committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from realkernel import cache_dir

from builder.core.report import BuildResult
from builder.publish.attest import SLSA_PROVENANCE, Subject, subject_name

REAL_PROJECT = "pypi-attestations==0.0.30"
REAL_SUBJECT = "pypi_attestations-0.0.19.tar.gz"
REAL_REPOSITORY = "trailofbits/pypi-attestations"


def statement(subjects: Iterable[Subject], builder_id: str) -> dict[str, object]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": s.name, "digest": {"sha256": s.sha256}} for s in subjects],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {"buildDefinition": {"buildType": builder_id},
                      "runDetails": {"builder": {"id": builder_id}}},
    }


def unsigned_bundle(path: Path, subjects: Iterable[Subject],
                    builder_id: str = "https://example.org/unsigned-test-bundle") -> Path:
    payload = json.dumps(statement(subjects, builder_id), sort_keys=True).encode()
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                         "payloadType": "application/vnd.in-toto+json", "signatures": []},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle) + "\n")
    return path


def subject_of(path: Path, name: str | None = None) -> Subject:
    return Subject(name or path.name, hashlib.sha256(path.read_bytes()).hexdigest())


class RealAttestationUnavailable(Exception):
    """pip could not fetch the sdist holding the real attestation (no index reachable)."""


@dataclass(frozen=True)
class RealAttestation:
    bundle: Path         # Sigstore bundle JSON
    subject: Path        # the file it attests
    repository: str      # who signed it (GitHub Actions of this repository)


def real_attestation() -> RealAttestation:
    folder = cache_dir() / "real-attestation"
    bundle, subject = folder / f"{REAL_SUBJECT}.sigstore.json", folder / REAL_SUBJECT
    if not (bundle.is_file() and subject.is_file()):
        _fetch(folder, bundle, subject)
    return RealAttestation(bundle, subject, REAL_REPOSITORY)


def _fetch(folder: Path, bundle: Path, subject: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                             "--no-binary", ":all:", "--dest", str(folder), REAL_PROJECT],
                            capture_output=True, text=True, timeout=300, check=False)
    sdists = sorted(folder.glob("pypi_attestations-*.tar.gz"))
    if result.returncode != 0 or not sdists:
        raise RealAttestationUnavailable(result.stderr.strip()[-300:])
    assets = "test/assets/"
    with tarfile.open(sdists[-1]) as tar:
        members = {m.name.split(assets, 1)[-1]: m for m in tar.getmembers()
                   if assets in m.name and m.isfile()}
        subject.write_bytes(_read(tar, members[REAL_SUBJECT]))
        pep740 = json.loads(_read(tar, members[f"{REAL_SUBJECT}.slsa.attestation"]))
    bundle.write_text(json.dumps(_bundle_of(pep740)))


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def _bundle_of(pep740: dict[str, object]) -> dict[str, object]:
    """A PEP 740 attestation is a Sigstore DSSE bundle with its fields renamed."""
    material = pep740["verification_material"]
    envelope = pep740["envelope"]
    assert isinstance(material, dict) and isinstance(envelope, dict)
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": material["certificate"]},
                                 "tlogEntries": material["transparency_entries"]},
        "dsseEnvelope": {"payload": envelope["statement"],
                         "payloadType": "application/vnd.in-toto+json",
                         "signatures": [{"sig": envelope["signature"]}]},
    }


def bundle_for(folder: Path, results: list[BuildResult], path: Path) -> Path:
    """An unsigned bundle at `path` attesting every probe built in `results`."""
    return unsigned_bundle(path, [Subject(subject_name(r.driver_version, r.arch, r.file),
                                          r.sha256) for r in results if r.ok])
