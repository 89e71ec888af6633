"""Builds the optional compiled kernels (lib/model/_kernels.c); everything else is in pyproject.toml.

Without a C compiler the build of lib.model._kernels is skipped with a warning, and lib/ runs the same
computations as NumPy calls (slower for one sequence per update; see docs/speed.md). A compiler without
OpenMP (Apple's clang) builds the same kernels without threads.
"""
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

args, links, libraries, macros = [], [], ["m"], []
if sys.platform != "win32":
    # -march=native: the kernels are built on the machine that runs them (an editable install).
    # -ffp-contract=off: a * b + c stays two roundings, so clip_adagrad matches lib/optim.py bit for bit.
    # -fopenmp: the gated cells' compiled products share their work among threads (lib/model/_packed.h).
    args = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fopenmp"]
    links = ["-fopenmp"]
if sys.platform.startswith("linux"):
    # -z now: every OpenMP call binds to one runtime when the module loads (a precaution: bound lazily, a
    # call made first after another library brought its own OpenMP runtime, as PyTorch does in
    # benchmarks/gated.py, could bind to that one).
    links.append("-Wl,-z,now")
libc, version = platform.libc_ver()
if platform.machine() == "x86_64" and libc == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 35):
    libraries.append("mvec")                  # glibc's vectorised tanh (used where AVX2 is available)
    macros.append(("HAVE_LIBMVEC_IF_AVX2", "1"))


class BuildWithoutThreadsIfNeeded(build_ext):
    """Where the compiler refuses -fopenmp, the same kernels again without it: one thread (the pragmas
    of OpenMP's simd loops kept, with -fopenmp-simd)."""

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception:
            if "-fopenmp" not in ext.extra_compile_args:
                raise
            self.warn("the C compiler has no OpenMP: lib.model._kernels is built without threads")
            ext.extra_compile_args = [a if a != "-fopenmp" else "-fopenmp-simd" for a in ext.extra_compile_args]
            ext.extra_compile_args.append("-Wno-unknown-pragmas")     # the parallel regions, ignored
            ext.extra_link_args = [a for a in ext.extra_link_args if a != "-fopenmp"]
            super().build_extension(ext)


setup(ext_modules=[Extension("lib.model._kernels", ["lib/model/_kernels.c"],
                             depends=["lib/model/_typed.h", "lib/model/_packed.h"],
                             extra_compile_args=args, extra_link_args=links,
                             libraries=libraries, define_macros=macros, optional=True)],
      cmdclass={"build_ext": BuildWithoutThreadsIfNeeded})
