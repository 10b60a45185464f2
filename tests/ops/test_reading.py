"""The reader's path: a tour file is read without the machinery (dev/reading.py, docs/layout.md).

Following the imports inside `app/` from each of the twelve tour files meets few lines, and the
layers point one way: tour content (app/utils) and the machinery (app/runtime) never import the
patterns beyond the tour (app/advanced), and the machinery imports no tour content at all.
"""

import ast
from pathlib import Path

import pytest

from dev.reading import REPO, TOUR_FILES, imported_files, median_reading, reading

# docs/layout.md quotes the figure; 1,573 before the machinery moved out of the reader's way.
MEDIAN_BUDGET = 600


def app_modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_a_reader_of_a_tour_file_meets_at_most_the_budget_in_the_median() -> None:
    assert median_reading() <= MEDIAN_BUDGET


def test_the_run_controls_read_on_their_own() -> None:
    # docs/control.md's lesson: the page's server side and what it imports inside app/.
    lines, files = reading("app/web/runs.py")
    assert lines <= MEDIAN_BUDGET, [str(f.relative_to(REPO)) for f in files]


def test_no_tour_file_leads_into_the_streaming_or_serving_machinery() -> None:
    for tour_file in TOUR_FILES:
        _, files = reading(tour_file)
        met = {str(f.relative_to(REPO)) for f in files}
        assert not met & {
            "app/advanced/streaming/text.py",
            "app/runtime/serving.py",
            "app/runtime/agent_runs.py",
            "app/runtime/front_door.py",
        }, tour_file


@pytest.mark.parametrize("folder", ["app/utils", "app/runtime"])
def test_tour_content_and_machinery_never_import_the_patterns_beyond_the_tour(folder: str) -> None:
    advanced = REPO / "app" / "advanced"
    for module in app_modules(folder):
        leaks = [f for f in imported_files(module) if advanced in f.parents]
        assert not leaks, f"{module.relative_to(REPO)} imports {leaks}"


def test_the_machinery_imports_only_the_machinery() -> None:
    runtime = REPO / "app" / "runtime"
    endpoint = REPO / "app" / "__main__.py"  # what serving serves: the list of services
    for module in app_modules("app/runtime"):
        outside = [f for f in imported_files(module) if runtime not in f.parents and f != endpoint]
        assert not outside, f"{module.relative_to(REPO)} imports {outside}"


def test_a_tour_file_opens_with_a_short_docstring_that_has_its_curl() -> None:
    for tour_file in TOUR_FILES:
        docstring = ast.get_docstring(ast.parse((REPO / tour_file).read_text())) or ""
        assert "curl localhost:8080/" in docstring, tour_file
        assert len(docstring.splitlines()) <= 16, f"{tour_file}: {len(docstring.splitlines())} lines"
