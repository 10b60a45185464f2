"""requirements.lock pins every dependency that pyproject.toml names (`make lock` refreshes it)."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_in_the_lock_file() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {normalize(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in wanted}
    lock = (REPO / "requirements.lock").read_text()
    pinned = {normalize(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, re.MULTILINE)}

    assert names - pinned == set(), "run `make lock` after changing pyproject.toml's dependencies"
    assert "--hash=sha256:" in lock
