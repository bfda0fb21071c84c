"""``mixq``: the project's command line (DESIGN section 4).

Each subcommand lives in its own module of this package exposing ``register(subparsers)``, which
adds its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit
code. Bad input raises :class:`tvm_mixq.errors.MixqError`: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable, Optional, Sequence

from ..errors import MixqError

#: Modules of tvm_mixq.cli that add a subcommand, in the order ``mixq --help`` lists them.
SUBCOMMAND_MODULES = (
    "check",
    "reference",
    "bench",
    "tflm",
    "deploy",
    "demo",
)

log = logging.getLogger("tvm_mixq")


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixq", description="Mixed-precision, patch-based deployment of TFLite models on Cortex-M.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def run_guarded(func: Callable[[], int], prog: str) -> int:
    """Run a command body: MixqError -> one line and 2; anything else -> one line and 1."""
    try:
        return func()
    except MixqError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # internal error: still one line unless debugging
        if os.environ.get("MIXQ_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (set MIXQ_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    return run_guarded(lambda: args.func(args), "mixq")


if __name__ == "__main__":
    sys.exit(main())
