"""Package discovery for a layout that installs two top-level folders inside `nndsl`.

Everything else is declared in pyproject.toml. `grammar/` and `backends/` live at
the top of the repository (one folder per stage) but install as `nndsl.grammar`
and `nndsl.backends`, so one wheel carries the whole compiler. The packages are
found, never listed: a new subpackage cannot be left out of the wheel.
"""

from setuptools import find_namespace_packages, setup

# Top-level folders that install as subpackages of nndsl.
INSTALLED_INSIDE_NNDSL = ("grammar", "backends")


def discover() -> list[str]:
    """Every package and data folder of `nndsl/`, and of the folders moved inside it.

    Namespace discovery also finds folders holding only data (the C runtime and the
    templates), so their files are package data of a package of their own.
    """
    packages = find_namespace_packages(include=["nndsl", "nndsl.*"], exclude=["*.__pycache__"])
    for folder in INSTALLED_INSIDE_NNDSL:
        found = find_namespace_packages(include=[folder, f"{folder}.*"], exclude=["*.__pycache__"])
        packages += [f"nndsl.{name}" for name in found]
    return sorted(packages)


setup(
    packages=discover(),
    package_dir={"nndsl": "nndsl", **{f"nndsl.{folder}": folder for folder in INSTALLED_INSIDE_NNDSL}},
)
