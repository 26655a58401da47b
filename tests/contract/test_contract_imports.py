"""The contract package imports nothing from fastfit but itself, and the Cython engine nothing from the reference
engine (docs/architecture.md, "The engine contract")."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_contract_imports_only_itself():
    files = sorted((ROOT / "fastfit" / "contract").glob("*.py"))
    assert {f.name for f in files} >= {"names.py", "checks.py", "ops.py", "optimizer.py", "modes.py"}
    for path in files:
        for module in imported_modules(path):
            if module.split(".")[0] == "fastfit":
                assert module.startswith("fastfit.contract"), f"{path.name} imports {module}"


def test_cython_engine_does_not_import_the_reference():
    for path in sorted((ROOT / "src_cython" / "fastfit" / "_ext").glob("*.py[xd]")):
        lines = [line for line in path.read_text().splitlines()
                 if line.lstrip().startswith(("import ", "from ", "cimport "))]
        assert not [line for line in lines if "_reference" in line], path.name
