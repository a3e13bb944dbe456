"""`falco-probes publish`: built probes into a store, and a catalog fragment for `catalog merge`.

"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import time
from pathlib import Path

from builder.commands.common import (
    add_catalog_option,
    add_config_option,
    add_json_option,
    add_store_options,
    catalog_dir,
    config_from,
    int_in,
    store_choice,
)
from builder.core.catalog import load_catalog
from builder.core.errors import EXIT_OK, ConflictError, InputError, StoreError
from builder.core.records import ProbeRecord, check_commit
from builder.publish.attest import load_bundles
from builder.publish.stage import (
    FragmentFile,
    Provenance,
    PublishSummary,
    ci_log_url,
    current_commit,
    load_reports,
    publish,
    resolve_aliases,
)
from builder.publish.stores import Budget, FailedBuild
from builder.publish.stores.choice import open_store
from builder.ui import emit, emit_json, info, progress

MAX_DEADLINE_MINUTES = 7 * 24 * 60

DESCRIPTION = """\
Publish the probes of one or more build reports into a store (a directory in the
loader's layout, or GitHub Releases) and append one JSON line per probe to the
fragment as soon as the store confirms it; failures in the reports become failure
lines. Merge the fragment with `falco-probes catalog merge`. Reruns are safe: what
the fragment or the store already holds is recorded, never uploaded twice.

Each probe's and failure's compile log goes into the store with it, and so does the
provenance bundle (--attestations) that attests the probe; the records link both, and
the CI job that built them. --max-uploads counts every file written (probes, logs,
bundles).

GitHub: the API URL comes from --api-url, else GITHUB_API_URL, else
https://api.github.com; the repository from --repository, else store.repository in
probes.yaml, else GITHUB_REPOSITORY; the token from --token-file, else GITHUB_TOKEN
(never from a flag, so it stays out of shell history and `ps`).

exit codes: 0 done, or stopped cleanly at --max-uploads / --deadline (the summary
says "stopped" and how many are left; --json: "complete": false); 2 bad input
(a probe file missing or not matching its report: nothing is published);
3 conflict (the store or fragment holds other bytes under a probe's name; the other
probes are still published); 4 store or network error (everything confirmed before
it is in the fragment). See docs/publishing.md.

A probe whose programs the kernel's verifier rejected (`falco-probes loadtest`) is
refused: it is not uploaded and becomes a failure line (step loadtest, category
verifier, the verifier's message as reason), like a build failure, and the run still
exits 0. So is a kernel module its own kernel refused to load (or that did not make its
devices, answer its API version or unload: category refused, the kernel's words as
reason). --allow-unverified publishes it anyway, its record saying it was rejected.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("publish", help="publish built probes into a store",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                        help="a build output folder (holding report.jsonl) or a report file")
    parser.add_argument("--fragment", type=Path, required=True, metavar="FILE",
                        help="catalog fragment to append to (created if missing; a rerun "
                             "with the same file skips what it records)")
    add_store_options(parser)
    parser.add_argument("--allow-unverified", action="store_true",
                        help="publish probes even when the load test says the verifier "
                             "rejected them (a module: its kernel refused it; default: record "
                             "them as failures)")
    run_group = parser.add_argument_group("limits of one run")
    run_group.add_argument("--max-uploads", type=int_in(0, 10 ** 9), default=None, metavar="N",
                           help="stop cleanly after uploading N probes (default: no limit; "
                                "github.com allows about 500 writes per hour)")
    run_group.add_argument("--deadline", default=None, metavar="MINUTES|TIME",
                           help="stop cleanly after MINUTES minutes, or at TIME "
                                "(ISO 8601 such as 2025-01-31T04:00:00Z)")
    prov = parser.add_argument_group("provenance recorded with each probe")
    prov.add_argument("--attestations", action="append", type=Path, default=[],
                      metavar="PATH",
                      help="a Sigstore bundle (actions/attest-build-provenance's bundle-path), "
                           "or a folder of them: each probe a bundle attests gets it kept "
                           "beside it in the store and linked as its attestation; repeatable")
    prov.add_argument("--job-id", default=os.environ.get("FALCO_PROBES_JOB_ID", ""),
                      metavar="ID",
                      help="this job's check-run id: the log link of a record whose build "
                           "report has no log (default: $FALCO_PROBES_JOB_ID; Actions: "
                           "${{ job.check_run_id }}; without it, the run's page)")
    prov.add_argument("--commit", default=None, metavar="SHA",
                      help="this repository's commit (default: GITHUB_SHA, else "
                           "`git rev-parse HEAD`)")
    add_config_option(parser)
    add_catalog_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def parse_deadline(text: str | None, now: float) -> float | None:
    """Minutes from now, or an ISO 8601 time (UTC unless it has an offset), as epoch seconds."""
    if text is None:
        return None
    try:
        minutes = float(text)
    except ValueError:
        pass
    else:  # nan and inf parse as floats: refuse them, never ignore a deadline silently
        if not (math.isfinite(minutes) and 0 < minutes <= MAX_DEADLINE_MINUTES):
            raise InputError(f"--deadline {text}: must be a number of minutes from 0 to "
                             f"{MAX_DEADLINE_MINUTES} (a week), or an ISO 8601 time")
        return now + minutes * 60
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--deadline {text!r} is neither minutes nor an ISO 8601 time",
                         hint="for example --deadline 50 or --deadline 2025-01-31T04:00:00Z"
                         ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    config = config_from(args, required=args.config is not None)
    commit = (args.commit or "").lower() or current_commit(env)
    if args.commit and check_commit(commit):
        raise InputError(f"--commit {args.commit!r}: {check_commit(commit)}")
    provenance = Provenance(log=ci_log_url(env, str(args.job_id or "")), commit=commit)
    bundles = load_bundles(args.attestations)
    artifacts, failures = load_reports(args.reports, provenance, bundles,
                                       allow_unverified=args.allow_unverified)
    for item in failures:
        failure = item.failure if isinstance(item, FailedBuild) else item
        if failure.category == "verifier":
            info(f"refused {failure.driver_version} {failure.file}: {failure.reason}")
    unattested = sum(1 for a in artifacts if a.attestation is None)
    if bundles and unattested:
        info(f"{unattested} of {len(artifacts)} probe(s) are in no bundle given: published "
             "without an attestation")
    folders = {(a.probe.driver_version, a.probe.arch) for a in artifacts}
    artifacts, stale = resolve_aliases(artifacts, load_catalog(catalog_dir(args), only=folders))
    budget = Budget(args.max_uploads, parse_deadline(args.deadline, time.time()))
    store = open_store(store_choice(args), config, budget, env)
    for probe, alias in stale:
        for rel in store.retire_alias(probe, alias):
            info(f"retired {rel}: {alias} now names another probe")

    def on_probe(record: ProbeRecord, uploaded: bool) -> None:
        line = f"{'published' if uploaded else 'present'}  {record.sha256}  {record.url}"
        if args.json:
            info(line)
        else:
            emit(line)

    info(f"publishing {len(artifacts)} probe(s) and {len(failures)} failure(s) to "
         f"{store.description}")
    summary = PublishSummary()
    try:
        with FragmentFile(args.fragment) as fragment, progress() as bar:
            task = bar.add_task("publish", total=len(artifacts))
            publish(artifacts, failures, store, fragment, on_probe=on_probe,
                    on_step=lambda: bar.advance(task), summary=summary)
    except StoreError:  # exit 4, after the summary (--json: "complete": false)
        _report(summary, args)
        raise
    _report(summary, args)
    if summary.conflicts:
        raise ConflictError(f"{len(summary.conflicts)} conflict(s): "
                            + "; ".join(summary.conflicts[:3])
                            + (" ..." if len(summary.conflicts) > 3 else ""),
                            hint="every other probe was published and recorded; see "
                                 "`falco-probes audit` and docs/publishing.md")
    return EXIT_OK


def _report(summary: PublishSummary, args: argparse.Namespace) -> None:
    if args.json:
        emit_json({"fragment": str(args.fragment), **summary.as_dict()})
    text = (f"{summary.uploaded} uploaded, {summary.present} already in the store, "
            f"{summary.skipped} already in the fragment, {summary.failures} failure(s) recorded")
    if summary.stopped == "error":
        text += f"; stopped by a store error, {summary.left} left for the next run"
    elif summary.stopped:
        text += f"; stopped at the {summary.stopped}, {summary.left} left for the next run"
    info(text)
