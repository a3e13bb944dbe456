"""Debian and Ubuntu kernels from an apt archive, read by apt itself.

`AptArchive` runs `apt-get update` with a private configuration and state
folder (its own sources, keyrings, lists and cache; none of the host's
apt.conf.d is read, so no host hook runs and nothing on the host changes).
apt checks the archive's signed Release files and the index hashes; we then
read the verified Packages indices with python-debian and turn every real
kernel headers package (`linux-headers-<abi>-<flavor>`) into a Kernel whose
header packages are the ones its Depends name: its `-common` package and its
`linux-kbuild-X.Y`, each with the archive's URL, sha256 and size.

By default the archive is whatever the machine's apt is configured with
(its sources.list and sources.list.d, found through `apt-config`); another
sources file (one-line or deb822) and keyring can be given instead. Naming
`suites` reads those suites (bullseye, bookworm, trixie, sid ...) from the
same mirror the machine uses (or `mirror`), whatever release the machine
itself runs, so results do not depend on the host's Debian.

arm64 kernels are built on amd64 machines: their headers come from the
arm64 index, their `linux-kbuild` (host programs: fixdep, modpost) from the
build machine's own architecture, at the same version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import platform
import posixpath
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian import deb822
from debian.debian_support import Version

from builder.core.errors import InputError, Problem, StoreError
from builder.core.records import (
    ARCH_ALIASES,
    DEB_ARCH,
    SUITE_RE,
    HeaderPackage,
    HostFacts,
    Kernel,
    check_kernel_release,
    check_url,
    release_numbers,
)
from builder.core.schema import short

log = logging.getLogger(__name__)  # the command line shows it (ui.show_library_messages)

# Debian's name for any spelling of an architecture (amd64/x86_64, arm64/aarch64).
DEB_ARCHES = {alias: DEB_ARCH[uname_m] for alias, uname_m in ARCH_ALIASES.items()}
_SOURCE_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.(list|sources)")  # what apt reads
_KEYRING_NAME = re.compile(r"[A-Za-z0-9_.-]+\.(gpg|asc)")
_ONE_LINE = re.compile(
    r"(deb|deb-src)\s+(\[[^\]]*\]\s+)?[A-Za-z][A-Za-z0-9+.-]*:\S+\s+\S+(\s+\S+)*")
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]*")
_SUITE = re.compile(SUITE_RE)
_URI = re.compile(r"(https?|file):/\S+")
_APT_TIMEOUT = 900


# --- what `uname -v` says on Debian and Ubuntu (also used for kernel-crawler lists)


def debian_uname_v(build: str, flavor: str, package_version: str, uname_r: str) -> str:
    """`#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1`: the loader reads the version after Debian."""
    if flavor.startswith("rt-"):
        preempt = " PREEMPT_RT"
    elif (release_numbers(uname_r) or (0, 0, 0)) >= (5, 12, 0):
        preempt = " PREEMPT_DYNAMIC"
    else:
        preempt = ""
    return f"#{build} SMP{preempt} Debian {package_version}"


def ubuntu_uname_v(kernel_version: str) -> str:
    """`#95-Ubuntu SMP`, `#46~18.04.1-Ubuntu SMP`: the part after # is the upload number."""
    return f"#{kernel_version}-Ubuntu SMP"


# --- sources and keyrings -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourcesFile:
    name: str      # file name in our private sources.list.d (its extension tells apt the format)
    text: str
    origin: str    # the file it was read from, for messages


def _sources_format(path: Path, text: str) -> str:
    if path.suffix in (".list", ".sources"):
        return path.suffix[1:]
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return "sources" if stripped.lower().startswith("types:") else "list"
    return "list"


def _one_line_problems(text: str, origin: str) -> list[Problem]:
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if stripped and not _ONE_LINE.fullmatch(stripped):
            problems.append(Problem(origin, f"{short(stripped)} is not a sources.list line "
                                    "(deb URI SUITE [COMPONENT...])", line=number))
    return problems


def _deb822_problems(text: str, origin: str) -> list[Problem]:
    problems = []
    for number, paragraph in enumerate(deb822.Deb822.iter_paragraphs(text.splitlines()), 1):
        for key in ("Types", "URIs", "Suites"):
            if not paragraph.get(key, "").strip():
                problems.append(Problem(origin, f"missing {key!r}", record=f"entry {number}",
                                        field=key))
    return problems


def _has_deb_entries(text: str, kind: str) -> bool:
    if kind == "list":
        return any(line.split("#", 1)[0].split()[:1] == ["deb"] for line in text.splitlines())
    return any("deb" in p.get("Types", "").split()
               for p in deb822.Deb822.iter_paragraphs(text.splitlines()))


def read_sources_file(path: Path) -> SourcesFile:
    """A sources file (one-line or deb822) checked before apt sees it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such sources file",
                         hint="give a sources.list-style file or a deb822 .sources file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the sources file: {exc}") from None
    kind = _sources_format(path, text)
    problems = (_one_line_problems if kind == "list" else _deb822_problems)(text, str(path))
    if problems:
        first = problems[0]
        raise InputError(str(first) + (f" (and {len(problems) - 1} more)" if problems[1:] else ""),
                         hint="one-line: 'deb URI SUITE COMPONENT...'; deb822: Types/URIs/Suites/"
                              "Components paragraphs (see sources.list(5))")
    if not _has_deb_entries(text, kind):
        raise InputError(f"{path}: no 'deb' entries (binary package archives) in it",
                         hint="kernels come from binary archives: 'deb URI SUITE COMPONENT'")
    return SourcesFile(f"custom.{kind}", text, str(path))


# --- suites from the machine's mirror --------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One `deb` entry of a sources file: where an archive is and how it is signed."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""


def archive_entries(source: SourcesFile) -> list[ArchiveEntry]:
    """The `deb` entries of a one-line or deb822 sources file."""
    if source.name.endswith(".sources"):
        out = []
        for paragraph in deb822.Deb822.iter_paragraphs(source.text.splitlines()):
            if "deb" not in paragraph.get("Types", "").split() or \
                    paragraph.get("Enabled", "yes").strip().lower() == "no":
                continue
            for uri in paragraph.get("URIs", "").split():
                out.append(ArchiveEntry(uri, tuple(paragraph.get("Suites", "").split()),
                                        tuple(paragraph.get("Components", "").split()),
                                        paragraph.get("Signed-By", "").strip()))
        return out
    out = []
    for line in source.text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        options = ""
        if len(words) > 1 and words[1].startswith("["):
            end = next(i for i, w in enumerate(words) if w.endswith("]"))
            options, words = " ".join(words[1:end + 1]), [words[0], *words[end + 1:]]
        signed = re.search(r"signed-by=(\S+?)\]?(\s|$)", options)
        if len(words) >= 3:
            out.append(ArchiveEntry(words[1], (words[2],), tuple(words[3:]),
                                    signed.group(1) if signed else ""))
    return out


def suite_sources(host: list[SourcesFile], suites: tuple[str, ...],
                  mirror: str = "") -> SourcesFile:
    """A deb822 sources file for `suites`, on the mirror the machine's apt already uses.

    A suite the host already lists keeps its own entry's URI and keyring, a
    `-security` suite goes to the host's security archive, and any other suite is
    read from the host's main archive, or from `mirror` when given.
    """
    for suite in suites:
        if not _SUITE.fullmatch(suite):
            raise InputError(f"{suite!r} is not a Debian suite name like bookworm or sid")
    if mirror and not _URI.fullmatch(mirror):
        raise InputError(f"mirror {mirror!r} is not an http(s) or file URI")
    entries = [e for source in host for e in archive_entries(source)]
    main = next((e for e in entries if any(
        not s.endswith(("-security", "-updates", "-backports")) for s in e.suites)), None)
    if main is None and not mirror:
        raise InputError("apt on this machine lists no Debian archive to read suites from",
                         hint="give the archive's URI (probes.yaml `mirror:` or --mirror)")
    security = next((e for e in entries if any(s.endswith("-security") for s in e.suites)), None)
    paragraphs = []
    for suite in suites:
        own = next((e for e in entries if suite in e.suites), None)
        if own is None and suite.endswith("-security"):
            # bookworm-security lives where the host's security suite does, or, for a
            # machine that lists none (a debootstrap root), beside its archive as Debian
            # lays mirrors out: <...>/debian-security next to <...>/debian
            own = security or _security_beside(mirror or (main.uri if main else ""), main)
        entry = own or main
        uri = mirror if mirror and own is None else (entry.uri if entry else mirror)
        # Signatures and hashes are checked as always; the Release file's Valid-Until is
        # not, because a mirror frozen in time (a snapshot) serves testing and sid with
        # an expired one, and we pin what we build from by version and sha256 anyway.
        lines = ["Types: deb", f"URIs: {uri}", f"Suites: {suite}", "Components: main",
                 "Check-Valid-Until: no"]
        if entry is not None and entry.signed_by and (own is not None or not mirror):
            lines.append(f"Signed-By: {entry.signed_by}")
        paragraphs.append("\n".join(lines))
    origin = f"the suites {', '.join(suites)} of " + (mirror or (main.uri if main else ""))
    return SourcesFile("suites.sources", "\n\n".join(paragraphs) + "\n", origin)


def _security_beside(uri: str, main: ArchiveEntry | None) -> ArchiveEntry | None:
    """The security archive next to a Debian archive URI (`.../debian-security`)."""
    base = uri.rstrip("/")
    if not base.endswith("/debian"):
        return None
    return ArchiveEntry(base + "-security", (), ("main",), main.signed_by if main else "")


def build_machine_arch() -> str:
    """The Debian architecture of this machine (kbuild's host programs must run here)."""
    return DEB_ARCHES.get(platform.machine(), platform.machine())


def _apt_config_paths() -> dict[str, Path]:
    """Where the host's apt keeps its sources and keyrings, as apt-config says."""
    names = {"SL": "Dir::Etc::SourceList/f", "SP": "Dir::Etc::SourceParts/d",
             "TR": "Dir::Etc::Trusted/f", "TP": "Dir::Etc::TrustedParts/d"}
    args = [part for key, option in names.items() for part in (key, option)]
    proc = _run_tool(["apt-config", "shell", *args], env=_c_locale(os.environ))
    found: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        words = shlex.split(value)
        if key in names and words:
            found[key] = Path(words[0])
    return found


def _files_in(folder: Path | None, pattern: re.Pattern[str]) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file())


def host_sources(paths: dict[str, Path]) -> list[SourcesFile]:
    """The machine's own sources: sources.list and the sources.list.d files apt reads."""
    files = []
    main = paths.get("SL")
    if main is not None and main.is_file():
        files.append(main)
    files += _files_in(paths.get("SP"), _SOURCE_FILE_NAME)
    return [SourcesFile(f"{i:02d}-{p.name}", p.read_text(encoding="utf-8"), str(p))
            for i, p in enumerate(files)]


def host_keyrings(paths: dict[str, Path]) -> list[Path]:
    main = paths.get("TR")
    found = [main] if main is not None and main.is_file() else []
    return found + _files_in(paths.get("TP"), _KEYRING_NAME)


def _keyring_name(path: Path, data: bytes) -> str:
    armored = data.lstrip().startswith(b"-----BEGIN PGP")
    return f"{path.stem}.{'asc' if armored else 'gpg'}"


# --- apt itself ---------------------------------------------------------------


def _c_locale(env: Any) -> dict[str, str]:
    return {**env, "LC_ALL": "C.UTF-8", "LANGUAGE": ""}


def _run_tool(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=_APT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise InputError(f"{argv[0]} is not installed; the apt kernel source needs apt",
                         hint="use a Debian or Ubuntu machine, or a kernel-crawler list") from None
    except subprocess.TimeoutExpired:
        raise StoreError(f"{' '.join(argv[:2])} did not finish in {_APT_TIMEOUT} s",
                         hint="check the network and the archive") from None


def _quoted(path: Path) -> str:
    text = str(path)
    if any(c in text for c in '"\n\\{};'):
        raise InputError(f"{text!r}: apt cannot use a folder whose name has quotes, "
                         "backslashes, braces or semicolons", hint="choose another --cache")
    return f'"{text}"'


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One downloaded Packages index and the Release facts apt verified for it."""

    path: Path
    repo_uri: str     # archive base; a package's URL is this + its Filename
    origin: str       # Debian, Ubuntu ...
    version: str      # Release Version: 12.12, 22.04
    codename: str
    arch: str = ""    # the Packages file's architecture (amd64, arm64)


@dataclass(frozen=True, slots=True)
class PackageRecord:
    name: str
    version: Version
    source_version: str
    filename: str
    sha256: str
    size: int
    depends: tuple[tuple[tuple[str, str, str], ...], ...]  # groups of (name, op, version)
    index: IndexFile
    arch: str = ""            # amd64, arm64 or all


def _is_linux_header_or_kbuild(name: str) -> bool:
    return name.startswith("linux-") and ("headers" in name or name.startswith("linux-kbuild-"))


class AptArchive:
    """A Debian/Ubuntu archive read through a private apt configuration."""

    def __init__(self, cache_dir: Path, sources: Path | None = None,
                 keyring: Path | None = None, arch: str = "amd64",
                 suites: tuple[str, ...] = (), mirror: str = "") -> None:
        if arch not in DEB_ARCHES:
            raise InputError(f"unknown architecture {arch!r}",
                             hint="use amd64/x86_64 or arm64/aarch64")
        self.arch = DEB_ARCHES[arch]
        # kbuild's host programs come from the build machine's architecture.
        self.build_arch = build_machine_arch()
        host = _apt_config_paths() if sources is None or keyring is None else {}
        self.sources = [read_sources_file(sources)] if sources else host_sources(host)
        if not self.sources:
            raise InputError("apt on this machine has no sources configured",
                             hint="give a sources file with --sources or apt:FILE")
        if suites:
            self.sources = [suite_sources(self.sources, tuple(suites), mirror)]
        self.keyrings = [self._check_keyring(keyring)] if keyring else host_keyrings(host)
        self.root = Path(cache_dir).expanduser().resolve() / f"{self.arch}-{self._digest()}"
        self.problems: list[Problem] = []
        self._records: dict[str, list[PackageRecord]] | None = None
        self._indices: list[IndexFile] | None = None

    @staticmethod
    def _check_keyring(path: Path) -> Path:
        if not path.is_file():
            raise InputError(f"{path}: no such keyring file",
                             hint="give the archive's OpenPGP keyring (.gpg or .asc)")
        return path

    @property
    def arches(self) -> tuple[str, ...]:
        """Indices to read: the kernels' architecture, and the build machine's for kbuild."""
        return tuple(dict.fromkeys((self.arch, self.build_arch)))

    def _digest(self) -> str:
        """The state folder is per configuration, so lists stay valid across runs."""
        digest = hashlib.sha256(" ".join(self.arches).encode())
        for source in self.sources:
            digest.update(b"\0" + source.name.encode() + b"\0" + source.text.encode())
        for keyring in self.keyrings:
            digest.update(b"\0" + keyring.read_bytes())
        return digest.hexdigest()[:16]

    # -- private configuration --

    def _config_text(self) -> str:
        root = self.root
        lines = [
            f"Dir::State {_quoted(root / 'state')};",
            'Dir::State::Lists "lists/";',
            f"Dir::State::status {_quoted(root / 'state' / 'status')};",
            f"Dir::Cache {_quoted(root / 'cache')};",
            'Dir::Cache::pkgcache "pkgcache.bin";',  # private; makes later apt calls fast
            'Dir::Cache::srcpkgcache "";',
            f"Dir::Etc {_quoted(root / 'etc')};",
            'Dir::Etc::Main "/dev/null";',
            'Dir::Etc::Parts "apt.conf.d/";',
            'Dir::Etc::SourceList "sources.list";',
            'Dir::Etc::SourceParts "sources.list.d/";',
            'Dir::Etc::Trusted "trusted.gpg";',
            'Dir::Etc::TrustedParts "trusted.gpg.d/";',
            'Dir::Etc::Preferences "preferences";',
            'Dir::Etc::PreferencesParts "preferences.d/";',
            f"Dir::Log {_quoted(root / 'log')};",
            f'APT::Architecture "{self.arch}";',
            "APT::Architectures { " + " ".join(f'"{a}";' for a in self.arches) + " };",
            'Acquire::Languages "none";',
            'Acquire::GzipIndexes "false";',
        ]
        if os.geteuid() == 0:
            # Our folders live in the caller's home, which apt's _apt user cannot enter.
            lines.append('APT::Sandbox::User "root";')
        return "\n".join(lines) + "\n"

    def _prepare(self) -> dict[str, str]:
        etc = self.root / "etc"
        for folder in ("apt.conf.d", "sources.list.d", "trusted.gpg.d", "preferences.d"):
            shutil.rmtree(etc / folder, ignore_errors=True)
            (etc / folder).mkdir(parents=True)
        for folder in ("state/lists/partial", "cache/archives/partial", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        for source in self.sources:
            (etc / "sources.list.d" / source.name).write_text(source.text, encoding="utf-8")
        for keyring in self.keyrings:
            data = keyring.read_bytes()
            (etc / "trusted.gpg.d" / _keyring_name(keyring, data)).write_bytes(data)
        config = self.root / "apt.conf"
        config.write_text(self._config_text(), encoding="utf-8")
        return _c_locale({**os.environ, "APT_CONFIG": str(config)})

    def _apt(self, *args: str) -> subprocess.CompletedProcess[str]:
        with self._locked():
            return _run_tool(["apt-get", *args], env=self._prepare())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One apt call at a time on this state folder, across threads and processes: each
        call rewrites the private configuration (_prepare), and two `apt-get update` on one
        lists folder collide. A lock file beside the folder, held with flock (released
        when the process dies)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with open(self.root.parent / f"{self.root.name}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _origin_of(self, text: str) -> str:
        """apt's messages name our private copies; say which file the user gave."""
        for source in self.sources:
            text = text.replace(str(self.root / "etc" / "sources.list.d" / source.name),
                                source.origin)
        return text

    # -- public --

    def update(self) -> None:
        """Download and verify the archive's indices into the private state folder."""
        log.info(f"apt: updating the {self.arch} package indices of {len(self.sources)} sources "
             f"file(s) in {self.root}")
        proc = self._apt("update", "-q")
        said = [line for line in (proc.stdout + proc.stderr).splitlines()
                if line.startswith(("E:", "W:", "Err:"))]
        # apt exits 0 when an index could not be fetched (it keeps old ones); we
        # would list stale or no kernels, so that is an error too.
        errors = [line for line in said if line.startswith(("E:", "Err:", "W: Failed to fetch"))]
        if proc.returncode != 0 or errors:
            self._raise_update_error(errors or [proc.stderr.strip() or "apt-get update failed"])
        fetched = [line for line in proc.stdout.splitlines() if line.startswith("Fetched")]
        for warning in said:
            log.info(f"apt: {self._origin_of(warning)}")
        log.info(f"apt: indices up to date{' (' + fetched[-1] + ')' if fetched else ''}")
        self._records = self._indices = None

    def _raise_update_error(self, errors: list[str]) -> None:
        message = self._origin_of("; ".join(errors[:6]))
        if any(w in message for w in ("Malformed", "is not known on line", "sources could not")):
            raise InputError(f"apt could not read the sources: {message}",
                             hint="see sources.list(5) for both formats")
        signature = any(w in message for w in ("NO_PUBKEY", "not signed", "signature", "GPG"))
        raise StoreError(f"apt could not update the archive indices: {message}",
                         hint="give the archive's keyring with --keyring (or Signed-By)"
                         if signature else "check the network and the sources")

    def index_files(self) -> list[IndexFile]:
        """The Packages indices apt has downloaded and verified, in sources order."""
        if self._indices is None:
            self._indices = self._read_index_targets()
        return self._indices

    def _read_index_targets(self) -> list[IndexFile]:
        proc = self._apt("indextargets", "Created-By: Packages")
        if proc.returncode != 0:
            raise StoreError(f"apt-get indextargets failed: {proc.stderr.strip()}")
        out = []
        for target in deb822.Deb822.iter_paragraphs(proc.stdout.splitlines()):
            path = Path(target.get("Filename", ""))
            if target.get("Trusted") == "yes" and path.is_file():
                out.append(IndexFile(path, target.get("Repo-URI", ""), target.get("Origin", ""),
                                     target.get("Version", ""), target.get("Codename", ""),
                                     target.get("Architecture", "")))
        return out

    def kernels(self) -> list[Kernel]:
        """One Kernel per real `linux-headers-<abi>-<flavor>` package (and version)."""
        records = self._linux_records()
        kernels = []
        for name in sorted(records):
            if not name.startswith("linux-headers-"):
                continue
            for record in records[name]:
                if record.arch != self.arch:
                    continue  # the build machine's own headers, read for kbuild only
                kernel = self._kernel(record, records)
                if kernel is not None:
                    kernels.append(kernel)
        return sorted(kernels, key=lambda k: (k.target, k.flavor, Version(k.package_version)))

    def package(self, name: str, version: str = "") -> HeaderPackage:
        """The newest version (or exactly `version`) of a binary package, with its URL,
        sha256 and size."""
        if not _PACKAGE_NAME.fullmatch(name):
            raise InputError(f"{name!r} is not a Debian package name")
        found = [r for r in self._scan(lambda candidate: candidate == name).get(name, [])
                 if r.arch in (self.arch, "all")]
        if not found:
            wanted = f"{name!r} version {version}" if version else repr(name)
            raise InputError(f"package {wanted} is not in the archive ({self.arch})",
                             hint="check the name and the sources (--sources, suites)")
        if version:
            exact = [r for r in found if str(r.version) == version]
            if not exact:
                have = ", ".join(sorted({str(r.version) for r in found}))
                raise InputError(f"package {name!r} has no version {version!r} in "
                                 f"{self._origin_of(self.sources[0].origin)} (it has: {have})",
                                 hint="check the suite and version in probes.yaml")
            found = exact
        best = max(found, key=lambda r: r.version)
        header = self._header(best)
        if isinstance(header, str):
            raise StoreError(f"{name} {best.version}: {header}")
        return header

    def newest(self, wanted: Callable[[str], bool]) -> dict[str, HeaderPackage]:
        """The newest version of every binary package `wanted` accepts (of this architecture
        or `all`), with its URL, sha256 and size, read in one pass over the indices."""
        out = {}
        for name, records in sorted(self._scan(wanted).items()):
            fitting = [r for r in records if r.arch in (self.arch, "all")]
            if not fitting:
                continue  # the build machine's architecture only
            header = self._header(max(fitting, key=lambda r: r.version))
            if isinstance(header, str):
                raise StoreError(f"{name}: {header}")
            out[name] = header
        return out

    # -- reading the indices --

    def _linux_records(self) -> dict[str, list[PackageRecord]]:
        if self._records is None:
            if not self.index_files():
                self.update()
            self._records = self._scan(_is_linux_header_or_kbuild)
        return self._records

    def _scan(self, wanted: Callable[[str], bool]) -> dict[str, list[PackageRecord]]:
        """Records of the packages `wanted` accepts; one per (name, version)."""
        out: dict[str, dict[str, PackageRecord]] = {}
        indices = self.index_files()
        if not indices:
            raise StoreError(f"apt has no {self.arch} package indices for these sources",
                             hint="check that the archive carries this architecture")
        for index in indices:
            for paragraph in _paragraphs(index.path, wanted):
                record = _record(paragraph, index)
                if record is not None:
                    out.setdefault(record.name, {}).setdefault(
                        f"{record.version} {record.arch}", record)
        return {name: list(versions.values()) for name, versions in out.items()}

    def _kernel(self, record: PackageRecord,
                records: dict[str, list[PackageRecord]]) -> Kernel | None:
        common = _common_dependency(record)
        if common is None:
            return None  # a meta or -common package, not a kernel's headers
        abi, relation = common
        deps = [relation] + [g[0] for g in record.depends if g[0][0].startswith("linux-kbuild-")]
        headers = [self._header(record)]
        for dep_name, op, version in deps:
            # kbuild runs here: its programs must be the build machine's architecture
            arch = self.build_arch if dep_name.startswith("linux-kbuild-") else self.arch
            chosen = _best([r for r in records.get(dep_name, []) if r.arch in (arch, "all")],
                           op, version)
            if chosen is None:
                return self._problem(record, f"depends on {dep_name} {op} {version}".rstrip()
                                     + ", which is not in the archive")
            headers.append(self._header(chosen))
        bad = [h for h in headers if isinstance(h, str)]
        if bad:
            return self._problem(record, str(bad[0]))
        flavor = record.name.removeprefix(f"linux-headers-{abi}-")
        uname_r = f"{abi}-{flavor}"
        wrong = check_kernel_release(uname_r)
        if wrong:
            return self._problem(record, wrong)
        ubuntu = record.index.origin.lower() == "ubuntu"
        host, target, package_version = (_ubuntu_host if ubuntu else _debian_host)(
            record, abi, flavor, ARCH_ALIASES[self.arch])
        return Kernel(target=target, host=host,
                      headers=tuple(h for h in headers if isinstance(h, HeaderPackage)),
                      source="apt", flavor=flavor, package_version=package_version)

    def _header(self, record: PackageRecord) -> HeaderPackage | str:
        name = posixpath.basename(record.filename)
        uri = record.index.repo_uri
        if uri.startswith("file:/") and not uri.startswith("file://"):
            uri = "file://" + uri.removeprefix("file:")
        url = uri.rstrip("/") + "/" + record.filename
        wrong = check_url(url)
        if wrong or ".." in record.filename or not name.endswith(".deb"):
            return f"unusable Filename {short(record.filename)} in {record.index.path.name}"
        if not re.fullmatch(r"[0-9a-f]{64}", record.sha256):
            return f"no SHA256 for {record.name} {record.version} in {record.index.path.name}"
        return HeaderPackage(name=name, url=url, sha256=record.sha256, size=record.size,
                             kind="deb")

    def _problem(self, record: PackageRecord, message: str) -> Kernel | None:
        """Note why a headers package is left out; returns no kernel."""
        self.problems.append(Problem(str(record.index.path), message,
                                     record=f"{record.name} {record.version}"))
        return None


_PACKAGE_LINE = re.compile(rb"^Package: *(\S+) *$", re.MULTILINE)


def _paragraphs(path: Path, wanted: Callable[[str], bool]) -> Iterator[str]:
    """Raw paragraphs of a Packages file whose package `wanted` accepts.

    Finding the `Package:` lines in the bytes and parsing only the few
    paragraphs we want keeps a 50 MB index to a fraction of a second.
    """
    data = path.read_bytes()
    for match in _PACKAGE_LINE.finditer(data):
        if wanted(match.group(1).decode("ascii", "replace")):
            end = data.find(b"\n\n", match.start())
            yield data[match.start():end if end >= 0 else len(data)].decode("utf-8", "replace")


def _record(paragraph: str, index: IndexFile) -> PackageRecord | None:
    package = deb822.Packages(paragraph)
    try:
        version = Version(package["Version"])
        size = int(package.get("Size", "0"))
    except (KeyError, ValueError):
        return None
    depends = tuple(
        tuple((alt["name"], *(alt["version"] or ("", ""))) for alt in group)
        for group in package.relations["depends"] or ())
    return PackageRecord(package["Package"], version, str(package.source_version),
                         package.get("Filename", ""), package.get("SHA256", ""), size,
                         depends, index, package.get("Architecture", index.arch))


def _common_dependency(record: PackageRecord) -> tuple[str, tuple[str, str, str]] | None:
    """The ABI and the dependency on the headers shared by all flavors of that ABI.

    Debian: linux-headers-6.1.0-47-amd64 -> linux-headers-6.1.0-47-common(-rt);
    Ubuntu: linux-headers-5.15.0-100-generic -> linux-headers-5.15.0-100,
            linux-headers-5.15.0-1009-aws -> linux-aws-headers-5.15.0-1009.
    Meta packages (linux-headers-amd64) depend on a flavor package instead.
    """
    rest = record.name.removeprefix("linux-headers-")
    for group in record.depends:
        name = group[0][0]
        if not name.startswith("linux-") or "headers-" not in name or name == record.name:
            continue
        abi = re.sub(r"-common(-[a-z0-9]+)?$", "", name.split("headers-", 1)[1])
        if abi[:1].isdigit() and rest.startswith(f"{abi}-") and len(rest) > len(abi) + 1:
            return abi, group[0]
    return None


_RELATIONS: dict[str, Callable[[Version, Version], bool]] = {
    "": lambda a, b: True, "=": lambda a, b: a == b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, ">>": lambda a, b: a > b, "<<": lambda a, b: a < b,
}


def _best(candidates: list[PackageRecord], op: str, version: str) -> PackageRecord | None:
    """The newest candidate satisfying the relation, as apt would install it."""
    check = _RELATIONS.get(op)
    if check is None:
        return None
    fitting = [c for c in candidates if not op or check(c.version, Version(version))]
    return max(fitting, key=lambda c: c.version) if fitting else None


def _debian_host(record: PackageRecord, abi: str, flavor: str,
                 uname_m: str) -> tuple[HostFacts, str, str]:
    version = record.source_version
    uname_r = f"{abi}-{flavor}"
    host = HostFacts(os_id="debian", uname_r=uname_r,
                     uname_v=debian_uname_v("1", flavor, version, uname_r), uname_m=uname_m,
                     version_id=record.index.version.split(".")[0])
    return host, "debian", version


def _ubuntu_host(record: PackageRecord, abi: str, flavor: str,
                 uname_m: str) -> tuple[HostFacts, str, str]:
    version = str(record.version)
    upload = version.removeprefix(f"{abi}.") if version.startswith(f"{abi}.") else version
    host = HostFacts(os_id="ubuntu", uname_r=f"{abi}-{flavor}", uname_v=ubuntu_uname_v(upload),
                     uname_m=uname_m, version_id=record.index.version)
    return host, f"ubuntu-{flavor.split('-')[0]}", version
