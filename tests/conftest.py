import os

# Keep CPU tests predictable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
