"""Builds results/table2.md, table2.csv, ablation.md, robustness.md,
figure2_<dataset>.png and switch_<dataset>.png from the finished runs, and
optionally archives each run's small files.

  python -m asasrec_tf.report --runs_dir=results/runs --out_dir=results
  python -m asasrec_tf.report --runs_dir=results/table2_runs   # from the archive
"""

import os

from absl import flags

from asasrec_tf import errors
from asasrec_tf.data.dataset import atomic_write_text
from asasrec_tf.report import (ablation, figure2, paper, robustness_table,
                               runs, switch, table2)

flags.DEFINE_string("runs_dir", "results/runs", "Run directories to read.")
flags.DEFINE_string("out_dir", "results", "Where the tables and figures go.")
flags.DEFINE_list("unavailable", [], "Datasets whose data is not available "
                  "(run_all.sh passes them); the table says so.")
flags.DEFINE_string("authors_logs", "results/authors_logs.csv", "The "
                    "authors' logged curves, drawn beside ours across the "
                    "switch (skipped if the file does not exist).")
flags.DEFINE_string("archive_dir", None, "Also copy each finished run's "
                    "results.json, robustness.json and compressed per-user "
                    "test metrics here (one directory a run), so that the "
                    "report can be rebuilt from them.")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  found = runs.load_runs(FLAGS.runs_dir)
  os.makedirs(FLAGS.out_dir, exist_ok=True)
  written = []
  logs = switch.load_authors_logs(FLAGS.authors_logs)
  for name, text in (("table2.md", table2.markdown(found, FLAGS.unavailable)),
                     ("table2.csv", table2.csv_text(found, FLAGS.unavailable)),
                     ("ablation.md", ablation.markdown(found)),
                     ("robustness.md", robustness_table.markdown(found))):
    if text:
      path = os.path.join(FLAGS.out_dir, name)
      atomic_write_text(path, text)
      written.append(path)
  try:
    for dataset in paper.DATASETS:
      for path in (figure2.plot(found, dataset, FLAGS.out_dir),
                   switch.plot(found, dataset, FLAGS.out_dir, logs)):
        if path:
          written.append(path)
  except ImportError:
    print("Figure 2 needs matplotlib: pip install -e '.[plot]'")
  if FLAGS.archive_dir and (os.path.abspath(FLAGS.archive_dir) !=
                            os.path.abspath(FLAGS.runs_dir)):
    for run in found.values():
      runs.archive(run, FLAGS.archive_dir)
    written.append(f"{FLAGS.archive_dir}/ ({len(found)} runs)")
  print(f"report from {len(found)} runs in {FLAGS.runs_dir}:")
  for path in written:
    print(f"  {path}")


if __name__ == "__main__":
  errors.run(main)
