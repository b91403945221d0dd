"""The command line: ``python -m fastrnn COMMAND ...``; ``python -m fastrnn --help`` lists the commands.

Each command is a module with ``add_arguments(parser)`` and ``run(args) -> int``, registered in COMMANDS.
"""
from __future__ import annotations

import argparse
import importlib

#: command name -> (module, one-line help)
COMMANDS = {
    "demo": ("fastrnn.demo", "check the kernels against a plain-numpy LSTM, time them, and train a tiny model"),
    "lm": ("fastrnn.lm_cli", "train a character language model (default: on the shipped Shakespeare) and sample it"),
}

DEFAULT = "demo"


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m fastrnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([DEFAULT] + list(argv or []))
    return importlib.import_module(COMMANDS[args.command][0]).run(args)
