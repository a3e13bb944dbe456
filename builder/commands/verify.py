"""`falco-probes verify FILE...`: are these the probes the catalog lists?"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from builder.commands.common import add_catalog_option, add_json_option, catalog_dir
from builder.consumers.verify import AttestationPolicy, index_from_catalog, load_index, verify_files
from builder.core.catalog import load_catalog
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, InputError
from builder.core.records import ARCHES
from builder.ui import emit, emit_json, info

DESCRIPTION = """\
Check each probe or kernel module file's sha256 against the catalog (or a site index) and
check that it is what its type must be: a Falco eBPF object (.o) or a falco.ko for its
kernel (.ko). A file is found by its name (file name, alias or GitHub asset
name) or by its digest, in any driver version and arch unless --driver-version or
--arch narrow the search.

Provenance: the Sigstore bundle of a file (--bundle, FILE.sigstore.json next to it as
`mirror` writes it, or the bundle its catalog record links) must attest the file's
sha256. With --repo, the bundle's signature is checked offline too (sigstore-python:
certificate chain, transparency log proof, signed by OWNER/NAME's GitHub Actions).
See docs/usage-verify-mirror.md for what that proves and what needs `gh attestation
verify` online.

exit codes: 0 every file matches, 1 any file is unknown, different, not a probe, not
attested by its bundle or badly signed, 2 bad input (unreadable catalog, index or
bundle; --repo without sigstore-python).
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("verify", help="check probe files against the catalog",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="probe files")
    add_catalog_option(parser)
    parser.add_argument("--index", default=None, metavar="URL_OR_PATH",
                        help="check against the site's api/index.json (a path, file:// or "
                             "http(s) URL; the probe lists it links are fetched) instead of "
                             "the catalog")
    parser.add_argument("--driver-version", default=None, metavar="D",
                        help="only accept probes of this driver version")
    parser.add_argument("--arch", default=None, choices=ARCHES,
                        help="only accept probes of this arch")
    prov = parser.add_argument_group("provenance")
    prov.add_argument("--bundle", type=Path, default=None, metavar="FILE",
                      help="the Sigstore bundle to check every file against (default: "
                           "FILE.sigstore.json next to each file, else the bundle its record "
                           "links)")
    prov.add_argument("--repo", default=None, metavar="OWNER/NAME",
                      help="also check the bundle's signature offline: signed by this "
                           "repository's GitHub Actions (needs falco-probes[attest])")
    prov.add_argument("--trusted-root", type=Path, default=None, metavar="FILE",
                      help="Sigstore trusted root for --repo (`gh attestation trusted-root` "
                           "output; default: sigstore-python's copy of the public-good root)")
    prov.add_argument("--require-attestation", action="store_true",
                      help="fail a file that has no bundle")
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.index is not None and args.catalog is not None:
        raise InputError("pass --catalog or --index, not both")
    if args.index is not None:
        index = load_index(args.index, driver_version=args.driver_version)
    else:
        root = catalog_dir(args)
        if not root.is_dir():
            raise InputError(f"{root}: no catalog folder",
                             hint="pass --catalog DIR or --index URL_OR_PATH")
        index = index_from_catalog(load_catalog(root))
    if args.trusted_root is not None and args.repo is None:
        raise InputError("--trusted-root is for checking signatures: add --repo OWNER/NAME")
    with tempfile.TemporaryDirectory(prefix="falco-probes-verify-") as downloads:
        policy = AttestationPolicy(args.bundle, args.repo, args.trusted_root,
                                   args.require_attestation, Path(downloads))
        verdicts = verify_files(args.files, index, driver_version=args.driver_version,
                                arch=args.arch, attestations=policy)
    bad = [v for v in verdicts if not v.ok]
    if args.json:
        emit_json({"ok": not bad, "index": index.source,
                   "files": [v.as_dict() for v in verdicts]})
    else:
        for verdict in verdicts:
            emit(f"{verdict.status.upper()}  {verdict.path}: {verdict.message}")
        info(f"{len(verdicts) - len(bad)} of {len(verdicts)} file(s) verified against "
             f"{index.source}")
    return EXIT_NEGATIVE if bad else EXIT_OK
