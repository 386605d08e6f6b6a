"""The package's layering: the specification imports nothing else of swattn, and no library code
imports the command line."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: folders of the installed packages (pyproject.toml's package-dir)
PACKAGE_DIRS = {"hw": "swattn.hw", "sw": "swattn.sw", "sim": "swattn.sim", "fpga": "swattn.fpga"}
SPEC_MODULES = ["numerics", "pattern", "engine_params", "regs", "protocol", "schedule", "errors"]
#: and any module added to the spec since
SPEC_MODULES += sorted(p.stem for p in (ROOT / "sw" / "spec").glob("*.py")
                       if p.stem != "__init__" and p.stem not in SPEC_MODULES)
CLI = "swattn.sw.cli"


def test_spec_imports_nothing_else_of_swattn():
    code = (
        "import sys\n"
        + "".join(f"import swattn.sw.spec.{m}\n" for m in SPEC_MODULES)
        + "print('\\n'.join(sorted(k for k in sys.modules if k.split('.')[0] == 'swattn')))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = res.stdout.split()
    assert "swattn.sw.spec.numerics" in loaded
    outside = [m for m in loaded
               if m not in ("swattn", "swattn.sw", "swattn.sw.spec")
               and not m.startswith("swattn.sw.spec.")]
    assert not outside, f"importing the spec loads other swattn modules: {outside}"


def _module_name(path: Path) -> tuple[str, bool]:
    """The dotted name of the module in ``path`` and whether it is a package's __init__."""
    rel = path.relative_to(ROOT)
    parts = [PACKAGE_DIRS[rel.parts[0]], *rel.parts[1:-1]]
    if path.stem == "__init__":
        return ".".join(parts), True
    return ".".join([*parts, path.stem]), False


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement refers to (with each ``from X import name`` also
    as ``X.name``, since the name may be a submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")
            if not is_package:
                base = base[:-1]
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        return [target] + [f"{target}.{a.name}" for a in node.names]
    return []


def _library_files() -> list[Path]:
    files = []
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if _module_name(path)[0].startswith(CLI):
                continue
            files.append(path)
    return files


def test_library_code_does_not_import_the_cli():
    files = _library_files()
    assert any(p.name == "golden.py" for p in files)
    offenders = []
    for path in files:
        module, is_package = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, is_package):
                if name == CLI or name.startswith(CLI + "."):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
                    break
    assert not offenders, "library code imports the CLI:\n" + "\n".join(offenders)


def test_import_resolution():
    # the scan resolves relative imports as Python does
    node = ast.parse("from ..sw.cli import x").body[0]
    assert "swattn.sw.cli" in _imported(node, "swattn.sim.runner", False)
    node = ast.parse("from .cli import x").body[0]
    assert "swattn.sw.cli" in _imported(node, "swattn.sw.demo", False)
    node = ast.parse("from . import cli").body[0]
    assert "swattn.sw.cli" in _imported(node, "swattn.sw", True)
    node = ast.parse("from .. import cli").body[0]
    assert "swattn.sw.cli" in _imported(node, "swattn.sw.spec", True)
