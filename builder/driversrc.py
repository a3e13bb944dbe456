"""Driver source providers: a prepared, read-only Falco driver tree per driver version.

A Falco eBPF probe is built from the libs `driver/` folder: `driver/bpf`
(probe.c, its headers and the kbuild Makefile) plus the headers one level up
that probe.c includes (`../driver_config.h`, `../ppm_events_public.h` ...).
Upstream keeps `driver_config.h.in`, a cmake template; we render it as cmake
would, with the driver version, the probe and device name "falco" and the
commit. A tree that already ships `driver_config.h` (Debian's
falcosecurity-scap-dkms) is used as is, after checking its version.

Providers, chosen by `source.kind` in probes.yaml:
- `libs-archive`: the libs source archive of the ref (URL template with {ref});
- `directory`: a local libs checkout, its driver/ folder, or driver/bpf;
- `debian-package`: a binary package of the machine's apt archive that ships
  the driver source under /usr/src (falcosecurity-scap-dkms).

The prepared tree holds the driver folder's top-level files and its bpf/
subtree (not modern_bpf or the kernel module's extras), and is cached under
<cache>/sources/<provider>/<ref>/<digest>/driver, the digest being sha256 over
its sorted relative paths and bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import DriverVersion
from .errors import BuildError
from .extract import extract
from .fetch import download, sha256_file
from .kernels.apt import AptArchive
from .yamlio import atomic_write

PROBE_NAME = "falco"
DEVICE_NAME = "falco"
CONFIG_FILE = "driver_config.h"
TEMPLATE_FILE = "driver_config.h.in"
MANIFEST_FILE = "source.json"
_SEARCH_DEPTH = 4
_TEMPLATE_VAR = re.compile(r"\$\{(\w+)\}|@(\w+)@")
_VERSION_DEFINE = re.compile(r'^#define\s+(?:DRIVER|PROBE)_VERSION\s+"([^"]*)"', re.MULTILINE)
_HEX_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_SOURCE_HINT = "check driver_versions[].source in probes.yaml (see docs/configuration.md)"


@dataclass(frozen=True, slots=True)
class PreparedSource:
    """A driver tree ready to copy into a kbuild work folder, and where it came from."""

    driver_version: str
    ref: str
    provider: str        # libs-archive | directory | debian-package
    origin: str          # the URL, folder or package=version it came from
    digest: str          # sha256 over the sorted relative paths and bytes of driver_dir
    driver_dir: Path     # holds driver_config.h, the shared headers and bpf/
    bpf_dir: Path        # driver_dir / "bpf": what kbuild gets as M=
    commit: str = ""     # the commit written into driver_config.h (may be empty)
    config: str = ""     # "generated" from driver_config.h.in, or "shipped"


def prepare_source(driver: DriverVersion, cache_dir: Path, *, base_dir: Path | None = None,
                   apt: AptArchive | None = None) -> PreparedSource:
    """The prepared source tree of `driver`, from the cache when the same source was seen.

    `base_dir` resolves a relative `directory` path (the folder of probes.yaml);
    `apt` is reused for `debian-package` (default: an AptArchive under cache_dir).
    """
    kind = driver.source.kind
    if kind == "directory":
        return from_directory(driver, cache_dir, base_dir or Path.cwd())
    if kind == "libs-archive":
        return from_libs_archive(driver, cache_dir)
    if kind == "debian-package":
        return from_debian_package(driver, cache_dir, apt)
    raise BuildError(f"driver {driver.version}: unknown source kind {kind!r}", hint=_SOURCE_HINT)


def from_directory(driver: DriverVersion, cache_dir: Path, base_dir: Path) -> PreparedSource:
    folder = (base_dir / driver.source.path).resolve()
    if not folder.is_dir():
        raise BuildError(f"driver {driver.version}: source folder {folder} does not exist",
                         hint=_SOURCE_HINT)
    return _prepare(driver, "directory", str(folder), find_driver_dir(folder), cache_dir,
                    commit="")


def from_libs_archive(driver: DriverVersion, cache_dir: Path) -> PreparedSource:
    url = libs_archive_url(driver.source.url, driver.ref)
    archive = download(url, cache_dir / "downloads" / _archive_name(url))
    archive_sha = sha256_file(archive)
    cached = _cached_by_origin(cache_dir, "libs-archive", driver, f"{url}#{archive_sha}")
    if cached:
        return cached
    with tempfile.TemporaryDirectory(prefix="libs-", dir=_scratch(cache_dir)) as tmp:
        extract(archive, Path(tmp))
        found = find_driver_dir(Path(tmp), origin=url)
        prepared = _prepare(driver, "libs-archive", url, found, cache_dir,
                            commit=archive_commit(archive))
    _remember_origin(cache_dir, prepared, f"{url}#{archive_sha}")
    return prepared


def from_debian_package(driver: DriverVersion, cache_dir: Path,
                        apt: AptArchive | None = None) -> PreparedSource:
    if apt is None:
        apt = AptArchive(cache_dir / "apt")
        apt.update()
    package = apt.package(driver.source.package)
    origin = package.url.rsplit("/", 1)[-1]  # the .deb file name: name, version, arch
    cached = _cached_by_origin(cache_dir, "debian-package", driver,
                               f"{package.url}#{package.sha256}")
    if cached:
        return cached
    deb = download(package.url, cache_dir / "downloads" / _archive_name(package.url),
                   sha256=package.sha256, size=package.size)
    with tempfile.TemporaryDirectory(prefix="deb-", dir=_scratch(cache_dir)) as tmp:
        extract(deb, Path(tmp), kind=package.kind)
        found = find_driver_dir(Path(tmp) / "usr" / "src", origin=origin)
        prepared = _prepare(driver, "debian-package", origin, found, cache_dir, commit="")
    _remember_origin(cache_dir, prepared, f"{package.url}#{package.sha256}")
    return prepared


def libs_archive_url(template: str, ref: str) -> str:
    if "{ref}" not in template:
        raise BuildError(f"libs-archive URL {template!r} has no {{ref}} placeholder",
                         hint=_SOURCE_HINT)
    return template.replace("{ref}", ref)


def find_driver_dir(root: Path, *, origin: str = "") -> Path:
    """The one folder under `root` (a few levels deep) that holds bpf/probe.c and bpf/Makefile."""
    if (root / "probe.c").is_file() and root.name == "bpf":
        return root.parent
    found = sorted(d for d in _dirs(root, _SEARCH_DEPTH) if _is_driver_dir(d))
    where = origin or str(root)
    if not found:
        raise BuildError(f"{where}: no Falco driver source (bpf/probe.c with bpf/Makefile)",
                         hint="point the source at a libs checkout, its driver/ or driver/bpf")
    if len(found) > 1:
        raise BuildError(f"{where}: several driver folders: "
                         + ", ".join(str(d.relative_to(root)) for d in found),
                         hint="point the source at one of them")
    return found[0]


def _dirs(root: Path, depth: int) -> Iterator[Path]:
    yield root
    if depth == 0:
        return
    try:
        children = [c for c in root.iterdir() if c.is_dir() and not c.is_symlink()]
    except OSError:
        return
    for child in children:
        yield from _dirs(child, depth - 1)


def _is_driver_dir(folder: Path) -> bool:
    return (folder / "bpf" / "probe.c").is_file() and (folder / "bpf" / "Makefile").is_file()


def archive_commit(archive: Path) -> str:
    """The commit a GitHub source archive was made from (its pax global header comment)."""
    try:
        with tarfile.open(archive) as tar:
            tar.next()
            comment = tar.pax_headers.get("comment", "")
    except (tarfile.TarError, OSError, EOFError):
        return ""
    return comment if _HEX_COMMIT.fullmatch(comment) else ""


# --- driver_config.h ----------------------------------------------------------

def config_values(driver_dir: Path, driver_version: str, commit: str) -> dict[str, str]:
    """What libs' cmake passes to driver_config.h.in, across the names it used over time."""
    values = {
        "DRIVER_VERSION": driver_version, "PROBE_VERSION": driver_version,
        "DRIVER_NAME": PROBE_NAME, "PROBE_NAME": PROBE_NAME,
        "DRIVER_DEVICE_NAME": DEVICE_NAME, "PROBE_DEVICE_NAME": DEVICE_NAME,
        "GIT_COMMIT": commit, "DRIVER_COMMIT": commit, "PROBE_COMMIT": commit,
    }
    for kind in ("API", "SCHEMA"):
        version_file = driver_dir / f"{kind}_VERSION"
        if version_file.is_file():
            parts = re.findall(r"\d+", version_file.read_text().split("\n", 1)[0])
            if len(parts) >= 3:
                for name, part in zip(("MAJOR", "MINOR", "PATCH"), parts, strict=False):
                    values[f"PPM_{kind}_CURRENT_VERSION_{name}"] = part
    return values


def render_config(template: str, values: Mapping[str, str], where: str) -> str:
    """cmake's configure_file: replace ${VAR} and @VAR@; unknown variables are an error."""
    unknown = sorted({a or b for a, b in _TEMPLATE_VAR.findall(template)} - set(values))
    if unknown:
        raise BuildError(f"{where}: no value for template variable(s) {', '.join(unknown)}",
                         hint="this libs version needs a newer falco-probes; please report it")
    return _TEMPLATE_VAR.sub(lambda m: values[m.group(1) or m.group(2)], template)


def _write_config(driver_dir: Path, driver: DriverVersion, origin: str, commit: str) -> str:
    config = driver_dir / CONFIG_FILE
    template = driver_dir / TEMPLATE_FILE
    if config.is_file():
        shipped = _VERSION_DEFINE.search(config.read_text(errors="replace"))
        if shipped and shipped.group(1) != driver.version:
            raise BuildError(f"{origin}: {CONFIG_FILE} is for driver version "
                             f"{shipped.group(1)!r}, probes.yaml says {driver.version!r}",
                             hint="fix the version or the source of this driver in probes.yaml")
        return "shipped"
    if not template.is_file():
        raise BuildError(f"{origin}: neither {CONFIG_FILE} nor {TEMPLATE_FILE} in the driver "
                         "folder", hint=_SOURCE_HINT)
    values = config_values(driver_dir, driver.version, commit)
    config.write_text(render_config(template.read_text(), values, f"{origin}: {TEMPLATE_FILE}"))
    return "generated"


# --- the prepared tree and its cache ------------------------------------------

def tree_digest(root: Path) -> str:
    """sha256 over every regular file's relative path and bytes, in sorted path order."""
    digest = hashlib.sha256()
    for rel in sorted(_files(root)):
        data = (root / rel).read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _files(root: Path) -> Iterator[str]:
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(root).as_posix()


def _prepare(driver: DriverVersion, provider: str, origin: str, found: Path, cache_dir: Path,
             commit: str) -> PreparedSource:
    if not commit and _HEX_COMMIT.fullmatch(driver.ref):
        commit = driver.ref
    ref_dir = cache_dir / "sources" / provider / _safe(driver.ref)
    ref_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=ref_dir))
    try:
        _copy_driver(found, staging / "driver")
        config = _write_config(staging / "driver", driver, origin, commit)
        digest = tree_digest(staging / "driver")
        final = ref_dir / digest
        prepared = PreparedSource(driver.version, driver.ref, provider, origin, digest,
                                  final / "driver", final / "driver" / "bpf", commit, config)
        if not (final / MANIFEST_FILE).is_file():
            _write_manifest(staging / MANIFEST_FILE, prepared)
            _make_read_only(staging / "driver")
            if final.exists():  # no manifest: not ours to trust
                _remove(final)
            try:
                os.replace(staging, final)
            except OSError:
                if not (final / MANIFEST_FILE).is_file():  # else another build was faster
                    raise
    finally:
        if staging.exists():
            _remove(staging)
    return prepared


def _copy_driver(src: Path, dest: Path) -> None:
    """Top-level regular files (headers probe.c includes, API_VERSION ...) plus bpf/."""
    dest.mkdir(parents=True)
    for entry in sorted(src.iterdir()):
        if entry.is_file():
            shutil.copyfile(entry, dest / entry.name)
    for folder, dirs, names in os.walk(src / "bpf"):
        dirs.sort()
        rel = Path(folder).relative_to(src)
        (dest / rel).mkdir(exist_ok=True)
        for name in names:
            if (Path(folder) / name).is_file():
                shutil.copyfile(Path(folder) / name, dest / rel / name)


def _make_read_only(root: Path) -> None:
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            os.chmod(Path(folder) / name, 0o444)
        os.chmod(folder, 0o555)  # noqa: S103 - read and list for all, write for none


def _remove(root: Path) -> None:
    """rmtree that also works on a read-only tree when not running as root."""
    for folder, _, _ in os.walk(root):
        os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(root)


def _write_manifest(path: Path, prepared: PreparedSource) -> None:
    data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(prepared).items()}
    data["driver_dir"] = "driver"
    data["bpf_dir"] = "driver/bpf"
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _load_manifest(path: Path) -> PreparedSource | None:
    try:
        data = json.loads(path.read_text())
        return PreparedSource(
            data["driver_version"], data["ref"], data["provider"], data["origin"],
            data["digest"], path.parent / data["driver_dir"], path.parent / data["bpf_dir"],
            data.get("commit", ""), data.get("config", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _origin_file(cache_dir: Path, provider: str, ref: str, origin_key: str) -> Path:
    key = hashlib.sha256(origin_key.encode()).hexdigest()[:32]
    return cache_dir / "sources" / provider / _safe(ref) / f"origin-{key}.txt"


def _cached_by_origin(cache_dir: Path, provider: str, driver: DriverVersion,
                      origin_key: str) -> PreparedSource | None:
    """A tree prepared earlier from the very same archive bytes, if it is still whole."""
    pointer = _origin_file(cache_dir, provider, driver.ref, origin_key)
    try:
        digest = pointer.read_text().strip()
    except OSError:
        return None
    prepared = _load_manifest(pointer.parent / digest / MANIFEST_FILE)
    if prepared is None or prepared.driver_version != driver.version:
        return None
    return prepared


def _remember_origin(cache_dir: Path, prepared: PreparedSource, origin_key: str) -> None:
    atomic_write(_origin_file(cache_dir, prepared.provider, prepared.ref, origin_key),
                 prepared.digest + "\n")


def _scratch(cache_dir: Path) -> Path:
    scratch = cache_dir / "sources" / ".scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def _safe(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", ref)


def _archive_name(url: str) -> str:
    name = _safe(url.rsplit("/", 1)[-1]) or "archive"
    return f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
