"""Driver source providers: a prepared, read-only Falco driver tree per driver version and
driver type (the eBPF probe, the kernel module).

A Falco eBPF probe is built from the libs `driver/` folder, prepared as
upstream's own build (cmake, `driver/bpf/CMakeLists.txt` at that ref) does.
The legacy driver versions come in two layouts, told apart by how probe.c
includes the generated `driver_config.h`:

- `parent` (up to 7.0.0+driver and every commit-hash version): probe.c
  includes "../driver_config.h"; kbuild runs in driver/bpf with the driver
  headers one level up. We keep the driver folder's top-level files and its
  bpf/ subtree and render driver_config.h beside them.
- `flat` (from 7.2.0+driver): probe.c includes "driver_config.h" from its own
  folder, and the bpf Makefile includes configure/*/Makefile.inc (kernel
  feature probes). cmake copies the bpf sources, every driver/*.h and the
  rendered driver_config.h into one folder, and for each configure/<MODULE>/
  copies test.c, configure/Makefile and configure/build.sh and renders
  configure/Makefile.inc.in into configure/<MODULE>/Makefile.inc. We do the
  same; without it every compile fails with "driver_config.h not found".
  Debian's DKMS trees (falcosecurity-scap-dkms) ship that folder already made.

The oldest Makefiles (Falco 0.26-0.29) use `always += probe.o`, which kbuild
ignores from Linux 5.11: `legacy_always` says so, and the build records those
kernels as unsupported with that reason.

The kernel module (`kmod`) has one layout in every era (`driver/CMakeLists.txt`): one
flat folder of every top-level driver/*.c and *.h, the `Makefile` rendered from
`Makefile.in` (@DRIVER_NAME@, or @PROBE_NAME@ up to Falco 0.31.0, and an empty
@KBUILD_FLAGS@ as a release build has), `driver_config.h`, and from 7.1.0+driver each
driver/configure/<MODULE>/ (kernel feature checks, the eBPF ones' twins). Its name is
"falco" (DRIVER_NAME and DRIVER_DEVICE_NAME): libscap opens /dev/falco<cpu>, and a
module named scap would make /dev/scap*. Debian's DKMS trees are that folder made with
the name "scap": the two names are rewritten in Makefile and driver_config.h, and a tree
whose Makefile then builds anything but falco.o is refused. Top-level headers no kernel
file includes (event_stats.h, syscall_compat*.h ...) come along: harmless.

Upstream keeps `driver_config.h.in`, a cmake template; we render it as cmake
would, with the driver version, the probe and device name "falco" and the
commit. A tree that ships `driver_config.h` (Debian's package) is used as
is: its API and schema versions must be the driver version's (versions.py
DRIVER_API), and `description` says exactly what was compiled.

Providers, chosen by `source.kind` in probes.yaml:
- `libs-archive`: the libs source archive of the ref (URL template with {ref});
- `directory`: a local libs checkout, its driver/ folder, or driver/bpf;
- `debian-package`: a binary package that ships the driver source under
  /usr/src, from a named suite and version of the mirror apt already uses.

The prepared tree is cached under <cache>/sources/<provider>/<ref>/<digest>/driver,
the digest being sha256 over its sorted relative paths and bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.core import limits
from builder.core.config import DriverVersion
from builder.core.drivertypes import BY_NAME, EBPF
from builder.core.errors import BuildError, SourceLayoutError
from builder.core.files import atomic_write, remove_tree, swap_tree
from builder.core.versions import DRIVER_API
from builder.shared.apt import AptArchive
from builder.shared.extract import extract
from builder.shared.fetch import download, sha256_file

PROBE_NAME = "falco"
DEVICE_NAME = "falco"
CONFIG_FILE = "driver_config.h"
TEMPLATE_FILE = "driver_config.h.in"
MANIFEST_FILE = "source.json"
_SEARCH_DEPTH = 4
_TEMPLATE_VAR = re.compile(r"\$\{(\w+)\}|@(\w+)@")
_VERSION_DEFINE = re.compile(r'^#define\s+(?:DRIVER|PROBE)_VERSION\s+"([^"]*)"', re.MULTILINE)
_API_DEFINE = re.compile(r"^#define\s+PPM_(API|SCHEMA)_CURRENT_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)",
                         re.MULTILINE)
_ALWAYS_LEGACY = re.compile(r"^\s*always\s*\+?=\s*probe\.o", re.MULTILINE)
LAYOUT_PARENT = "parent"
LAYOUT_FLAT = "flat"
LAYOUT_KMOD = "kmod"      # the kernel module's one flat folder (every era)
MAKEFILE = "Makefile"
MAKEFILE_TEMPLATE = "Makefile.in"
KMOD_SOURCE = "main.c"
_DKMS_NAME = "scap"       # the name Debian's falcosecurity-scap-dkms builds
_KMOD_OBJECTS = re.compile(r"^obj-m\s*[:+]?=\s*(.*?)\s*$", re.MULTILINE)
# What cmake leaves out of the flat folder (build files of the bpf folder itself).
_NOT_COPIED = ("CMakeLists.txt", ".gitignore")
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
    driver_dir: Path     # the tree: driver_config.h and the shared headers (eBPF: and bpf/)
    bpf_dir: Path        # where kbuild builds: driver_dir / "bpf" (eBPF), driver_dir (kmod)
    commit: str = ""     # the commit written into driver_config.h (may be empty)
    config: str = ""     # "generated" from driver_config.h.in, or "shipped"
    layout: str = ""     # LAYOUT_PARENT or LAYOUT_FLAT
    api: str = ""        # the API and schema versions the source declares ("" if none)
    schema: str = ""
    libs_version: str = ""        # DRIVER_VERSION in the tree (Debian's: the libs release)
    legacy_always: bool = False   # bpf Makefile uses `always +=`, ignored from Linux 5.11
    description: str = ""         # exactly what was compiled, for the catalog and the site
    driver_type: str = EBPF.name  # drivertypes: what this tree builds


def prepare_source(driver: DriverVersion, cache_dir: Path, *, base_dir: Path | None = None,
                   apt: AptArchive | None = None,
                   driver_type: str = EBPF.name) -> PreparedSource:
    """The prepared source tree of `driver` for `driver_type`, from the cache when the same
    source was seen.

    `base_dir` resolves a relative `directory` path (the folder of probes.yaml);
    `apt` is reused for `debian-package` (default: an AptArchive under cache_dir).
    """
    kind = driver.source.kind
    if kind == "directory":
        return from_directory(driver, cache_dir, base_dir or Path.cwd(), driver_type)
    if kind == "libs-archive":
        return from_libs_archive(driver, cache_dir, driver_type)
    if kind == "debian-package":
        return from_debian_package(driver, cache_dir, apt, driver_type)
    raise BuildError(f"driver {driver.version}: unknown source kind {kind!r}", hint=_SOURCE_HINT)


def from_directory(driver: DriverVersion, cache_dir: Path, base_dir: Path,
                   driver_type: str = EBPF.name) -> PreparedSource:
    folder = (base_dir / driver.source.path).resolve()
    if not folder.is_dir():
        raise BuildError(f"driver {driver.version}: source folder {folder} does not exist",
                         hint=_SOURCE_HINT)
    return _prepare(driver, "directory", str(folder),
                    find_driver_dir(folder, driver_type=driver_type), cache_dir,
                    commit="", label=f"the folder {folder.name}", driver_type=driver_type)


def from_libs_archive(driver: DriverVersion, cache_dir: Path,
                      driver_type: str = EBPF.name) -> PreparedSource:
    url = libs_archive_url(driver.source.url, driver.ref)
    archive = download(url, cache_dir / "downloads" / _archive_name(url),
                       limit=limits.DRIVER_SOURCE)
    archive_sha = sha256_file(archive)
    origin_key = _origin_key(f"{url}#{archive_sha}", driver_type)
    cached = _cached_by_origin(cache_dir, "libs-archive", driver, origin_key, driver_type)
    if cached:
        return cached
    with tempfile.TemporaryDirectory(prefix="libs-", dir=_scratch(cache_dir)) as tmp:
        extract(archive, Path(tmp))
        found = find_driver_dir(Path(tmp), origin=url, driver_type=driver_type)
        commit = archive_commit(archive)
        label = f"falcosecurity/libs {driver.ref} source archive" + (
            f" (commit {commit[:12]})" if commit and commit != driver.ref else "")
        prepared = _prepare(driver, "libs-archive", url, found, cache_dir, commit=commit,
                            label=label, driver_type=driver_type)
    _remember_origin(cache_dir, prepared, origin_key)
    return prepared


def from_debian_package(driver: DriverVersion, cache_dir: Path,
                        apt: AptArchive | None = None,
                        driver_type: str = EBPF.name) -> PreparedSource:
    source = driver.source
    if apt is None or source.suite:
        apt = AptArchive(cache_dir / "apt", suites=(source.suite,) if source.suite else ())
        if not apt.index_files():
            apt.update()
    package = apt.package(source.package, source.version)
    origin = package.url.rsplit("/", 1)[-1]  # the .deb file name: name, version, arch
    version = origin.split("_")[1] if origin.count("_") >= 2 else source.version
    label = f"debian {source.package} {version}" + (f" from {source.suite}" if source.suite
                                                     else "")
    origin_key = _origin_key(f"{package.url}#{package.sha256}", driver_type)
    cached = _cached_by_origin(cache_dir, "debian-package", driver, origin_key,
                              driver_type)
    if cached:
        return cached
    deb = download(package.url, cache_dir / "downloads" / _archive_name(package.url),
                   limit=limits.DRIVER_SOURCE, sha256=package.sha256, size=package.size)
    with tempfile.TemporaryDirectory(prefix="deb-", dir=_scratch(cache_dir)) as tmp:
        extract(deb, Path(tmp), kind=package.kind)
        found = find_driver_dir(Path(tmp) / "usr" / "src", origin=origin,
                                driver_type=driver_type)
        prepared = _prepare(driver, "debian-package", origin, found, cache_dir, commit="",
                            label=label, driver_type=driver_type)
    _remember_origin(cache_dir, prepared, origin_key)
    return prepared


def _origin_key(origin: str, driver_type: str) -> str:
    """What a prepared tree is cached by: its archive, and the type it was prepared for
    (the eBPF probe's key is the archive's alone, as before the module existed)."""
    return origin if driver_type == EBPF.name else f"{origin}#{driver_type}"


def libs_archive_url(template: str, ref: str) -> str:
    if "{ref}" not in template:
        raise BuildError(f"libs-archive URL {template!r} has no {{ref}} placeholder",
                         hint=_SOURCE_HINT)
    return template.replace("{ref}", ref)


def find_driver_dir(root: Path, *, origin: str = "", driver_type: str = EBPF.name) -> Path:
    """The one folder under `root` (a few levels deep) that holds the driver source of that
    type: bpf/probe.c and bpf/Makefile (eBPF); main.c with Makefile.in and
    driver_config.h.in, or a DKMS tree's Makefile and driver_config.h (kmod)."""
    if driver_type == EBPF.name and (root / "probe.c").is_file() and root.name == "bpf":
        return root.parent
    is_source = _is_driver_dir if driver_type == EBPF.name else _is_kmod_dir
    found = sorted(d for d in _dirs(root, _SEARCH_DEPTH) if is_source(d))
    where = origin or str(root)
    if not found:
        what = ("bpf/probe.c with bpf/Makefile" if driver_type == EBPF.name else
                f"{KMOD_SOURCE} with {MAKEFILE_TEMPLATE} and {TEMPLATE_FILE}, or a DKMS tree")
        raise BuildError(f"{where}: no Falco {BY_NAME[driver_type].noun} source ({what})",
                         hint="point the source at a libs checkout or its driver/ folder"
                              + (", or driver/bpf" if driver_type == EBPF.name else ""))
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


def _is_kmod_dir(folder: Path) -> bool:
    """libs' driver/ (main.c and the two templates), or a DKMS tree made from it."""
    if not (folder / KMOD_SOURCE).is_file():
        return False
    templates = (folder / MAKEFILE_TEMPLATE).is_file() and (folder / TEMPLATE_FILE).is_file()
    made = (folder / MAKEFILE).is_file() and (folder / CONFIG_FILE).is_file()
    return templates or made


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


def render_config(template: str, values: Mapping[str, str], where: str, *,
                  undefined_empty: bool = False) -> str:
    """cmake's configure_file: replace ${VAR} and @VAR@.

    cmake turns an undefined variable into "" (configure/Makefile.inc.in relies on
    it: `@@NEWLINE@@` becomes `@@`); for driver_config.h.in an unknown variable
    means a libs version we do not know, so it is an error unless `undefined_empty`.
    """
    if undefined_empty:
        return _TEMPLATE_VAR.sub(lambda m: values.get(m.group(1) or m.group(2), ""), template)
    unknown = sorted({a or b for a, b in _TEMPLATE_VAR.findall(template)} - set(values))
    if unknown:
        raise BuildError(f"{where}: no value for template variable(s) {', '.join(unknown)}",
                         hint="this libs version needs a newer falco-probes; please report it")
    return _TEMPLATE_VAR.sub(lambda m: values[m.group(1) or m.group(2)], template)


def detect_layout(driver_dir: Path, origin: str) -> str:
    """LAYOUT_PARENT or LAYOUT_FLAT, from how probe.c includes driver_config.h."""
    probe = (driver_dir / "bpf" / "probe.c").read_text(errors="replace")
    if '"../driver_config.h"' in probe:
        return LAYOUT_PARENT
    if '"driver_config.h"' in probe:
        return LAYOUT_FLAT
    raise SourceLayoutError(f"{origin}: bpf/probe.c includes no driver_config.h; not a Falco "
                            "driver source layout falco-probes knows", hint=_SOURCE_HINT)


def _config(found: Path, layout: str) -> Path:
    """Where the tree keeps (or gets) its driver_config.h: a DKMS tree ships the module's
    at its top and the eBPF probe's in bpf/."""
    return found / "bpf" / CONFIG_FILE if layout == LAYOUT_FLAT else found / CONFIG_FILE


def _write_config(found: Path, dest: Path, layout: str, driver: DriverVersion, origin: str,
                  commit: str) -> tuple[str, str]:
    """driver_config.h into `dest`: ("shipped" | "generated", its text)."""
    shipped = _config(found, layout)
    if shipped.is_file():
        text = shipped.read_text(errors="replace")
        version = _VERSION_DEFINE.search(text)
        if version and version.group(1) != driver.version and driver.source.kind != \
                "debian-package":
            raise BuildError(f"{origin}: {CONFIG_FILE} is for driver version "
                             f"{version.group(1)!r}, probes.yaml says {driver.version!r}",
                             hint="fix the version or the source of this driver in probes.yaml")
        kind = "shipped"
    else:
        template = found / TEMPLATE_FILE
        if not template.is_file():
            raise SourceLayoutError(f"{origin}: neither {CONFIG_FILE} nor {TEMPLATE_FILE} in "
                                    "the driver folder", hint=_SOURCE_HINT)
        values = config_values(found, driver.version, commit)
        text = render_config(template.read_text(), values, f"{origin}: {TEMPLATE_FILE}")
        kind = "generated"
    (dest / CONFIG_FILE).write_text(text)
    return kind, text


def declared_versions(config_text: str) -> tuple[str, str]:
    """(API, schema) versions a driver_config.h declares; "" when it has none (before 0.31.1)."""
    found: dict[tuple[str, str], str] = {(k, p): n for k, p, n in _API_DEFINE.findall(config_text)}
    versions = []
    for kind in ("API", "SCHEMA"):
        parts = [found.get((kind, p), "") for p in ("MAJOR", "MINOR", "PATCH")]
        versions.append(".".join(parts) if all(parts) else "")
    return versions[0], versions[1]


def check_api(driver: DriverVersion, api: str, schema: str, origin: str) -> None:
    """A source must declare the API and schema versions of the driver version it builds."""
    expected = DRIVER_API.get(driver.version)
    if expected is None or (api, schema) == expected:
        return
    raise BuildError(f"{origin}: declares API {api or 'none'} and schema {schema or 'none'}, "
                     f"but driver version {driver.version} is API {expected[0]}, schema "
                     f"{expected[1]}: it would not be {driver.version}",
                     hint="point probes.yaml at the source of that driver version")


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
             commit: str, label: str, driver_type: str = EBPF.name) -> PreparedSource:
    if not commit and _HEX_COMMIT.fullmatch(driver.ref):
        commit = driver.ref
    layout = LAYOUT_KMOD if driver_type != EBPF.name else detect_layout(found, origin)
    ref_dir = cache_dir / "sources" / provider / _safe(driver.ref)
    ref_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=ref_dir))
    try:
        dest = staging / "driver"
        if layout == LAYOUT_KMOD:
            config, text = _lay_out_kmod(found, dest, driver, origin, commit)
            build_rel = Path()
        elif layout == LAYOUT_FLAT:
            _copy_flat(found, dest / "bpf")
            config, text = _write_config(found, dest / "bpf", layout, driver, origin, commit)
            build_rel = Path("bpf")
        else:
            _copy_parent(found, dest)
            config, text = _write_config(found, dest, layout, driver, origin, commit)
            build_rel = Path("bpf")
        api, schema = declared_versions(text)
        check_api(driver, api, schema, origin)
        version = _VERSION_DEFINE.search(text)
        libs_version = version.group(1) if version else ""
        makefile = (dest / build_rel / MAKEFILE).read_text(errors="replace")
        digest = tree_digest(dest)
        final = ref_dir / digest
        prepared = PreparedSource(
            driver.version, driver.ref, provider, origin, digest, final / "driver",
            final / "driver" / build_rel, commit, config, layout, api, schema, libs_version,
            layout != LAYOUT_KMOD and bool(_ALWAYS_LEGACY.search(makefile)),
            describe(label, config, libs_version, driver.version), driver_type)
        if not (final / MANIFEST_FILE).is_file():
            _write_manifest(staging / MANIFEST_FILE, prepared)
            _make_read_only(dest)
            # A tree without a manifest is not ours to trust; one with it is as good as ours.
            swap_tree(staging, final,
                      theirs_will_do=lambda there: (there / MANIFEST_FILE).is_file())
    finally:
        if staging.exists():
            remove_tree(staging)
    return prepared


# --- the kernel module's folder -------------------------------------------------

def _lay_out_kmod(found: Path, dest: Path, driver: DriverVersion, origin: str,
                  commit: str) -> tuple[str, str]:
    """The module's flat folder in `dest`, as libs' driver/CMakeLists.txt makes it (or a
    DKMS tree renamed to falco): ("generated" | "shipped", driver_config.h's text)."""
    dest.mkdir(parents=True)
    for entry in sorted(found.iterdir()):
        if entry.is_file() and entry.suffix in (".c", ".h") and entry.name != CONFIG_FILE:
            _copy_file(entry, dest / entry.name)
    template = found / MAKEFILE_TEMPLATE
    if template.is_file():  # a libs driver/ folder: render both templates
        values = {**config_values(found, driver.version, commit), "KBUILD_FLAGS": ""}
        makefile = render_config(template.read_text(), values,
                                 f"{origin}: {MAKEFILE_TEMPLATE}")
        _configure_modules(found / "configure", dest / "configure")
    else:                   # a DKMS tree: made already, with another name
        makefile = rename_dkms_makefile((found / MAKEFILE).read_text(errors="replace"))
        if (found / "configure").is_dir():
            _copy_tree_files(found / "configure", dest / "configure")
    require_falco_module(makefile, origin)
    (dest / MAKEFILE).write_text(makefile)
    config, text = _write_config(found, dest, LAYOUT_KMOD, driver, origin, commit)
    if config == "shipped":
        text = rename_dkms_config(text, origin)
        (dest / CONFIG_FILE).write_text(text)
    return config, text


def rename_dkms_makefile(text: str) -> str:
    """Debian's `scap-y += ...` / `obj-m += scap.o` build falco.ko once renamed."""
    text = re.sub(rf"^{_DKMS_NAME}-y\b", f"{PROBE_NAME}-y", text, flags=re.MULTILINE)
    return re.sub(rf"^(obj-m\s*\+?=\s*){_DKMS_NAME}\.o\b", rf"\g<1>{PROBE_NAME}.o", text,
                  flags=re.MULTILINE)


def rename_dkms_config(text: str, origin: str) -> str:
    """DRIVER_NAME and DRIVER_DEVICE_NAME "scap" -> "falco": Falco opens /dev/falco<cpu>
    and /sys/module/falco; a tree already named falco is left as it is."""
    for key in ("DRIVER_NAME", "DRIVER_DEVICE_NAME"):
        pattern = re.compile(rf'^(#define\s+{key}\s+)"([^"]*)"', re.MULTILINE)
        found = pattern.search(text)
        if found is None:
            raise SourceLayoutError(f"{origin}: {CONFIG_FILE} defines no {key}",
                                    hint=_SOURCE_HINT)
        text = pattern.sub(rf'\g<1>"{PROBE_NAME}"', text, count=1)
    return text


def require_falco_module(makefile: str, origin: str) -> None:
    """The Makefile must build falco.ko and nothing else: scap.ko would not be Falco's."""
    modules = [word.removesuffix(".o") for line in _KMOD_OBJECTS.findall(makefile)
               for word in line.split()]
    if modules != [PROBE_NAME]:
        built = ", ".join(f"{m}.ko" for m in modules) or "no module"
        raise SourceLayoutError(f"{origin}: its {MAKEFILE} builds {built}, not {PROBE_NAME}.ko",
                                hint="the kernel module's source must be a libs driver/ folder "
                                     "or a Debian DKMS tree of it")


def describe(label: str, config: str, libs_version: str, driver_version: str) -> str:
    """One line for the catalog: what was compiled, never more upstream than it is."""
    if config == "shipped" and libs_version and libs_version != driver_version:
        return f"{label} (libs {libs_version}, Debian patches), built as {driver_version}"
    return label if config == "generated" else f"{label} (its own driver_config.h)"


def _copy_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _copy_parent(src: Path, dest: Path) -> None:
    """Top-level regular files (headers probe.c includes, API_VERSION ...) plus bpf/."""
    dest.mkdir(parents=True)
    for entry in sorted(src.iterdir()):
        if entry.is_file() and entry.name != CONFIG_FILE:
            _copy_file(entry, dest / entry.name)
    for folder, dirs, names in os.walk(src / "bpf"):
        dirs.sort()
        rel = Path(folder).relative_to(src)
        (dest / rel).mkdir(exist_ok=True)
        for name in names:
            if (Path(folder) / name).is_file():
                _copy_file(Path(folder) / name, dest / rel / name)


def _copy_flat(src: Path, dest: Path) -> None:
    """The one folder cmake makes from a flat-layout source (driver/bpf/CMakeLists.txt):
    the bpf sources, every driver/*.h, and the configure modules. A tree whose bpf/
    already holds driver_config.h (a DKMS tree) was made that way: copied as it is."""
    bpf = src / "bpf"
    if (bpf / CONFIG_FILE).is_file():
        _copy_tree_files(bpf, dest, skip=(CONFIG_FILE,))
        return
    dest.mkdir(parents=True)
    for entry in sorted(bpf.iterdir()):
        if entry.is_file() and entry.name not in _NOT_COPIED:
            _copy_file(entry, dest / entry.name)
    for header in sorted(src.glob("*.h")):
        if header.is_file() and header.name != CONFIG_FILE:
            _copy_file(header, dest / header.name)
    _configure_modules(bpf / "configure", dest / "configure")


def _configure_modules(configure: Path, dest: Path) -> None:
    """configure/<MODULE>/: test.c, the shared Makefile and build.sh, Makefile.inc rendered."""
    if not configure.is_dir():
        return
    template = (configure / "Makefile.inc.in").read_text()
    for module in sorted(p for p in configure.iterdir() if p.is_dir()):
        out = dest / module.name
        _copy_file(module / "test.c", out / "test.c")
        _copy_file(configure / "Makefile", out / "Makefile")
        _copy_file(configure / "build.sh", out / "build.sh")
        (out / "Makefile.inc").write_text(render_config(
            template, {"CONFIGURE_MODULE": module.name}, f"{configure}/Makefile.inc.in",
            undefined_empty=True))


def _copy_tree_files(src: Path, dest: Path, skip: tuple[str, ...] = ()) -> None:
    for folder, dirs, names in os.walk(src):
        dirs.sort()
        rel = Path(folder).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in names:
            if (Path(folder) / name).is_file() and not (rel == Path(".") and name in skip):
                _copy_file(Path(folder) / name, dest / rel / name)


def _make_read_only(root: Path) -> None:
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            os.chmod(Path(folder) / name, 0o444)
        os.chmod(folder, 0o555)  # noqa: S103 - read and list for all, write for none


def _write_manifest(path: Path, prepared: PreparedSource) -> None:
    data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(prepared).items()}
    data["driver_dir"] = "driver"
    data["bpf_dir"] = Path("driver", prepared.bpf_dir.relative_to(prepared.driver_dir)).as_posix()
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _load_manifest(path: Path) -> PreparedSource | None:
    try:
        data = json.loads(path.read_text())
        data["driver_dir"] = path.parent / data["driver_dir"]
        data["bpf_dir"] = path.parent / data["bpf_dir"]
        prepared = PreparedSource(**data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return prepared if prepared.layout else None  # older caches: prepare again


def _origin_file(cache_dir: Path, provider: str, ref: str, origin_key: str) -> Path:
    key = hashlib.sha256(origin_key.encode()).hexdigest()[:32]
    return cache_dir / "sources" / provider / _safe(ref) / f"origin-{key}.txt"


def _cached_by_origin(cache_dir: Path, provider: str, driver: DriverVersion,
                      origin_key: str, driver_type: str) -> PreparedSource | None:
    """A tree prepared earlier from the very same archive bytes, if it is still whole."""
    pointer = _origin_file(cache_dir, provider, driver.ref, origin_key)
    try:
        digest = pointer.read_text().strip()
    except OSError:
        return None
    prepared = _load_manifest(pointer.parent / digest / MANIFEST_FILE)
    if prepared is None or prepared.driver_version != driver.version:
        return None
    return prepared if prepared.driver_type == driver_type else None


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
