"""The tests mirror the package: every module of wsgiauth/ has its own test module.

``wsgiauth/x.py`` is tested in ``tests/test_x.py`` and ``wsgiauth/pkg/x.py`` in
``tests/pkg/test_x.py``; a leading underscore is dropped (``_x.py`` ->
``tests/test_x.py``). ``__init__.py`` files (re-exports, pinned by
``test_exported_members.py``) and files that are not Python (``py.typed``, the
demo's and the browser client's static files) have none.
"""

from __future__ import annotations

from pathlib import Path
from pathlib import PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "wsgiauth"


def mirrored_test_path(module: PurePosixPath) -> PurePosixPath:
    """``wsgiauth/pkg/_x.py`` -> ``tests/pkg/test_x.py``."""
    inside = module.relative_to(PACKAGE)
    return PurePosixPath("tests", *inside.parent.parts, f"test_{inside.stem.lstrip('_')}.py")


def package_modules() -> set[str]:
    """Every module file of the package that should have a test module, as a POSIX path."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*.py")
        if path.name != "__init__.py"
    }


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        pytest.param("wsgiauth/app.py", "tests/test_app.py", id="top-level"),
        pytest.param("wsgiauth/_loader.py", "tests/test_loader.py", id="private-top-level"),
        pytest.param("wsgiauth/oauth/client.py", "tests/oauth/test_client.py", id="subpackage"),
        pytest.param("wsgiauth/pkg/sub/_x.py", "tests/pkg/sub/test_x.py", id="nested-private"),
    ],
)
def test_the_mirrored_path(module, expected):
    assert mirrored_test_path(PurePosixPath(module)) == PurePosixPath(expected)


def test_the_modules_found_are_the_package_modules():
    modules = package_modules()
    assert "wsgiauth/app.py" in modules
    assert "wsgiauth/oauth/client.py" in modules
    assert not any(module.endswith("__init__.py") for module in modules)
    assert not any(module.startswith("wsgiauth/demo/static/") for module in modules)


def test_every_module_has_its_own_test_module():
    modules = package_modules()
    untested = {m for m in modules if not (ROOT / mirrored_test_path(PurePosixPath(m))).is_file()}
    assert sorted(untested) == [], "modules without a test module (see the docstring)"
