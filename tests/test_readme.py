"""The README is a landing page that stays true: its commands use flags the
programs have, its result numbers are in the committed results, its Table 2
is the report's, and its links lead somewhere."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

README = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
DOCS = os.path.join(REPO, "docs")


def _bash_lines(text):
  lines = []
  for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
    lines += [line.split("#")[0].strip() for line in block.splitlines()]
  return [line for line in lines if line]


def test_it_opens_with_the_set_up_and_the_test_command_ci_runs():
  first = _bash_lines(README)[:2]
  assert first[0].startswith("python3 -m venv .venv && .venv/bin/pip install")
  assert first[0].endswith(".venv/bin/python -m asasrec_tf.main")
  ci = open(os.path.join(REPO, ".ci", "run")).read()
  assert first[1] in ci.splitlines()       # exactly the README's command


def test_it_stays_short():
  # what a new user needs; the rest lives in docs/
  assert len(README.split()) <= 2200


@pytest.mark.parametrize("program", sorted(set(re.findall(
    r"-m asasrec_tf\.([a-z_]+)", "\n".join(_bash_lines(README))))))
def test_every_flag_of_its_commands_exists(program):
  lines = [line for line in _bash_lines(README)
           if f"-m asasrec_tf.{program} " in line + " "]
  flags = {f for line in lines for f in re.findall(r"(--[a-z_]+)", line)}
  out = subprocess.run([sys.executable, "-m", f"asasrec_tf.{program}",
                        "--help"], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  known = set(re.findall(r"^  (--[a-z_]+) \(default", out.stdout, re.M))
  known |= {"--help", "--flagfile"}
  assert flags <= known, flags - known


def test_every_run_all_option_exists():
  lines = [line for line in _bash_lines(README) if "./run_all.sh" in line]
  options = {o for line in lines for o in re.findall(r"(--[a-z_]+)", line)}
  out = subprocess.run(["bash", os.path.join(REPO, "run_all.sh"), "--help"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
  assert options and options <= set(re.findall(r"(--[a-z_]+)", out.stdout))


def test_its_table_2_is_the_reports():
  block = README.split("<!-- table2")[1].split("<!-- /table2 -->")[0]
  rows = [line for line in block.splitlines() if line.startswith("|")]
  report = open(os.path.join(REPO, "results", "table2.md"),
                encoding="utf-8").read()
  table_a = report.split("## (a)")[1].split("\n\n|", 1)[1]
  first_table = ("|" + table_a).split("\n\n")[0].splitlines()
  assert rows == first_table


def _results_text():
  text = ""
  folder = os.path.join(REPO, "results")
  for name in sorted(os.listdir(folder)):
    if name.endswith((".md", ".csv")):
      with open(os.path.join(folder, name), encoding="utf-8") as f:
        text += f.read()
  return text.replace("−", "-")


def test_every_result_it_states_is_in_the_committed_results():
  # result numbers: four decimals, signed percentages, p-values like 2.4e-11
  text = README.split("## Results", 1)[1].replace("−", "-")
  text = text.split("<!-- /table2 -->", 1)[1]     # the table is checked above
  numbers = set(re.findall(r"(?<![\d.])\d\.\d{4}(?!\d)", text))
  numbers |= {m.replace(" ", "") for m in re.findall(r"[+-]\d+\.\d %", text)}
  numbers |= set(re.findall(r"\d\.\de-\d+", text))
  results = _results_text().replace(" %", "%")
  missing = sorted(n for n in numbers if n not in results)
  assert numbers and not missing, missing


@pytest.mark.parametrize("page", ["README.md"] + sorted(
    os.path.join("docs", n) for n in os.listdir(DOCS) if n.endswith(".md")))
def test_its_links_lead_to_files(page):
  with open(os.path.join(REPO, page), encoding="utf-8") as f:
    text = f.read()
  base = os.path.dirname(os.path.join(REPO, page))
  for target in re.findall(r"\]\(([^)\s]+)\)", text):
    if target.startswith(("http", "#", "mailto:")):
      continue
    path = target.split("#")[0]
    assert os.path.exists(os.path.join(base, path)), (page, target)
