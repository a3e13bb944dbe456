"""Build provenance: what the nightly attests, the Sigstore bundles that prove it, and
checking a probe against them.

The nightly's attest job signs, with `actions/attest-build-provenance`, an in-toto
statement whose subjects are the probes a run built: name
`<driver_version>/<arch>/<file>`, sha256 digest, at most 1,024 per statement (the
action's limit). `publish` stores each bundle next to the probes it covers and records
its URL as the probe's `attestation`; `mirror` copies it; `verify` checks it.

What `check_bundle` proves without a network:

* always: the bundle's statement names the file's sha256 as a subject (and the
  catalog lists that sha256 for the file: `builder.consumers.verify` does that part);
* with a repository (`verify --repo OWNER/NAME`) and sigstore-python installed: the
  DSSE signature over the statement, the signing certificate's chain to the trusted
  root's Fulcio CA at the time of signing, its embedded SCT, the transparency log
  entry's inclusion proof, checkpoint and signed entry timestamp, that the entry
  matches the envelope, and the identity: GitHub Actions' OIDC issuer and the
  source repository. The trusted root is sigstore-python's own copy of the
  public-good root (no TUF refresh) or the file given (`gh attestation
  trusted-root` output).

What it cannot do offline: notice a key that was revoked or rotated after the trusted
root was taken (that needs a fresh TUF refresh), or ask GitHub's attestation API
whether the attestation is still listed. Attestations of private repositories are
signed by GitHub's own Sigstore instance, which has no transparency log:
sigstore-python cannot check those; `gh attestation verify` can.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core.errors import InputError
from builder.core.records import SHA256_RE
from builder.core.report import REPORT_NAME, iter_reports

MAX_SUBJECTS = 1024            # actions/attest: at most 1,024 subjects per attestation
MAX_BUNDLE_BYTES = 16 << 20    # the action caps predicates at 16 MB
BUNDLE_SUFFIX = ".sigstore.json"
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_SHA256 = re.compile(SHA256_RE)
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# Certificate extensions Fulcio sets for GitHub Actions (sigstore's fulcio oid-info).
_SIGNER_URI_OID = "1.3.6.1.4.1.57264.1.9"
_SOURCE_DIGEST_OID = "1.3.6.1.4.1.57264.1.13"
_RUN_URI_OID = "1.3.6.1.4.1.57264.1.21"


@dataclass(frozen=True, slots=True, order=True)
class Subject:
    """One attested file: its name in the statement and its sha256."""

    name: str
    sha256: str


def subject_name(driver_version: str, arch: str, file: str) -> str:
    """The subject name of a probe: unique across driver versions and arches."""
    return f"{driver_version}/{arch}/{file}"


@dataclass(frozen=True, slots=True)
class BundleFile:
    """A Sigstore bundle on disk and what its statement says, read without trusting it."""

    path: Path
    sha256: str                       # of the bundle file itself
    predicate_type: str
    subjects: tuple[Subject, ...]
    digests: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def name(self) -> str:
        """Its file name in a store: named by content, so a rerun finds it again."""
        return f"attestation-{self.sha256[:16]}{BUNDLE_SUFFIX}"

    def attests(self, sha256: str) -> bool:
        return sha256 in self.digests


def read_bundle(path: Path) -> BundleFile:
    """Parse a bundle's statement; InputError naming the file and field when it is not one."""
    def bad(message: str) -> InputError:
        return InputError(f"{path}: not a build-provenance bundle: {message}",
                          hint="pass the bundle actions/attest-build-provenance wrote "
                               "(bundle-path) or `gh attestation download` saved")

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise bad(f"{len(raw)} bytes, more than {MAX_BUNDLE_BYTES}")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise bad(f"invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(
            BUNDLE_MEDIA_PREFIX):
        raise bad(f"field 'mediaType' must start with {BUNDLE_MEDIA_PREFIX}")
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict) or envelope.get("payloadType") != IN_TOTO_PAYLOAD:
        raise bad(f"field 'dsseEnvelope.payloadType' must be {IN_TOTO_PAYLOAD}")
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("payload", "")),
                                                validate=True))
    except (ValueError, binascii.Error):
        raise bad("field 'dsseEnvelope.payload' is not base64 JSON") from None
    subjects = _subjects(statement, bad)
    return BundleFile(path, hashlib.sha256(raw).hexdigest(), str(statement["predicateType"]),
                      subjects, frozenset(s.sha256 for s in subjects))


def _subjects(statement: Any, bad: Any) -> tuple[Subject, ...]:
    if not isinstance(statement, dict) or statement.get("_type") not in STATEMENT_TYPES:
        raise bad("the payload is not an in-toto statement ('_type')")
    if not isinstance(statement.get("predicateType"), str):
        raise bad("the statement has no 'predicateType'")
    raw = statement.get("subject")
    if not isinstance(raw, list) or not raw:
        raise bad("the statement names no 'subject'")
    out = []
    for i, item in enumerate(raw):
        digest = item.get("digest") if isinstance(item, dict) else None
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise bad(f"subject[{i}] has no sha256 digest")
        out.append(Subject(str(item.get("name", "")), sha256))
    return tuple(out)


def load_bundles(paths: Iterable[Path]) -> list[BundleFile]:
    """Bundles from files and folders (every *.json and *.jsonl file in a folder, sorted)."""
    out = []
    for given in paths:
        if given.is_dir():
            files = sorted(p for p in given.rglob("*") if p.is_file()
                           and p.suffix in (".json", ".jsonl"))
            if not files:
                raise InputError(f"{given}: no bundle (*.json) in this folder")
            out += [read_bundle(p) for p in files]
        else:
            out.append(read_bundle(given))
    return out


def covering(bundles: Sequence[BundleFile]) -> dict[str, BundleFile]:
    """sha256 -> the bundle attesting it (the first given wins)."""
    out: dict[str, BundleFile] = {}
    for bundle in bundles:
        for digest in bundle.digests:
            out.setdefault(digest, bundle)
    return out


# --- what a run attests ------------------------------------------------------------------

def report_subjects(paths: Iterable[Path]) -> list[Subject]:
    """The probes build reports say were built: every report.jsonl under the given files
    and folders (download-artifact nests one folder per artifact)."""
    reports: list[Path] = []
    for given in paths:
        found = sorted(given.rglob(REPORT_NAME)) if given.is_dir() else [given]
        if not found:
            raise InputError(f"{given}: no build report ({REPORT_NAME}) in this folder",
                             hint="pass the folders `falco-probes build --out` wrote")
        reports += found
    return [Subject(subject_name(r.driver_version, r.arch, r.file), r.sha256)
            for _folder, r in iter_reports(reports) if r.ok]


def chunks(subjects: Iterable[Subject], size: int = MAX_SUBJECTS) -> list[list[Subject]]:
    """Sorted, duplicates dropped, in lists of at most `size` (one attestation each)."""
    if not 1 <= size <= MAX_SUBJECTS:
        raise InputError(f"chunk size {size} is not between 1 and {MAX_SUBJECTS}",
                         hint="actions/attest takes at most 1,024 subjects per attestation")
    ordered = sorted(set(subjects))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def checksums_text(subjects: Iterable[Subject]) -> str:
    """`sha256sum` format, what the action's `subject-checksums` input reads."""
    return "".join(f"{s.sha256}  {s.name}\n" for s in subjects)


# --- checking a bundle ---------------------------------------------------------------------

NOT_CHECKED = "not checked"
VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class BundleCheck:
    """What a bundle says about one file."""

    bundle: str                # where it was read
    attested: bool             # the statement names the file's sha256
    signature: str = NOT_CHECKED   # verified | not checked | why it failed
    signer: str = ""           # verified: the workflow that signed, at which commit, which run

    @property
    def ok(self) -> bool:
        return self.attested and self.signature in (VERIFIED, NOT_CHECKED)

    def as_dict(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "attested": self.attested, "signature": self.signature,
                "signer": self.signer or None}


def check_bundle(bundle: BundleFile, sha256: str, *, repository: str | None = None,
                 trusted_root: Path | None = None) -> BundleCheck:
    """Does `bundle` attest `sha256`; with `repository`, is it signed by that repository's
    GitHub Actions (offline, sigstore-python)?"""
    attested = bundle.attests(sha256)
    if repository is None or not attested:
        return BundleCheck(str(bundle.path), attested)
    try:
        signer = verify_signature(bundle.path, repository, trusted_root)
    except SignatureError as exc:
        return BundleCheck(str(bundle.path), attested, str(exc))
    return BundleCheck(str(bundle.path), attested, VERIFIED, signer)


class SignatureError(Exception):
    """The bundle's signature, certificate, log entry or identity did not verify."""


def verify_signature(path: Path, repository: str, trusted_root: Path | None = None) -> str:
    """Verify the bundle offline; returns who signed it (workflow, commit, run).

    Raises SignatureError when it does not verify, InputError when it cannot be
    tried (sigstore-python missing, bad repository or trusted root file).
    """
    if not _REPO.fullmatch(repository):
        raise InputError(f"--repo {repository!r} is not OWNER/NAME")
    sigstore = _sigstore()
    roots = _trusted_roots(sigstore, trusted_root)
    try:
        bundle = sigstore.Bundle.from_json(path.read_bytes())
    except Exception as exc:  # sigstore raises many kinds on malformed input
        raise SignatureError(_one_line(f"sigstore cannot read the bundle: {exc}")) from None
    identity = sigstore.policy.AllOf([
        sigstore.policy.OIDCIssuerV2(GITHUB_ISSUER),
        sigstore.policy.OIDCSourceRepositoryURI(f"https://github.com/{repository}"),
    ])
    failures = []
    for root in roots:
        try:
            payload_type, _payload = sigstore.Verifier(trusted_root=root).verify_dsse(
                bundle, identity)
        except Exception as exc:  # VerificationError and its causes
            failures.append(_one_line(str(exc)) or exc.__class__.__name__)
            continue
        if payload_type != IN_TOTO_PAYLOAD:
            raise SignatureError(f"the signed payload is {payload_type}, not an in-toto "
                                 "statement")
        return _signer(bundle.signing_certificate)
    raise SignatureError("; ".join(dict.fromkeys(failures)) or "no trusted root to check with")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _signer(certificate: Any) -> str:
    values = {}
    for ext in certificate.extensions:
        oid = ext.oid.dotted_string
        if oid in (_SIGNER_URI_OID, _SOURCE_DIGEST_OID, _RUN_URI_OID):
            raw = getattr(ext.value, "value", b"")
            values[oid] = _der_utf8(raw)
    parts = [values.get(_SIGNER_URI_OID, ""), values.get(_SOURCE_DIGEST_OID, ""),
             values.get(_RUN_URI_OID, "")]
    labels = ("workflow", "commit", "run")
    return ", ".join(f"{label} {value}" for label, value in zip(labels, parts, strict=True)
                     if value)


def _der_utf8(raw: bytes) -> str:
    """The text of a DER UTF8String (Fulcio's v2 extensions); printable text only."""
    if len(raw) >= 2 and raw[0] == 0x0C and raw[1] < 0x80:
        raw = raw[2:2 + raw[1]]
    text = raw.decode("utf-8", "replace")
    return text if text.isprintable() else ""


class _Sigstore:
    """sigstore-python, imported on first use (an optional extra)."""

    def __init__(self) -> None:
        from sigstore.models import Bundle, ClientTrustConfig, TrustedRoot
        from sigstore.verify import Verifier, policy
        from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootDocument

        self.Bundle = Bundle
        self.ClientTrustConfig = ClientTrustConfig
        self.TrustedRoot = TrustedRoot
        self.TrustedRootDocument = TrustedRootDocument
        self.Verifier = Verifier
        self.policy = policy


def _sigstore() -> _Sigstore:
    try:
        return _Sigstore()
    except ImportError:
        raise InputError("checking a signature needs sigstore-python",
                         hint="pip install 'falco-probes[attest]', or drop --repo to check "
                              "only the attested digests") from None


def _trusted_roots(sigstore: _Sigstore, path: Path | None) -> list[Any]:
    """The roots to try: each line of a JSON Lines file (`gh attestation trusted-root`
    prints one per Sigstore instance) or one JSON file; else sigstore's public-good root."""
    if path is None:
        logging.getLogger("sigstore").setLevel(logging.ERROR)  # "offline mode" chatter
        return [sigstore.ClientTrustConfig.production(offline=True).trusted_root]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the trusted root: {exc.strerror or exc}") \
            from None
    documents = [line for line in text.splitlines() if line.strip()]
    try:
        json.loads(text)
        documents = [text]
    except ValueError:
        pass
    roots = []
    for number, document in enumerate(documents, 1):
        try:
            roots.append(sigstore.TrustedRoot(
                sigstore.TrustedRootDocument.from_json(document)))
        except Exception as exc:  # pydantic and protobuf errors
            raise InputError(_one_line(f"{path}:{number}: not a Sigstore trusted root: {exc}"),
                             hint="write one with `gh attestation trusted-root > "
                                  "trusted_root.jsonl`") from None
    if not roots:
        raise InputError(f"{path}: the trusted root file is empty")
    return roots


# --- what a consumer runs ------------------------------------------------------------------

_GITHUB_PATH = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/"
                          r"(?:actions/runs/|releases/download/|attestations/)")


def repository_of(*urls: str) -> str:
    """OWNER/NAME of the github.com repository a job or attestation URL belongs to, or ""."""
    for url in urls:
        match = _GITHUB_PATH.match(url or "")
        if match:
            return match.group(1)
    return ""


def verify_commands(file: str, repository: str) -> dict[str, str]:
    """The `gh attestation verify` commands for a downloaded probe: online, and offline
    with its bundle and a trusted root saved beforehand (air-gapped sites)."""
    if not repository:
        return {}
    bundle = f"{file}{BUNDLE_SUFFIX}"
    return {
        "online": f"gh attestation verify {file} --repo {repository}",
        "offline": f"gh attestation verify {file} --repo {repository} --bundle {bundle} "
                   "--custom-trusted-root trusted_root.jsonl",
    }
