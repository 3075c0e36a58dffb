"""The package's shape: stage folders, a core that imports no Dagster, nothing imports upward, no cycles, small
files and functions. Read from the source with ast (nothing is imported)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pipelines"

# lowest first: a module may import its own stage and the stages below it, never one above
LAYERS = [
    "settings",
    "warehouse",
    "ingest",
    "attribution",
    "spark",
    "analysis",
    "outputs",
    "devtools",
    "serve",
    "dbt_project",
    "defs",
    "definitions",
    "cli",
]
CORE = {"settings", "warehouse", "ingest", "attribution", "spark", "analysis", "outputs", "devtools", "serve"}
MAX_FILE_LINES = 320  # "about 300"
MAX_FUNCTION_LINES = 60
# the compiled sweep is one numba loop: splitting it would cost the speed it exists for
LONG_FUNCTIONS_ALLOWED = {"pipelines.attribution.compiled_sweep.run_sweep"}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path) -> set[str]:
    """The modules a file imports when it runs (imports only for type checkers do not count)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_every_stage_folder_says_what_it_owns():
    for folder in PACKAGE.iterdir():
        if folder.is_dir() and (folder / "__init__.py").exists():
            doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
            assert doc and len(doc) > 40, f"{folder.name}/__init__.py needs a docstring saying what it owns"


def test_the_core_imports_no_dagster():
    offenders = [
        f"{m} imports {i}"
        for m, p in modules().items()
        if stage(m) in CORE
        for i in imports(p)
        if i.split(".")[0] in ("dagster", "dagster_dbt", "dagster_duckdb")
    ]
    assert not offenders, "\n".join(offenders)


def test_nothing_imports_upward():
    mods = modules()
    offenders = []
    for m, p in mods.items():
        if stage(m) not in LAYERS:
            continue
        for i in imports(p):
            if i.startswith("pipelines.") and stage(i) in LAYERS and LAYERS.index(stage(i)) > LAYERS.index(stage(m)):
                offenders.append(f"{m} imports {i}")
    assert not offenders, "\n".join(offenders)


def test_no_import_cycles():
    mods = modules()
    graph = {
        m: {i if i in mods else i.rsplit(".", 1)[0] for i in imports(p) if i.startswith("pipelines.")}
        for m, p in mods.items()
    }
    graph = {m: {i for i in deps if i in mods and i != m and not m.startswith(i + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m, trail):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*trail[trail.index(d) :], d]) if d in trail else f"{m} -> {d}")
            elif d not in state:
                visit(d, [*trail, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_files_and_functions_stay_small():
    too_long = []
    for m, p in modules().items():
        text = p.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{p.relative_to(REPO)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{m}.{node.name}" not in LONG_FUNCTIONS_ALLOWED:
                    too_long.append(f"{p.relative_to(REPO)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)
