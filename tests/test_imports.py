"""Import hygiene, read off the source with ast (nothing is imported to look):

* no import cycles among the project's modules (psp_torch, caffe_proto, converter, eval,
  train), counting imports inside functions too (a function-local import hides a cycle,
  it does not remove it);
* psp_torch has two sides with one direction: the model side (every psp_torch module
  outside psp_torch/caffe/ and `ABOVE`) never imports the Caffe side (psp_torch/caffe/)
  nor anything above it; layers/ (the Caffe arithmetic both sides build on) imports only
  itself;
* imports at the top of the file in psp_torch and converter: a function-local import is
  allowed only for an optional dependency (`OPTIONAL`).

``python tests/test_imports.py`` prints psp_torch's import graph (module -> project imports).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# installed package name -> folder of the checkout (pyproject.toml's package-dir)
PACKAGES = {"psp_torch": "psp_torch", "caffe_proto": "caffe_proto",
            "pspnet_caffe.converter": "converter", "pspnet_caffe.eval": "eval",
            "pspnet_caffe.train": "train"}
CAFFE_SIDE = "psp_torch.caffe"
# above both sides: the package's entry points and `load` (builds a PSPNet or a CaffeNet)
ABOVE = {"psp_torch", "psp_torch.io"}
TOP_OF_FILE = ("psp_torch", "pspnet_caffe.converter")     # function-local imports checked here
OPTIONAL = {"onnx", "onnxruntime", "onnxscript", "safetensors", "h5py"}
# torch's compiler stack: loaded only when compiling is asked for (psp_torch/compiled.py's
# probe); importing it with every `import psp_torch` would cost seconds
OPTIONAL_SUBMODULES = ("torch._dynamo", "torch._inductor", "torch.utils._triton")


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    out = {}
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            out[".".join([package, *parts])] = path, is_package
    return out


MODULES = modules()


def _targets(name: str, is_package: bool, node) -> list[str]:
    """The modules an import statement names (``from a import b``: a.b when it is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = name.split(".")[: None if is_package else -1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
            for a in node.names]


def _project_module(target: str) -> str | None:
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in MODULES:
            return ".".join(parts[:i])
    return None


def imports(name: str) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) of every import statement of `name`."""
    path, is_package = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    local = {id(node) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef))
             for node in ast.walk(f) if isinstance(node, (ast.Import, ast.ImportFrom))}
    return [(target, id(node) in local, node.lineno) for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in _targets(name, is_package, node)]


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    out = {}
    for name in MODULES:
        deps = {_project_module(t) for t, _, _ in imports(name)}
        out[name] = {d for d in deps if d is not None and d != name}
    return out


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def _side(name: str) -> str:
    if name == CAFFE_SIDE or name.startswith(CAFFE_SIDE + "."):
        return "caffe"
    if name in ABOVE:
        return "above"
    return "model" if name.startswith("psp_torch") else "other"


def test_no_import_cycles():
    assert _cycles(graph()) == []


def test_the_model_side_never_imports_the_caffe_side():
    g = graph()
    model = [m for m in g if _side(m) == "model"]
    assert {"psp_torch.config", "psp_torch.pspnet", "psp_torch.layers.pooling"} <= set(model)
    wrong = [(m, d) for m in model for d in sorted(g[m]) if _side(d) in ("caffe", "above")]
    assert wrong == []
    layers = [m for m in model if m.startswith("psp_torch.layers")]
    outside = [(m, d) for m in layers for d in sorted(g[m]) if not d.startswith("psp_torch.layers")]
    assert outside == []


def test_imports_at_the_top_of_files():
    local = [f"{MODULES[m][0].relative_to(ROOT)}:{line}: import {target}"
             for m in MODULES if m.startswith(TOP_OF_FILE)
             for target, in_function, line in imports(m)
             if in_function and target.split(".")[0] not in OPTIONAL
             and not target.startswith(OPTIONAL_SUBMODULES)]
    assert local == []


def test_the_checks_see_what_they_check():
    """The graph resolves relative, absolute and from-package imports, and counts a
    function-local import (so the tests above can fail)."""
    g = graph()
    assert "psp_torch.caffe.graph" in g["psp_torch.io"]                 # from .caffe.graph
    assert "psp_torch.pspnet" in g["psp_torch.caffe.weights"]           # from ..pspnet
    assert "psp_torch.caffe.deploy" in g["pspnet_caffe.converter.export"]
    assert ("onnx", True) in {(t, f) for t, f, _ in imports("pspnet_caffe.converter.onnx_export")}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_module_patches_another_and_the_old_paths_are_gone():
    """Each name has one home: nothing attaches a method to PSPNet or writes names into
    psp_torch.config at import (the Caffe side's `from_caffe` is psp_torch.from_caffe), and
    the re-exporting paths psp_torch.graph / .names / .weights / .deploy no longer exist."""
    code = """
import importlib.util
import psp_torch, psp_torch.caffe, psp_torch.config
assert not hasattr(psp_torch.PSPNet, "from_caffe")
assert psp_torch.from_caffe is psp_torch.caffe.pspnet_from_caffe
assert not any(hasattr(psp_torch.config, n) for n in ("config_from_net", "aux_width_of",
                                                      "NotAPSPNet", "STEM_LAYERS"))
for old in ("graph", "names", "weights", "deploy"):
    assert importlib.util.find_spec(f"psp_torch.{old}") is None, old
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def print_graph(prefix: str = "psp_torch") -> None:
    g = graph()
    for name in sorted(g):
        if name.startswith(prefix):
            deps = sorted(d for d in g[name] if d.startswith(prefix))
            print(f"{name} [{_side(name)}] -> {', '.join(deps) or '-'}")


if __name__ == "__main__":
    print_graph(sys.argv[1] if len(sys.argv) > 1 else "psp_torch")
