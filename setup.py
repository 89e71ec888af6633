"""Builds the optional compiled kernels (lib/model/_kernels.c); everything else is in pyproject.toml.

Without a C compiler the build of lib.model._kernels is skipped with a warning, and lib/ runs the same
computations as NumPy calls (slower for one sequence per update; see docs/speed.md).
"""
import platform
import sys

from setuptools import Extension, setup

args, libraries, macros = [], ["m"], []
if sys.platform != "win32":
    # -march=native: the kernels are built on the machine that runs them (an editable install).
    # -ffp-contract=off: a * b + c stays two roundings, so clip_adagrad matches lib/optim.py bit for bit.
    # -fopenmp: the gated cells' packed products share their panels among threads (lib/model/_packed.h).
    args = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fopenmp"]
# -z now: every OpenMP call binds to one runtime when the module loads (a precaution: bound lazily, a call
# made first after another library brought its own OpenMP runtime, as PyTorch does in benchmarks/gated.py,
# could bind to that one).
links = ["-fopenmp", "-Wl,-z,now"] if args else []
libc, version = platform.libc_ver()
if platform.machine() == "x86_64" and libc == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 35):
    libraries.append("mvec")                  # glibc's vectorised tanh (used where AVX2 is available)
    macros.append(("HAVE_LIBMVEC_IF_AVX2", "1"))

setup(ext_modules=[Extension("lib.model._kernels", ["lib/model/_kernels.c"], depends=["lib/model/_typed.h", "lib/model/_packed.h"],
                             extra_compile_args=args, extra_link_args=links,
                             libraries=libraries, define_macros=macros, optional=True)])
