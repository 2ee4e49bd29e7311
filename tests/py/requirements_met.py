"""Exit 0 when every requirement in a pip requirements file (extras included)
is installed at an accepted version, 1 otherwise. Lets .ci/run skip pip, and
the network, when nothing is missing.

Usage: python3 tests/py/requirements_met.py tests/py/requirements.txt
"""

import importlib.metadata as md
import sys

from pip._vendor.packaging.requirements import Requirement


def met(req):
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        return False
    if not req.specifier.contains(version, prereleases=True):
        return False
    for extra in req.extras:
        for dep in md.requires(req.name) or []:
            d = Requirement(dep)
            if d.marker and d.marker.evaluate({"extra": extra}) and not met(d):
                return False
    return True


def main(path):
    with open(path) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    sys.exit(0 if all(met(Requirement(line)) for line in lines if line) else 1)


if __name__ == "__main__":
    main(sys.argv[1])
