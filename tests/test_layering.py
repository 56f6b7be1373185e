"""Imports point down the layers: read every module's import statements (AST, nothing imported) and check the
rules README's Architecture section states."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "vision_jax")


def _modules():
  """{dotted module name: path} of every module of the package."""
  out = {}
  for directory, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        out[dotted.removesuffix(".__init__")] = path
  return out


MODULES = _modules()


def _imports(path, top_level_only=False):
  """Dotted names a module imports (`from a.b import c` gives a.b and a.b.c)."""
  tree = ast.parse(open(path).read())
  nodes = tree.body if top_level_only else ast.walk(tree)
  names = set()
  for node in nodes:
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _violations(prefixes, forbidden):
  found = []
  for module, path in MODULES.items():
    if any(module == p or module.startswith(p + ".") for p in prefixes):
      for name in _imports(path):
        if any(name == f or name.startswith(f + ".") for f in forbidden):
          found.append(f"{module} imports {name}")
  return found


@pytest.mark.parametrize("layer", ["vision_jax.models", "vision_jax.layers", "vision_jax.ops", "vision_jax.losses"])
def test_models_layers_ops_losses_do_not_import_tasks_the_loop_or_configs(layer):
  forbidden = ["vision_jax.train", "vision_jax.train_lib", "vision_jax.tasks", "vision_jax.configs", "vision_jax.main"]
  assert _violations([layer], forbidden) == []


def test_nothing_imports_main_and_library_code_never_imports_configs():
  assert _violations(["vision_jax"], ["vision_jax.main"]) == []
  assert _violations(["vision_jax"], ["vision_jax.configs"]) == []


def test_evaluation_does_not_import_the_loop_and_parallel_not_the_pipeline():
  assert _violations(["vision_jax.evaluation"], ["vision_jax.train", "vision_jax.train_lib.setup",
                                                 "vision_jax.tasks"]) == []
  assert _violations(["vision_jax.train_lib.parallel"], ["vision_jax.data"]) == []


def test_tasks_reach_the_loop_only_through_what_they_are_given():
  assert _violations(["vision_jax.tasks"], ["vision_jax.train", "vision_jax.train_lib.setup"]) == []


def test_cpu_rewrites_live_in_backends_and_ops_has_no_commands():
  assert not any(m.startswith("vision_jax.layers.") and ("conv_vjp" in m or "channel_stats" in m) for m in MODULES)
  for module, path in MODULES.items():
    if module.startswith("vision_jax.ops"):
      assert "__main__" not in open(path).read(), f"{module} is a command; commands live in bench/ or tools"


def test_no_import_cycle_in_data():
  graph = {}
  for module, path in MODULES.items():
    if module.startswith("vision_jax.data"):
      graph[module] = {n for n in _imports(path, top_level_only=True) if n in MODULES and n.startswith("vision_jax.data")
                       and n != module}
  state = {}

  def visit(node, trail):
    if state.get(node) == "done":
      return
    assert state.get(node) != "open", f"import cycle: {' -> '.join(trail + [node])}"
    state[node] = "open"
    for child in sorted(graph.get(node, ())):
      if not (node.startswith(child + ".") or child == node.rsplit(".", 1)[0]):  # a package importing its own parts
        visit(child, trail + [node])
    state[node] = "done"

  for node in sorted(graph):
    visit(node, [])


def test_augmentation_has_one_home():
  assert not any(m == "vision_jax.augment" or m.startswith("vision_jax.augment.") for m in MODULES)
  assert "vision_jax.data.augment" in MODULES and "vision_jax.data.op_spec" not in MODULES


def test_modules_stay_small():
  long = {m: n for m, p in MODULES.items() if (n := sum(1 for _ in open(p))) > 520}
  assert long == {}
