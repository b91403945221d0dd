"""Validation must not depend on ``assert`` (reliability.md property 13): ``python -O`` strips asserts,
which is how thinc's guards disappear. Run a subset of the bad-input tests under -O in a subprocess.
"""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBSET = ("constructor_rejects or bad_x or state_of_wrong or bad_lengths or dy_of_wrong or dstate_n "
          "or backprop_twice or weights_changed or load_state_dict or gate_buffer or cell_bad")

RUNNER = """
import sys
if sys.flags.optimize < 1:
    sys.exit(99)
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_bad_input_tests_pass_under_python_O():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-O", "-c", RUNNER, "-q", "-p", "no:cacheprovider", "-k", SUBSET,
         str(ROOT / "tests" / "test_recurrent_inputs.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 99, "the subprocess did not run with -O"
    assert proc.returncode == 0, out[-4000:]
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 200, out[-2000:]
    assert not re.search(r"\d+ (failed|errors?)\b", out), out[-2000:]


def test_door_code_has_no_assert_statements():
    """The modules that check user input use explicit raises only."""
    for rel in ("fastrnn/_validation.py", "fastrnn/_params.py", "fastrnn/layers/recurrent.py",
                "fastrnn/layers/cells.py", "fastrnn/layers/base.py"):
        tree = ast.parse((ROOT / rel).read_text(), rel)
        lines = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert not lines, f"{rel} uses assert at lines {lines}"
