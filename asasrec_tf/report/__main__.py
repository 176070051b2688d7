"""Builds results/table2.md, table2.csv, figure2_<dataset>.png and
robustness.md from the finished runs.

  python -m asasrec_tf.report --runs_dir=results/runs --out_dir=results
"""

import os

from absl import flags

from asasrec_tf import errors
from asasrec_tf.data.dataset import atomic_write_text
from asasrec_tf.report import figure2, paper, robustness_table, runs, table2

flags.DEFINE_string("runs_dir", "results/runs", "Run directories to read.")
flags.DEFINE_string("out_dir", "results", "Where the tables and figures go.")
flags.DEFINE_list("unavailable", [], "Datasets whose data is not available "
                  "(run_all.sh passes them); the table says so.")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  found = runs.load_runs(FLAGS.runs_dir)
  os.makedirs(FLAGS.out_dir, exist_ok=True)
  written = []
  for name, text in (("table2.md", table2.markdown(found, FLAGS.unavailable)),
                     ("table2.csv", table2.csv_text(found, FLAGS.unavailable)),
                     ("robustness.md", robustness_table.markdown(found))):
    if text:
      path = os.path.join(FLAGS.out_dir, name)
      atomic_write_text(path, text)
      written.append(path)
  try:
    for dataset in paper.DATASETS:
      path = figure2.plot(found, dataset, FLAGS.out_dir)
      if path:
        written.append(path)
  except ImportError:
    print("Figure 2 needs matplotlib: pip install -e '.[plot]'")
  print(f"report from {len(found)} runs in {FLAGS.runs_dir}:")
  for path in written:
    print(f"  {path}")


if __name__ == "__main__":
  errors.run(main)
