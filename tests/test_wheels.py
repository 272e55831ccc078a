"""Package's wheels survive an upstream release that drops a Python (accelerate 1.16.0 dropped 3.10
overnight and every fresh install's `package` failed): offline, from a wheelhouse of stand-in
releases, each Python gets the installed version where it has a wheel, else the newest release that
has one, and each substitution is one line."""

import zipfile
from pathlib import Path

import pytest

from arc_trm.errors import ArcTrmError
from arc_trm.kaggle.wheels import PYTHONS, covers, dependency_wheels


def _wheel(house: Path, name: str, version: str, tag: str = "py3-none-any") -> None:
    """A minimal valid wheel (pip reads its METADATA while downloading)."""
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(house / f"{name}-{version}-{tag}.whl", "w") as z:
        z.writestr(f"{name}/__init__.py", f"__version__ = '{version}'\n")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        z.writestr(f"{info}/RECORD", "")


@pytest.fixture()
def house(tmp_path):
    h = tmp_path / "house"
    h.mkdir()
    # "dropping": its newest release (installed here) ships only for 3.12 and 3.13, an older one for all
    _wheel(h, "dropping", "1.0")
    _wheel(h, "dropping", "1.1")
    for cp in ("cp312", "cp313"):
        _wheel(h, "dropping", "2.0", f"{cp}-{cp}-manylinux2014_x86_64")
    # "lagging": the installed release predates 3.13; a newer one has its wheel
    for cp in ("cp311", "cp312"):
        _wheel(h, "lagging", "3.0", f"{cp}-{cp}-manylinux2014_x86_64")
    _wheel(h, "lagging", "3.1", "cp313-cp313-manylinux2014_x86_64")
    # "steady": one pure wheel for every Python
    _wheel(h, "steady", "5.0")
    return h


def test_a_release_without_a_wheel_for_one_python_takes_the_newest_that_has_one(house, tmp_path):
    got = dependency_wheels(tmp_path / "out", pythons=("3.11", "3.12", "3.13"), wheelhouse=[house], offline=True,
                            pins={"dropping": "2.0", "lagging": "3.0", "steady": "5.0"})
    names = sorted(f.name for f in got.files)
    assert names == ["dropping-1.1-py3-none-any.whl", "dropping-2.0-cp312-cp312-manylinux2014_x86_64.whl",
                     "dropping-2.0-cp313-cp313-manylinux2014_x86_64.whl",
                     "lagging-3.0-cp311-cp311-manylinux2014_x86_64.whl",
                     "lagging-3.0-cp312-cp312-manylinux2014_x86_64.whl",
                     "lagging-3.1-cp313-cp313-manylinux2014_x86_64.whl", "steady-5.0-py3-none-any.whl"]
    assert [s.line() for s in got.substitutions] == [
        "dropping 1.1 for Python 3.11 (2.0 has no wheel there)",
        "lagging 3.1 for Python 3.13 (3.0 has no wheel there)"]
    for py in ("3.11", "3.12", "3.13"):
        for project in ("dropping", "lagging", "steady"):
            assert covers(names, project, py), (project, py)
    assert not list((tmp_path / "out").glob(".pip-*"))          # no scratch folder left behind


def test_a_package_with_no_wheel_at_all_for_a_python_is_one_error_naming_it(house, tmp_path):
    with pytest.raises(ArcTrmError, match="fetching a wheel of lagging .any release. for Python 3.10 .offline"):
        dependency_wheels(tmp_path / "out", pythons=("3.10",), wheelhouse=[house], offline=True,
                          pins={"lagging": "3.0"})


def test_the_pythons_served_are_the_kaggle_images(tmp_path):
    assert PYTHONS == ("3.11", "3.12", "3.13")      # README's "Which Pythons a package serves" says why
