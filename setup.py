"""Build the Cython kernels.

One list of extensions, Cython directives set in one place. ``FASTRNN_CYTHON_DEBUG=1`` builds for
test runs that hunt out-of-bounds access: Cython's bounds checking and wraparound on, and, because
the kernels index raw pointers that Cython cannot check, AddressSanitizer (-fsanitize=address), -O1 -g.
Such a build is loaded with libasan preloaded; see .ci/run.
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTRNN_CYTHON_DEBUG", "0") == "1"

KERNELS = ["blas", "rnn", "lstm", "gru", "optim", "packed_hooks", "fingerprint"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}
# -fno-trapping-math lets gcc turn the clamps in fastmath.h into vector selects (NaN still propagates);
# with it the gate loops vectorize.
# -fno-math-errno lets it use the sqrt instruction without the errno check, so loops calling sqrt (the
# Adam update) vectorize: results are the same (sqrt is correctly rounded either way); Adam over 220k
# float32 parameters 824 -> 371 us on the development machine.
compile_args = ["-fno-trapping-math", "-fno-math-errno"] + (["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
                                         if DEBUG else ["-O3"])
link_args = ["-pthread"] + (["-fsanitize=address"] if DEBUG else [])

# Rebuild every kernel when a shared header or .pxd changes (setuptools tracks only what it is told).
DEPENDS = sorted(glob.glob("fastrnn/_kernels/*.h") + glob.glob("fastrnn/_kernels/*.pxd"))

extensions = [
    Extension(
        f"fastrnn._kernels.{name}",
        [f"fastrnn/_kernels/{name}.pyx"],
        include_dirs=[numpy.get_include(), "fastrnn/_kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        depends=DEPENDS,
    )
    for name in KERNELS
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
