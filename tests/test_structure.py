"""The package's shape (DESIGN.md section 2): no import cycles, modules in their room, one way to do a thing."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "asym_jax"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: pathlib.Path, modules: dict) -> set[str]:
    """Every asym_jax module ``name`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules}
            targets = submodules | ({base} if len(submodules) < len(node.names) else set())
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.add(target)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycles_even_through_function_level_imports():
    graph = _graph()
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                assert nxt != start, f"import cycle: {' -> '.join(path + (start,))}"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + (nxt,)))


def test_metrics_and_models_stay_in_their_room():
    for name, imports in _graph().items():
        if name.startswith(("asym_jax.metrics", "asym_jax.models")):
            bad = sorted(i for i in imports if i.startswith(("asym_jax.train", "asym_jax.data", "asym_jax.experiments",
                                                              "asym_jax.eval", "asym_jax.score")))
            assert not bad, f"{name} imports {bad}"


def test_eval_and_weights_do_not_import_the_trainers():
    """Data flows one way: evaluation reads what training wrote (checkpoints, files), never its code; the
    trunk resolution every job shares lives in asym_jax.weights.selection."""
    for name, imports in _graph().items():
        if name.startswith(("asym_jax.eval", "asym_jax.weights", "asym_jax.losses")):
            bad = sorted(i for i in imports if i.startswith(("asym_jax.train", "asym_jax.experiments")))
            assert not bad, f"{name} imports {bad}"


def test_the_command_line_module_is_not_a_library():
    users = sorted(name for name, imports in _graph().items() if "asym_jax.score" in imports)
    assert not users, f"{users} import the CLI module asym_jax.score; import asym_jax.eval.scoring instead"


def test_files_are_replaced_atomically_in_one_place():
    writers = sorted(str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*.py")
                     if "os.replace(" in path.read_text())
    assert writers == ["asym_jax/io.py"], writers


def test_atomic_writer_keeps_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    import json
    import os

    from asym_jax.io import write_json

    target = tmp_path / "sub" / "result.json"
    write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1} and oct(target.stat().st_mode & 0o777) != "0o600"

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    try:
        write_json(target, {"a": 2})
    except OSError:
        pass
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temporary file left behind
