"""Build the Cython training core; all metadata lives in pyproject.toml."""
import platform
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import FileError

MODULES = ["_blas", "_activations", "_losses", "_dense", "_layers", "_optim", "_batch", "_loop", "_scan"]
# OpenMP (the threads of a batch in _batch, of predict's and evaluate's shared row blocks in _loop, of the
# input scan in _scan) where the compiler is known to have it; elsewhere prange is serial.
OPENMP = ["-fopenmp"] if sys.platform.startswith("linux") else []
# Kernels built for x86-64 CPUs with AVX2 and FMA (the optimizer rules once more, and the fused gather + first
# Dense layer); _batch picks them at run time only on such a CPU (the modules would not run elsewhere).
FLAGS = {"_batch": OPENMP, "_loop": OPENMP, "_scan": OPENMP}
# The native checkpoint writer thread uses Linux's pthread and affinity calls; elsewhere a Python thread writes.
if sys.platform.startswith("linux"):
    MODULES.append("_filewrite")
    FLAGS["_filewrite"] = ["-D_GNU_SOURCE", "-pthread"]
if platform.machine().lower() in ("x86_64", "amd64") and not sys.platform.startswith("win"):
    MODULES += ["_optim_avx2", "_dense_avx2"]
    FLAGS["_optim_avx2"] = FLAGS["_dense_avx2"] = ["-mavx2", "-mfma"]

extensions = [
    Extension(
        f"fastfit._ext.{name}",
        [f"src_cython/fastfit/_ext/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-fno-math-errno"] + FLAGS.get(name, []),
        extra_link_args=OPENMP if name in ("_batch", "_loop", "_scan") else [],
    )
    for name in MODULES
]



class BuildExtBesideSources(build_ext):
    """Build the extensions, then also copy them next to their sources in fastfit/_ext (as `--inplace` does).

    `python -m fastfit demo` run from the checkout, as the README's quick start does, imports the checkout's
    `fastfit` (the current directory comes first on sys.path), not the installed one; without the compiled
    modules there it would fall back to the NumPy engine. A read-only checkout only skips the copy.
    """

    def run(self):
        super().run()
        if not self.inplace:
            try:
                self.copy_extensions_to_source()
            except (OSError, FileError) as error:
                print(f"fastfit: extensions not copied into the source tree ({error})", file=sys.stderr)


setup(
    cmdclass={"build_ext": BuildExtBesideSources},
    ext_modules=cythonize(
        extensions,
        include_path=["src_cython"],
        compiler_directives={"language_level": "3"},
    ),
)
