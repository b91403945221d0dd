"""The README's examples on real data run and learn (skipped when their data packages are missing)."""
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_classifier_reads_rows_and_learns():
    pytest.importorskip("sklearn")
    accuracy = _load("classify_digits").main(epochs=4)
    assert accuracy > 0.85, f"test accuracy {accuracy:.3f}: ten classes, chance is 0.1"


def test_co2_forecaster_beats_repeating_the_last_value():
    pytest.importorskip("statsmodels")
    rmse, rmse_naive = _load("forecast_co2").main(epochs=15)
    assert rmse < 0.7 * rmse_naive, f"forecast RMSE {rmse:.2f} ppm vs {rmse_naive:.2f} for the last value"
