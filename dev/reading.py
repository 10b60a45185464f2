"""What a reader of the tour meets: from each tour file, the modules of `app/` its imports lead to.

    python -m dev.reading          # a table per tour file, and the median over the twelve

A reader who opens a tour step and follows its imports inside `app/` (and theirs, and so on)
reads the tour file and every module reached. The figure is their non-blank lines; docs/layout.md
quotes it. Imports of other packages (restate, agents, pydantic) are not followed.
"""

import ast
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The tour's twelve steps, in the tour's order (README.md).
TOUR_FILES = [
    "app/durable_agent.py",
    "app/human_approval_agent.py",
    "app/human_approval_agent_with_timeout.py",
    "app/sub_workflow_agent.py",
    "app/chat.py",
    "app/multi_agent.py",
    "app/remote_agents.py",
    "app/parallel_tools_agent.py",
    "app/parallel_agents.py",
    "app/error_handling.py",
    "app/advanced/manual_loop_agent.py",
    "app/advanced/rollback_agent.py",
]


def module_file(name: str) -> Path | None:
    """The file of module `name` (`app.utils.weather`), if it is one of `app/`."""
    if name != "app" and not name.startswith("app."):
        return None
    base = REPO / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """The files of `app/` that `path` imports directly (a `from package import module` counts the module)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if module_file(n) else node.module for n in names]
        else:
            continue
        found.update(f for f in map(module_file, names) if f is not None and f != path)
    return found


def reached(path: Path) -> set[Path]:
    """`path` and every file of `app/` its imports lead to."""
    seen, todo = {path}, [path]
    while todo:
        for found in imported_files(todo.pop()) - seen:
            seen.add(found)
            todo.append(found)
    return seen


def non_blank_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def reading(tour_file: str) -> tuple[int, list[Path]]:
    """(non-blank lines, files) met by a reader of `tour_file`."""
    files = sorted(reached(REPO / tour_file))
    return sum(map(non_blank_lines, files)), files


def median_reading() -> float:
    return statistics.median(reading(f)[0] for f in TOUR_FILES)


def main() -> None:
    for tour_file in TOUR_FILES:
        lines, files = reading(tour_file)
        print(f"{lines:6d} lines in {len(files):2d} files  {tour_file}")
        if "-v" in sys.argv:
            for f in files:
                print(f"{'':8}{non_blank_lines(f):5d}  {f.relative_to(REPO)}")
    print(f"median: {median_reading():.0f} non-blank lines")


if __name__ == "__main__":
    main()
