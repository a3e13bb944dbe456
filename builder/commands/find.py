"""`falco-probes find`: the probe this node (or each node of an inventory) needs."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from builder.commands.common import add_catalog_option, add_config_option, catalog_dir, config_from
from builder.consumers.find import (
    FindResult,
    catalog_files_for,
    find,
    loadtest_summary,
    resolve_versions,
)
from builder.core import limits
from builder.core.catalog import Catalog
from builder.core.config import Config
from builder.core.drivertypes import BY_NAME, DRIVER_TYPES
from builder.core.errors import EXIT_BAD_INPUT, EXIT_NEGATIVE, EXIT_OK, InputError, ProbesError
from builder.core.files import decode_text, file_kind, read_bytes
from builder.core.jsonio import parse_json
from builder.core.naming import host_from_inputs
from builder.core.records import HostFacts
from builder.ui import emit, emit_json, info

FALLBACK_FILES = (("debian_version", "debian"), ("centos-release", "centos"),
                  ("redhat-release", "rhel"))
BATCH_KEYS = {"falco_version", "driver_version", "driver_type", "os_release", "etc_version",
              "uname_r", "uname_v", "uname_m", "fallback", "id"}

DESCRIPTION = """\
Compute the file name and request path that falco-driver-loader (Falco 0.26-0.36) or
falcoctl (Falco 0.37-0.44) asks for on a node, for the eBPF probe (.o) or the kernel
module (.ko), and look it up in the catalog. The driver type defaults to what the Falco
release loads: the kernel module from Falco 0.44 (which has no legacy eBPF probe), the
eBPF probe before; --driver-type chooses. When the file is there, the answer says how to
point the loader at it (falcoctl, falco-driver-loader, the Helm chart's driver.kind).

With no options it reads this node: /etc/os-release (or <--host-root>/etc/os-release,
like the loader's HOST_ROOT), /etc/VERSION when present (minikube) and uname.

Twin kernels (docs/twins.md) share a file name: the answer is the file built for this
node's kernel (`uname -r`), and when it lives under a twin root, the loader setting that
fetches it (`set: FALCOCTL_DRIVER_REPOS=<root>,<store>`).

exit codes: 0 the probe for this kernel is in the catalog; 1 it is not (not built,
failed, only another kernel's file under that name, kernel too old, or the loader
requests nothing); 2 bad input. With --batch: 0 if every line was
found, 1 if any was not, 2 if any line was bad input (each bad line still gets a result
line with "error").
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("find", help="which probe a node needs, and where it is",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    node = parser.add_argument_group("the node (default: this machine)")
    node.add_argument("--host-root", type=Path, default=None, metavar="DIR",
                      help="read etc/os-release and etc/VERSION under DIR (the loader's HOST_ROOT)")
    node.add_argument("--os-release", type=Path, metavar="FILE", help="an os-release file")
    node.add_argument("--etc-version", type=Path, metavar="FILE",
                      help="the node's /etc/VERSION (minikube)")
    node.add_argument("--uname-r", metavar="RELEASE", help="`uname -r` of the node")
    node.add_argument("--uname-v", metavar="VERSION", help="`uname -v` of the node")
    node.add_argument("--uname-m", metavar="MACHINE", help="`uname -m` of the node")
    which = parser.add_argument_group("which loader")
    which.add_argument("--falco-version", metavar="V",
                       help="the node's Falco version (default: the newest known)")
    which.add_argument("--driver-version", metavar="D",
                       help="the driver version (default: the one that Falco version loads; "
                            "with --falco-version it acts like the loader's DRIVER_VERSION)")
    which.add_argument("--driver-type", choices=DRIVER_TYPES, default=None,
                       help="ebpf (the legacy eBPF probe, .o) or kmod (the kernel module, "
                            ".ko); default: kmod from Falco 0.44, ebpf before")
    parser.add_argument("--batch", metavar="FILE",
                        help="JSON lines, one node per line ('-' for stdin): keys falco_version "
                             "or driver_version, os_release (text), etc_version (optional "
                             "text), uname_r, uname_v, uname_m, optional fallback (debian, "
                             "centos or rhel: the legacy file of a node without os-release) "
                             "driver_type (optional: ebpf or kmod) and id (echoed); one JSON "
                             "result per line out")
    add_catalog_option(parser)
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args, required=args.config is not None)
    root = catalog_dir(args)
    if not root.is_dir():
        raise InputError(f"no catalog at {root}", hint="pass --catalog DIR (the catalog/ "
                         "folder of this repository, or a mirror's), or set "
                         "FALCO_PROBES_CATALOG")
    catalog = Catalog(root)  # filled with only the files each node's answer needs
    if args.batch:
        return _run_batch(args.batch, catalog, config)
    host = _node(args)
    falco, driver, kind = resolve_versions(args.falco_version, args.driver_version, config,
                                           args.driver_type)
    if args.falco_version is None:
        info(f"assuming Falco {falco} (pass --falco-version to choose)")
    catalog.ensure(catalog_files_for(host, falco, driver, config, kind))
    result = find(host, falco, driver, catalog, config, source="this node", driver_type=kind)
    if args.json:
        emit_json(result.as_dict())
    else:
        _print(result)
    return EXIT_OK if result.available else EXIT_NEGATIVE


def _read(path: Path, what: str) -> str:
    """A small text file of the node, bounded and regular (never a FIFO or /dev/zero)."""
    try:
        data = read_bytes(path, limits.OS_RELEASE)
    except InputError as exc:
        raise InputError(f"{what}: {exc.message}", hint=exc.hint) from None
    return data.decode("utf-8", errors="replace")


def _node(args: argparse.Namespace) -> HostFacts:
    root = args.host_root if args.host_root is not None else Path(
        os.environ.get("HOST_ROOT") or "/")
    etc = root / "etc"
    os_release_path = args.os_release or etc / "os-release"
    os_release = _read(os_release_path, "os-release") if os_release_path.exists() else None
    if args.os_release is not None and os_release is None:
        raise InputError(f"{args.os_release}: no such file")
    version_path = args.etc_version or etc / "VERSION"
    etc_version = _read(version_path, "/etc/VERSION") if version_path.exists() else None
    fallback = next((name for file, name in FALLBACK_FILES if (etc / file).exists()), "")
    uname = os.uname()
    return host_from_inputs(os_release, args.uname_r or uname.release,
                            args.uname_v or uname.version, args.uname_m or uname.machine,
                            etc_version, fallback)


def _print(result: FindResult) -> None:
    name = result.name
    emit(f"status:        {result.status}")
    emit(f"driver:        {result.driver_version}, {BY_NAME[result.driver_type].noun} "
         f"({result.driver_type})")
    if name is not None:
        emit(f"file:          {name.file}")
        emit(f"request path:  {result.request_path}   ({result.client}, Falco "
             f"{result.falco_version})")
        if result.falcoctl_request_path != result.request_path:
            emit(f"falcoctl path: {result.falcoctl_request_path}")
    if result.available:
        emit(f"url:           {result.url}")
        emit(f"sha256:        {result.sha256}")
        emit(f"size:          {result.size}")
        if result.built_for:
            emit(f"built for:     {result.built_for}")
        for key, value in result.settings.items():
            emit(f"set:           {key}={value}")
        if result.note:
            emit(f"note:          {result.note}")
        emit(f"load test:     {loadtest_summary(result.loadtest, result.driver_type)}")
        for how, command in result.loader.items():
            emit(f"{(how + ':'):<15}{command}")
        if result.attestation:
            emit(f"attestation:   {result.attestation}")
            for how, command in result.as_dict().get("verify", {}).items():
                emit(f"verify ({how}): {command}")
    else:
        emit(f"not available: {result.reason}")
        if result.log:
            emit(f"build log:     {result.log}")


def _open_batch(name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    path = Path(name)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise InputError(f"{name}: is {file_kind(mode)}, not a file of JSON lines")
    try:  # a FIFO is fine here: a stream of nodes, read line by line
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None


def batch_lines(source: BinaryIO, max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line longer than `max_line`, which is
    skipped without being held in memory."""
    number = 0
    while True:
        line = source.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) <= max_line or line.endswith(b"\n"):
            yield number, line
            continue
        while line and not line.endswith(b"\n"):  # drop the rest of the long line
            line = source.readline(1 << 20)
        yield number, None


def _run_batch(name: str, catalog: Catalog, config: Config | None) -> int:
    worst = EXIT_OK
    source = _open_batch(name)
    max_line = limits.JSON_LINE.get()
    try:
        for number, line in batch_lines(source, max_line):
            if line is not None and not line.strip():
                continue
            out, code = _batch_line(line, number, name, catalog, config)
            emit_json(out)
            worst = max(worst, code)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return worst


def _batch_line(line: bytes | None, number: int, name: str, catalog: Catalog,
                config: Config | None) -> tuple[dict[str, Any], int]:
    """One node's answer; a bad line gets its own error result and the next lines go on."""
    where = f"{name}:{number}"
    head: dict[str, Any] = {"line": number}
    try:
        if line is None:
            raise limits.JSON_LINE.exceeded(where)
        raw = parse_json(decode_text(line, where, lines=False), where, lines=False)
        if isinstance(raw, dict) and "id" in raw:
            head["id"] = raw["id"]
        host, falco, driver, kind = _batch_inputs(raw, where, config)
        catalog.ensure(catalog_files_for(host, falco, driver, config, kind))
        result = find(host, falco, driver, catalog, config, source=where, driver_type=kind)
    except ProbesError as exc:
        return {**head, "error": exc.message}, EXIT_BAD_INPUT
    return {**head, **result.as_dict()}, EXIT_OK if result.available else EXIT_NEGATIVE


def _batch_inputs(raw: object, where: str,
                  config: Config | None) -> tuple[HostFacts, Any, str, str]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(raw) - BATCH_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (allowed: "
                         f"{', '.join(sorted(BATCH_KEYS))})")
    for key in ("uname_r", "uname_v", "uname_m"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InputError(f"{where}: {key!r} is required and must be a string")
    for key in ("os_release", "etc_version", "falco_version", "driver_version", "fallback",
                "driver_type"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise InputError(f"{where}: {key!r} must be a string")
    if raw.get("falco_version") is None and raw.get("driver_version") is None:
        raise InputError(f"{where}: give falco_version or driver_version")
    for key in ("os_release", "etc_version"):
        if len(raw.get(key) or "") > limits.OS_RELEASE.get():
            raise InputError(f"{where}: {key!r} is {len(raw[key])} characters; at most "
                             f"{limits.OS_RELEASE.get()} allowed ({limits.OS_RELEASE.env})")
    if raw.get("fallback") not in (None, "debian", "centos", "rhel"):
        raise InputError(f"{where}: fallback must be debian, centos or rhel (the legacy file "
                         "the node has instead of os-release)")
    if raw.get("driver_type") not in (None, *DRIVER_TYPES):
        raise InputError(f"{where}: driver_type must be {' or '.join(DRIVER_TYPES)}")
    host = host_from_inputs(raw.get("os_release"), raw["uname_r"], raw["uname_v"],
                            raw["uname_m"], raw.get("etc_version"), raw.get("fallback") or "")
    falco, driver, kind = resolve_versions(raw.get("falco_version"), raw.get("driver_version"),
                                           config, raw.get("driver_type"))
    return host, falco, driver, kind
