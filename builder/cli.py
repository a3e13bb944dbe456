"""`falco-probes` / `python -m builder`: one subcommand per stage.

Each stage lives in `builder/commands/<name>.py` with `register(subparsers)`
that adds its parser and sets `func`. This module only wires them up and is
the one place that catches ProbesError: `error:` and `hint:` on stderr and
the error's exit code; with --debug, a traceback first (same exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from builder import __version__
from builder.core import secrets
from builder.core.errors import EXIT_BUG, EXIT_INTERRUPTED, InputError, ProbesError, ProblemsError
from builder.ui import info, show_library_messages

TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")
# Order is the order of `--help`: the pipeline first, consumers last.
COMMANDS = ("kernels", "plan", "build", "loadtest", "attest", "publish", "catalog",
            "audit", "find", "verify", "mirror", "demo")

EPILOG = """\
pipeline:  kernels -> plan -> build -> loadtest -> attest -> publish -> catalog merge
           -> mkdocs build
consumers: find, verify, mirror

exit codes: 0 ok, 1 negative answer (not found, problems found, mismatch),
            2 bad input, 3 conflict, 4 store or network error, 5 build could not start,
            70 a bug in falco-probes, 130 interrupted. See docs/cli.md.
"""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; when `argv` names a command, only that command's module is imported
    (each imports its stage: `find` on a node need not import the compiler), the others
    are bare entries that argparse accepts and `--help` of the top level never shows."""
    chosen = _command_in(argv)
    parser = argparse.ArgumentParser(
        prog="falco-probes",
        description="Build, publish, catalog and find pre-compiled Falco eBPF probes.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="also print the traceback of an error (the exit code stays the "
                             "documented one)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if chosen is not None and name != chosen:
            sub.add_parser(name)
            continue
        try:
            module = importlib.import_module(f"builder.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"builder.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _command_in(argv: Sequence[str] | None) -> str | None:
    """The command an argument list names (its first argument that is not an option)."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    return words[0] if words and words[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    for name in TOKEN_VARIABLES:  # masked in everything we print, whoever reads them
        secrets.register(os.environ.get(name, ""))
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    show_library_messages()
    debug = args.debug or bool(os.environ.get("FALCO_PROBES_DEBUG"))
    try:
        code = args.func(args)
        return int(code or 0)
    except ProbesError as exc:
        return _report(exc, debug)
    except KeyboardInterrupt:
        info("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `falco-probes find --json | head`: the reader went away; not our error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path given to us that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        return _report(InputError(f"{where}{exc.strerror or exc}",
                                  hint="check the path and its permissions; --debug shows "
                                       "where it happened"), debug)
    except RecursionError:  # a structure nested deeper than any parser site expected
        return _report(InputError("input nested too deeply to read"), debug)
    except Exception as exc:  # a bug: still one located line, and the traceback masked
        return _report(_Bug(f"unexpected {type(exc).__name__}: {exc}",
                            hint="this is a bug in falco-probes; --debug shows where, "
                                 "please report it with that output"), debug)


class _Bug(ProbesError):
    exit_code = EXIT_BUG


def _report(exc: ProbesError, debug: bool) -> int:
    """`error:` and `hint:` lines (after the traceback with --debug) and the exit code."""
    if debug:
        for line in traceback.format_exc().splitlines():
            info(line)
    problems = exc.problems if isinstance(exc, ProblemsError) else [exc.message]
    for problem in problems:
        info(f"error: {problem}")
    if exc.hint:
        info(f"hint: {exc.hint}")
    return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
