"""Build step the metadata in pyproject.toml cannot say: ship the firmware and hardware files.

The repository keeps firmware/ and hardware/ at the top (they are not host code, and the
docs point at hardware/hands/iso16.toml). A wheel carries copies of them as package data
in dexlink/_assets/, where dexlink.resources finds them with importlib.resources. An
editable install (`make setup`) copies nothing: dexlink.resources reads the checkout.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
ASSETS = "_assets"  # dexlink.resources.ASSETS
# What a board or the host reads from each tree: the firmware's sources (not a stray .mpy),
# every hardware description. Never caches, hidden files or a user's calibrations.
SHIPPED = {"firmware": "**/*.py", "hardware": "**/*"}


def _shipped_files(tree: Path):
    for path in sorted(tree.glob(SHIPPED[tree.name])):
        rel = path.relative_to(tree)
        if (path.is_file() and "__pycache__" not in rel.parts
                and not any(part.startswith(".") for part in rel.parts)
                and not path.name.endswith((".calibration.toml", ".pyc"))):
            yield path


class BuildPyWithAssets(build_py):
    """build_py, then firmware/ and hardware/ copied into the build as dexlink/_assets/."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "dexlink" / ASSETS
        if target.exists():
            shutil.rmtree(target)  # a stale build directory must not ship removed files
        for name in SHIPPED:
            tree = HERE / name
            files = list(_shipped_files(tree))
            if not files:
                raise SystemExit("%s: nothing to ship (is this a dexlink source tree?)" % tree)
            for path in files:
                out = target / name / path.relative_to(tree)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out)


setup(cmdclass={"build_py": BuildPyWithAssets})
