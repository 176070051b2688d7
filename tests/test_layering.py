"""Imports point down the layers: a module never imports one above it."""

import ast
import os

from tests.conftest import REPO

PACKAGE = os.path.join(REPO, "asasrec_tf")
# Lowest first; a module may import its own layer and those before it.
LAYERS = [
    {"errors", "fileio", "choices"},
    {"data"},
    {"models"},
    {"evaluation"},
    {"training"},
    {"report", "artifacts", "serving"},
    {"cli", "main", "recommend", "export", "robustness", "bench",
     "bench_pmixer"},
]


def layer_of(module: str) -> int:
  top = module.split(".")[1] if module.count(".") else module
  for i, names in enumerate(LAYERS):
    if top in names:
      return i
  raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def modules():
  for root, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(root, f), REPO)[:-3]
        yield rel.replace(os.sep, ".").replace(".__init__", ""), \
            os.path.join(root, f)


def test_imports_point_down():
  wrong = []
  for name, path in modules():
    if name == "asasrec_tf" or name.endswith("__main__"):
      continue   # the package itself and `python -m` entry points
    here = layer_of(name)
    with open(path) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      targets = []
      if isinstance(node, ast.ImportFrom) and node.module and \
          node.module.startswith("asasrec_tf"):
        targets = [node.module] if node.module != "asasrec_tf" else [
            f"asasrec_tf.{a.name}" for a in node.names]
      elif isinstance(node, ast.Import):
        targets = [a.name for a in node.names if a.name.startswith(
            "asasrec_tf.")]
      for target in targets:
        if layer_of(target) > here:
          wrong.append(f"{name} imports {target}")
  assert not wrong, "\n".join(wrong)
