"""publish/attest.py: bundles read without trusting them, subject lists in chunks, and signatures
checked offline with sigstore-python against a real GitHub Actions attestation."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attestations import (
    RealAttestation,
    RealAttestationUnavailable,
    real_attestation,
    unsigned_bundle,
)
from buildreports import specs, write_report

from builder.cli import main
from builder.core.errors import InputError
from builder.core.report import read_report
from builder.publish.attest import (
    MAX_SUBJECTS,
    NOT_CHECKED,
    VERIFIED,
    SignatureError,
    Subject,
    check_bundle,
    checksums_text,
    chunks,
    read_bundle,
    repository_of,
    verify_commands,
    verify_signature,
)

SHA_A, SHA_B = "a" * 64, "b" * 64


# --- reading a bundle: every way it can be wrong ----------------------------------------------

def _bundle(tmp_path: Path, **changes: Any) -> Path:
    path = unsigned_bundle(tmp_path / "b.json", [Subject("x.o", SHA_A)])
    doc = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    for key, value in changes.items():
        where, _, field = key.partition("__")
        target = {"bundle": doc, "envelope": doc["dsseEnvelope"], "statement": statement}[where]
        if value is None:
            target.pop(field)
        else:
            target[field] = value
    if "envelope__payload" not in changes and "dsseEnvelope" in doc:
        doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(doc))
    return path


BAD: list[tuple[str, Callable[[Path], Path], str]] = [
    ("not-json", lambda p: _text(p, "{nope"), "invalid JSON"),
    ("not-a-bundle", lambda p: _text(p, "[1, 2]"), "'mediaType' must start with"),
    ("media-type", lambda p: _bundle(p, bundle__mediaType="application/json"),
     "'mediaType' must start with application/vnd.dev.sigstore.bundle"),
    ("message-signature", lambda p: _bundle(p, bundle__dsseEnvelope=None),
     r"'dsseEnvelope.payloadType' must be application/vnd\.in-toto\+json"),
    ("payload-type", lambda p: _bundle(p, envelope__payloadType="text/plain"),
     "'dsseEnvelope.payloadType' must be"),
    ("payload-base64", lambda p: _bundle(p, envelope__payload="%%%"),
     "'dsseEnvelope.payload' is not base64 JSON"),
    ("statement-type", lambda p: _bundle(p, statement___type="https://example.org/x"),
     "not an in-toto statement"),
    ("no-predicate-type", lambda p: _bundle(p, statement__predicateType=None),
     "no 'predicateType'"),
    ("no-subject", lambda p: _bundle(p, statement__subject=[]), "names no 'subject'"),
    ("bad-digest", lambda p: _bundle(p, statement__subject=[{"name": "x", "digest": {
        "sha256": "XYZ"}}]), r"subject\[0\] has no sha256 digest"),
    ("sha512-only", lambda p: _bundle(p, statement__subject=[{"name": "x", "digest": {
        "sha512": "a" * 128}}]), r"subject\[0\] has no sha256 digest"),
]


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "b.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("make", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_bundle_is_refused_naming_file_and_field(tmp_path: Path,
                                                       make: Callable[[Path], Path],
                                                       message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as caught:
        read_bundle(path)
    assert str(path) in caught.value.message


def test_a_good_bundle_lists_its_subjects(tmp_path: Path) -> None:
    path = unsigned_bundle(tmp_path / "b.json", [Subject("a.o", SHA_A), Subject("b.o", SHA_B)])
    bundle = read_bundle(path)
    assert bundle.subjects == (Subject("a.o", SHA_A), Subject("b.o", SHA_B))
    assert bundle.attests(SHA_B) and not bundle.attests("c" * 64)
    assert bundle.name.startswith("attestation-") and bundle.name.endswith(".sigstore.json")
    assert bundle.name == read_bundle(path).name          # named by content
    check = check_bundle(bundle, SHA_A)
    assert (check.attested, check.signature, check.ok) == (True, NOT_CHECKED, True)
    assert not check_bundle(bundle, "c" * 64).ok


# --- what a run attests -----------------------------------------------------------------------

def test_chunks_hold_at_most_1024_sorted_distinct_subjects() -> None:
    subjects = [Subject(f"p{i:05d}", f"{i:064x}") for i in range(2500)]
    lists = chunks([*reversed(subjects), subjects[0]])
    assert [len(c) for c in lists] == [MAX_SUBJECTS, MAX_SUBJECTS, 2500 - 2 * MAX_SUBJECTS]
    assert [s for c in lists for s in c] == subjects
    assert chunks([]) == []
    for size in (0, MAX_SUBJECTS + 1):
        with pytest.raises(InputError, match="between 1 and 1024"):
            chunks(subjects, size)
    assert checksums_text(subjects[:2]) == (f"{0:064x}  p00000\n{1:064x}  p00001\n")


def test_attest_subjects_lists_the_built_probes(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    results = write_report(tmp_path / "reports" / "report-0", specs(3),
                           failures=specs(1, start=7))
    write_report(tmp_path / "reports" / "report-1", specs(2, start=3,
                                                          driver_version="9.1.0+driver"))
    out, matrix = tmp_path / "subjects", tmp_path / "chunks.json"
    code = main(["attest", "subjects", "--out", str(out), "--chunk-size", "4",
                 "--matrix-out", str(matrix), str(tmp_path / "reports")])
    assert code == 0
    assert json.loads(matrix.read_text()) == ["001", "002"]
    lines = [line for name in ("001", "002")
             for line in (out / f"{name}.sha256sums").read_text().splitlines()]
    assert len(lines) == 5 and lines == sorted(lines, key=lambda x: x.split("  ")[1])
    first = results[0]
    assert f"{first.sha256}  6.0.1+driver/x86_64/{first.file}" in lines
    assert all("5.15.0-7-" not in line for line in lines)          # the failure is not built
    assert "5 probe(s) to attest in 2 list(s)" in capsys.readouterr().err


def test_attest_subjects_with_nothing_built_exits_1(tmp_path: Path) -> None:
    write_report(tmp_path / "r", [], failures=specs(1))
    assert read_report(tmp_path / "r" / "report.jsonl")
    code = main(["attest", "subjects", "--out", str(tmp_path / "s"), "--matrix-out",
                 str(tmp_path / "m.json"), str(tmp_path / "r")])
    assert code == 1
    assert json.loads((tmp_path / "m.json").read_text()) == []
    assert main(["attest", "subjects", "--out", str(tmp_path / "s"),
                 str(tmp_path / "empty-folder-missing")]) == 2


# --- consumer commands ------------------------------------------------------------------------

def test_repository_and_gh_commands_come_from_the_job_or_attestation_url() -> None:
    job = "https://github.com/acme/probes/actions/runs/1/job/2"
    asset = "https://github.com/acme/probes/releases/download/t/attestation-x.sigstore.json"
    assert repository_of(job) == repository_of("", asset) == "acme/probes"
    assert repository_of("http://127.0.0.1:8000/store/x.sigstore.json") == ""
    commands = verify_commands("falco_x.o", "acme/probes")
    assert commands["online"] == "gh attestation verify falco_x.o --repo acme/probes"
    assert commands["offline"] == ("gh attestation verify falco_x.o --repo acme/probes "
                                   "--bundle falco_x.o.sigstore.json "
                                   "--custom-trusted-root trusted_root.jsonl")
    assert verify_commands("falco_x.o", "") == {}


# --- signatures, offline, on a real attestation -----------------------------------------------

@pytest.fixture(scope="module")
def real() -> RealAttestation:
    try:
        return real_attestation()
    except RealAttestationUnavailable as exc:
        pytest.skip(f"no package index to fetch the real attestation from: {exc}")


@pytest.mark.slow
def test_a_real_github_actions_attestation_verifies_offline(real: RealAttestation) -> None:
    bundle = read_bundle(real.bundle)
    digest = bundle.subjects[0].sha256
    signer = verify_signature(real.bundle, real.repository)
    assert f"workflow https://github.com/{real.repository}/.github/workflows/" in signer
    assert "run https://github.com/" in signer
    check = check_bundle(bundle, digest, repository=real.repository)
    assert (check.attested, check.signature, check.ok) == (True, VERIFIED, True)


@pytest.mark.slow
def test_a_real_attestation_from_another_repository_is_refused(real: RealAttestation) -> None:
    with pytest.raises(SignatureError, match="acme/probes"):
        verify_signature(real.bundle, "acme/probes")


@pytest.mark.slow
def test_a_tampered_statement_or_signature_is_refused(real: RealAttestation,
                                                      tmp_path: Path) -> None:
    doc = json.loads(real.bundle.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = SHA_A      # claim another file
    forged = dict(doc, dsseEnvelope=dict(doc["dsseEnvelope"], payload=base64.b64encode(
        json.dumps(statement).encode()).decode()))
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    bundle = read_bundle(tmp_path / "forged.json")
    assert bundle.attests(SHA_A)                              # it says so ...
    check = check_bundle(bundle, SHA_A, repository=real.repository)
    assert check.attested and not check.ok                    # ... but it is not signed so
    assert check.signature != VERIFIED


def test_an_unsigned_bundle_fails_the_signature_check(tmp_path: Path) -> None:
    path = unsigned_bundle(tmp_path / "b.json", [Subject("x.o", SHA_A)])
    check = check_bundle(read_bundle(path), SHA_A, repository="acme/probes")
    assert check.attested and not check.ok
    assert "sigstore cannot read the bundle" in check.signature


def test_signature_options_are_checked(tmp_path: Path) -> None:
    path = unsigned_bundle(tmp_path / "b.json", [Subject("x.o", SHA_A)])
    with pytest.raises(InputError, match="is not OWNER/NAME"):
        verify_signature(path, "not a repo")
    (tmp_path / "root.jsonl").write_text('{"mediaType": "nope"}\n')
    with pytest.raises(InputError, match="root.jsonl:1: not a Sigstore trusted root"):
        verify_signature(path, "acme/probes", tmp_path / "root.jsonl")
