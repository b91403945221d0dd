"""argparse types for the benchmark scripts' options: a bad value is refused by the parser, with what was
expected and what was given, before anything is timed or written."""
from __future__ import annotations

import argparse
import math


def subset_of(choices):
    """A comma-separated, non-empty subset of ``choices``, as a list in the order given (repeats dropped)."""
    def parse(text):
        items = list(dict.fromkeys(t for t in text.split(",") if t))
        unknown = [t for t in items if t not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(choices)}, got "
                                             f"{text!r}" + (f" ({', '.join(unknown)} unknown)" if unknown else ""))
        return items
    return parse


def int_at_least(minimum):
    """An integer >= minimum."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    return parse


def ints_at_least(minimum, example):
    """A non-empty comma-separated list of integers >= minimum (repeats dropped), e.g. thread counts."""
    def parse(text):
        try:
            values = list(dict.fromkeys(int(t) for t in text.split(",") if t))
        except ValueError:
            values = []
        if not values or any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= {minimum} such as {example}, "
                                             f"got {text!r}")
        return values
    return parse


def finite(minimum, inclusive=True):
    """A finite float >= minimum (inclusive) or > minimum."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not (value >= minimum if inclusive else value > minimum):
            raise argparse.ArgumentTypeError(f"expected a finite number {'>=' if inclusive else '>'} {minimum:g}, "
                                             f"got {text!r}")
        return value
    return parse
