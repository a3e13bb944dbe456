"""Load a legacy Falco eBPF probe into the running kernel, as libscap does, and say how it went.

Runs inside the load-test VM (as root, in the probe's own kernel). The steps
follow libscap's `load_bpf_file`: refuse a probe built for another kernel
release, create the maps (max_entries 0 -> the number of configured CPUs),
point each map reference at its map, load every program with its license
and kern_version 0, put the fillers into the tail-call map at their slot
order and attach the others: `raw_tracepoint/` programs to their raw
tracepoints, `tracepoint/` ones (the aarch64 probes of drivers whose raw
tracepoints were x86-only) through a perf tracepoint event, skipping the
x86-only page-fault tracepoints a kernel lacks, as libscap does. Nothing is
filled in the settings map, so the attached programs return at once: the
probe is proven to load and attach, not to capture (see `events` for that).

Programs load with log_level 4 (statistics only): on 6.1 a verbose log slows
the verifier about 3x and is thrown away for an accepted program. A rejected
program is loaded again with log_level 1 and a 16 MiB buffer for the log.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.core.errors import InputError
from builder.loadtest.bpf import (
    BPF_LOG_LEVEL_STATS,
    BPF_LOG_LEVEL_VERBOSE,
    BPF_MAP_TYPE_PROG_ARRAY,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_TRACEPOINT,
    STATS_LOG_SIZE,
    VERBOSE_LOG_SIZE,
    Bpf,
    BpfError,
    tracepoint_id,
)
from builder.loadtest.probeelf import (
    RAW_TRACEPOINT,
    TAIL_CALL,
    MapDef,
    ProbeObject,
    Program,
    read_probe,
)

LOG_TAIL_LINES = 4
_STATISTICS = ("processed ", "verification time ", "stack depth ")
_PROCESSED = re.compile(r"processed (\d+) insns")


@dataclass(frozen=True, slots=True)
class ProgramResult:
    section: str
    accepted: bool
    insns: int                 # instructions in the program
    processed: int = 0         # instructions the verifier walked (log_level 4 statistics)
    seconds: float = 0.0
    error: str = ""            # errno of a rejected load or a failed attach
    log: str = ""              # the verifier's verbose log of a rejected program
    attach: str = ""           # how it was attached (probeelf's kinds), or why it was not

    def tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The verifier's last lines before its statistics: where it gave up and why."""
        said = [line for line in self.log.splitlines()
                if line.strip() and not line.startswith(_STATISTICS)]
        return said[-lines:]


@dataclass
class ProbeResult:
    """One probe in one kernel: programs accepted of total, and what went wrong."""

    path: str
    kernel: str
    total: int = 0
    accepted: int = 0
    attached: int = 0
    events: int = 0
    seconds: float = 0.0
    error: str = ""            # the probe could not be loaded at all (format, maps, kernel)
    capture: str = ""          # what the event capture said when it could not count
    programs: list[ProgramResult] = field(default_factory=list)

    @property
    def rejected(self) -> list[ProgramResult]:
        return [p for p in self.programs if not p.accepted]

    @property
    def passed(self) -> bool:
        return not self.error and self.total > 0 and self.accepted == self.total and \
            not self.rejected

    def reason(self) -> str:
        """One line: the first thing that went wrong, with the verifier's last lines."""
        if self.error:
            return self.error
        rejected = self.rejected
        if not rejected:
            return ""
        first = rejected[0]
        more = f" (and {len(rejected) - 1} more programs)" if len(rejected) > 1 else ""
        lines = " | ".join(first.tail())
        return f"{first.section}: {first.error}{more}" + (f": {lines}" if lines else "")


# (maps by name: (fd, MapDef), filler programs by name: fd, bpf) -> events counted
Capture = Callable[[dict[str, tuple[int, MapDef]], dict[str, int], Bpf], int]


def load_probe(path: str, bpf: Bpf, *, kernel: str | None = None, attach: bool = True,
               capture: Capture | None = None) -> ProbeResult:
    """Load every program of the probe at `path`; every outcome is in the result.

    `capture`, when given, runs while the probe is loaded and attached and
    says how many events it captured (see events.py).
    """
    kernel = kernel or os.uname().release
    started = time.perf_counter()
    result = ProbeResult(path, kernel)
    try:
        probe = read_probe(Path(path))
    except InputError as exc:
        result.error = exc.message
        return result
    result.total = len(probe.programs)
    if probe.kernel_release and probe.kernel_release != kernel:
        result.error = (f"the probe is built for {probe.kernel_release} but the kernel is "
                        f"{kernel} (libscap refuses to load it)")
        return result
    with _closing() as fds:
        try:
            maps = _create_maps(probe, bpf, fds)
        except BpfError as exc:
            result.error = f"creating the maps: {exc}"
            return result
        loaded = [_load(program, probe, maps, bpf, fds) for program in probe.programs]
        result.programs = [outcome for outcome, _ in loaded]
        result.accepted = sum(1 for outcome in result.programs if outcome.accepted)
        if attach and result.accepted == result.total:
            result.programs = _attach(probe, loaded, maps, bpf, fds)
            result.attached = sum(1 for p in result.programs
                                  if p.accepted and p.attach not in ("", TAIL_CALL, SKIPPED))
        result.seconds = time.perf_counter() - started
        if capture is not None and result.passed:
            named = {spec.name: (fd, spec) for spec, fd in zip(probe.maps, maps, strict=True)}
            fillers = {p.event: fd for p, (_, fd) in zip(probe.programs, loaded, strict=True)
                       if p.is_filler}
            try:
                result.events = capture(named, fillers, bpf)
            except (BpfError, OSError) as exc:
                result.capture = str(exc)
    return result


@contextlib.contextmanager
def _closing() -> Iterator[list[int]]:
    """Every fd opened for one probe, closed when it is done (detaching its programs)."""
    fds: list[int] = []
    try:
        yield fds
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):
                os.close(fd)


def _create_maps(probe: ProbeObject, bpf: Bpf, fds: list[int]) -> list[int]:
    cpus = os.sysconf("SC_NPROCESSORS_CONF")
    out = []
    for spec in probe.maps:
        fd = bpf.map_create(spec.type, spec.key_size, spec.value_size,
                            spec.max_entries or cpus, spec.flags)
        fds.append(fd)
        out.append(fd)
    return out


def _load(program: Program, probe: ProbeObject, maps: list[int], bpf: Bpf,
          fds: list[int]) -> tuple[ProgramResult, int]:
    """The program's outcome and its fd (-1 when rejected)."""
    kind = BPF_PROG_TYPE_RAW_TRACEPOINT if program.raw else BPF_PROG_TYPE_TRACEPOINT
    insns = program.linked(maps)
    count = len(insns) // 8
    started = time.perf_counter()
    first = bpf.prog_load(kind, insns, probe.license, BPF_LOG_LEVEL_STATS, STATS_LOG_SIZE)
    seconds = time.perf_counter() - started
    if first.ok:
        fds.append(first.fd)
        return ProgramResult(program.section, True, count, _processed(first.log), seconds), \
            first.fd
    # Rejected, or a kernel older than 5.2 that has no log_level 4: once more, verbosely.
    again = bpf.prog_load(kind, insns, probe.license, BPF_LOG_LEVEL_VERBOSE, VERBOSE_LOG_SIZE)
    if again.ok:
        fds.append(again.fd)
        return ProgramResult(program.section, True, count, _processed(again.log), seconds), \
            again.fd
    code = BpfError("", again.code).errno_name
    return ProgramResult(program.section, False, count, _processed(again.log), seconds,
                         error=code, log=again.log), -1


def _processed(log: str) -> int:
    found = _PROCESSED.search(log)
    return int(found.group(1)) if found else 0


SKIPPED = "skipped: the kernel has no such tracepoint (libscap skips it too)"


def _attach(probe: ProbeObject, loaded: list[tuple[ProgramResult, int]], maps: list[int],
            bpf: Bpf, fds: list[int]) -> list[ProgramResult]:
    """Each program attached as its section name says (Program.attach).

    libscap keys fillers by its own filler table, which the object does not
    carry; any distinct slots prove the tail-call map takes them.
    """
    tail_map = next((i for i, m in enumerate(probe.maps) if m.type == BPF_MAP_TYPE_PROG_ARRAY),
                    None)
    out = []
    slot = 0
    for program, (outcome, fd) in zip(probe.programs, loaded, strict=True):
        try:
            how = program.attach
            if how == TAIL_CALL:
                if tail_map is None or slot >= probe.maps[tail_map].max_entries:
                    how = ""
                else:
                    bpf.map_update(maps[tail_map], slot.to_bytes(4, "little"),
                                   fd.to_bytes(4, "little"))
                    slot += 1
            elif how == RAW_TRACEPOINT:
                fds.append(bpf.raw_tracepoint_open(program.event, fd))
            else:
                how = _perf_attach(program, fd, bpf, fds)
            outcome = replace(outcome, attach=how)
        except BpfError as exc:
            outcome = replace(outcome, accepted=False, error=f"attach: {exc}")
        out.append(outcome)
    return out


def _perf_attach(program: Program, fd: int, bpf: Bpf, fds: list[int]) -> str:
    """A `tracepoint/` program onto its tracepoint; a missing optional one is skipped."""
    event_id = tracepoint_id(program.event)
    if event_id is None:
        if program.optional:
            return SKIPPED
        raise BpfError(f"no tracepoint {program.event} in tracefs", errno.ENOENT)
    fds.append(bpf.tracepoint_attach(event_id, fd))
    return program.attach
