"""Build the Cython training core; all metadata lives in pyproject.toml."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = ["_blas", "_activations", "_losses", "_dense", "_optim", "_validate", "_loop"]

extensions = [
    Extension(
        f"fastfit._ext.{name}",
        [f"src_cython/fastfit/_ext/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-fno-math-errno"],
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src_cython"],
        compiler_directives={"language_level": "3"},
    ),
)
