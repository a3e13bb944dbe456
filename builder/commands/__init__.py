"""One module per CLI subcommand; each exposes `register(subparsers)`.

A command parses its arguments, calls its stage, and shows the result: results on
stdout, progress and messages on stderr. Nothing else lives here.
"""
