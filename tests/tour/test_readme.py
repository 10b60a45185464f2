"""Every `curl localhost:8080/...` in the README and docs/ (or :28080, :38080, the cluster's other nodes) names a
registered handler and sends valid JSON."""

import json
import re
import shlex

import httpx
import pytest

from dev.harness import Tour
from dev.stack import REPO

pytestmark = pytest.mark.e2e

INGRESS_CURL = re.compile(r"curl [^`\n]*?localhost:(?:8080|28080|38080)/[^`\n]*")
INGRESS_URL = re.compile(r"localhost:(?:8080|28080|38080)/")


def readme_commands() -> list[str]:
    """From README.md and every page under docs/ it links to."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return sorted({c for page in pages for c in INGRESS_CURL.findall(page.read_text())})


def test_the_readme_has_tour_commands() -> None:
    assert any("/WeatherAgent/run" in c for c in readme_commands())


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_targets_a_registered_handler(tour: Tour, command: str) -> None:
    args = shlex.split(command)
    url = next(a for a in args if INGRESS_URL.match(a))
    if "--json" in args:
        body = args[args.index("--json") + 1]
        # The body is valid JSON as written (`@file`: the file's, from the repository's root).
        json.loads((REPO / body[1:]).read_text() if body.startswith("@") else body)

    parts = INGRESS_URL.sub("", url, count=1).split("/")
    if parts[0] == "restate":
        return  # the ingress's own API (awakeables, invocations)
    if parts[-1] == "send":
        parts = parts[:-1]
    service = httpx.get(f"{tour.admin.url}/services/{parts[0]}", timeout=10)
    assert service.status_code == 200, f"{parts[0]} is not a registered service: {command}"
    handlers = {h["name"] for h in service.json()["handlers"]}
    keyed = service.json()["ty"] in ("VirtualObject", "Workflow")
    assert len(parts) == (3 if keyed else 2), (
        f"expected {'Service/key/handler' if keyed else 'Service/handler'}"
    )
    assert parts[-1] in handlers, f"{parts[-1]} is not a handler of {parts[0]} ({sorted(handlers)})"


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
PATH = re.compile(r"\b((?:app|dev|tests|bench)/[\w/.-]+\.(?:py|md|js|html|json))\b")


def test_every_link_and_file_path_in_the_docs_exists() -> None:
    missing = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text()
        for target in LINK.findall(text):
            if not target.startswith(("http://", "https://")) and not (page.parent / target).exists():
                missing.append(f"{page.name}: ({target})")
        written_by_runs = ("bench/.work/",)  # made by `make bench --quick`, not in the repository
        missing += [
            f"{page.name}: {path}"
            for path in PATH.findall(text)
            if not path.startswith(written_by_runs) and not (REPO / path).exists()
        ]
    assert not missing, "\n".join(missing)
