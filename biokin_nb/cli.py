"""The ``biokin`` command line: the notebooks' jobs, for batches.

Each subcommand is one ``_add_<name>(subparsers)`` function that adds its parser and sets
``handler`` (a function of the parsed arguments returning the exit status); register it in
``SUBCOMMANDS``. Import heavy modules inside the ``_add_`` function or the handler so that
``biokin --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from biokin_nb import __version__

Subparsers = argparse._SubParsersAction  # argparse exposes no public name for this type


def _add_notebooks(subparsers: Subparsers) -> None:
    """``biokin notebooks``: run or check the numbered notebooks (papermill)."""
    from biokin_nb import notebooks

    parser = subparsers.add_parser(
        "notebooks",
        help="run or check the numbered notebooks",
        description="Run the notebooks/NN_*.ipynb in order with papermill, or check them.",
    )
    notebooks.add_arguments(parser)
    parser.set_defaults(handler=notebooks.run_from_args)


SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (_add_notebooks,)


def build_parser() -> argparse.ArgumentParser:
    """The ``biokin`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="biokin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"biokin_nb {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``biokin``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
