"""The one error hierarchy of falco-probes.

Everything a user can act on is raised as a `ProbesError` subclass and caught
only in the CLI, which prints `error: ...` and `hint: ...` and exits with the
class's exit code. Anything else is a bug and gets a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exit codes, documented in docs/cli.md. 1 is reserved for a negative answer
# (probe not found, check found problems, digest mismatch), never for a crash.
EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2
EXIT_CONFLICT = 3
EXIT_STORE = 4
EXIT_BUILD = 5
EXIT_INTERRUPTED = 130
EXIT_BUG = 70  # an error none of the above: a bug in falco-probes (sysexits' EX_SOFTWARE)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input, located as precisely as we can."""

    path: str
    message: str
    line: int | None = None
    record: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = ""
        if self.record:
            what += f" record {self.record}"
        if self.field:
            what += f" field {self.field!r}"
        return f"{where}:{what + ':' if what else ''} {self.message}"


class ProbesError(Exception):
    """A problem the user can fix; carries a hint and an exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(ProbesError):
    """Bad input: a flag, a file, a record. Nothing was written."""


class ProblemsError(InputError):
    """Many located problems at once (a catalog or config that fails its checks)."""

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "no problems"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more, hint=hint)


class ConflictError(ProbesError):
    """Two sources disagree about the same probe (same file, different digest)."""

    exit_code = EXIT_CONFLICT


class StoreError(ProbesError):
    """A store (GitHub, a folder, a mirror URL) failed or refused us."""

    exit_code = EXIT_STORE


class BuildError(ProbesError):
    """A build could not even start (no compiler, no driver source)."""

    exit_code = EXIT_BUILD


class SourceLayoutError(BuildError):
    """A driver source is not laid out as any Falco driver version we know."""
