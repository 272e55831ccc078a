import os
import platform
import tempfile

# Keep CPU tests predictable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The same CPU kernels on every x86-64 machine: a bf16 result depends on the instruction set its kernel
# was written for (the golden files' bf16 parts moved by more than their bound between an AVX-512
# machine and an AVX2 one), so the suite pins ATen's and oneDNN's dispatch to AVX2, which every x86-64
# machine of this project has. Set before torch is imported.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
# Compiled kernels and measured compile times go to the suite's own folder, not the user's cache; it
# outlives the run, as inductor's default cache does, so a second run of the suite compiles warm
# (tests that need an empty cache make their own).
os.environ.setdefault("ARC_TRM_COMPILE_CACHE", os.path.join(tempfile.gettempdir(), "arc-trm-test-compile-cache"))


import pytest


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    """The shipped dependencies' wheels, fetched once for the session: tests that package a checkpoint
    to check the checkpoint (URM, imported, compiled, a failing package) package offline from here,
    as `package --offline --wheelhouse` does; test_kaggle and the README walk-through fetch as users do."""
    from arc_trm.kaggle.wheels import dependency_wheels
    house = tmp_path_factory.mktemp("wheelhouse")
    dependency_wheels(house)
    return house
