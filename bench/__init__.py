"""fastrnn's benchmark suite: ``python bench/run.py --quick`` (see bench/README.md)."""
