"""argparse types for command-line options (``python -m fastrnn lm`` and the benchmark scripts in bench/): a
bad value is refused by the parser, with what was expected and what was given, before anything runs."""
from __future__ import annotations

import argparse
import math


def _refuse(expected, text):
    raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def int_at_least(minimum):
    """An integer >= minimum."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            _refuse(expected, text)
        if value < minimum:
            _refuse(expected, text)
        return value
    return parse


def ints_at_least(minimum, example):
    """A non-empty comma-separated list of integers >= minimum (repeats dropped), e.g. thread counts."""
    expected = f"comma-separated integers >= {minimum} such as {example}"

    def parse(text):
        try:
            values = list(dict.fromkeys(int(t) for t in text.split(",") if t))
        except ValueError:
            _refuse(expected, text)
        if not values or any(v < minimum for v in values):
            _refuse(expected, text)
        return values
    return parse


def finite(minimum, inclusive=True):
    """A finite float >= minimum (inclusive) or > minimum."""
    if minimum == 0:
        expected = "a number >= 0" if inclusive else "a positive number"
    else:
        expected = f"a finite number {'>=' if inclusive else '>'} {minimum:g}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            _refuse(expected, text)
        if not math.isfinite(value) or not (value >= minimum if inclusive else value > minimum):
            _refuse(expected, text)
        return value
    return parse


def fraction(text):
    """A number in the open interval (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        _refuse("a fraction in (0, 1)", text)
    if not 0 < value < 1:
        _refuse("a fraction in (0, 1)", text)
    return value


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
