"""Builds results/table2.md, table2.csv, ablation.md, robustness.md,
figure2_<dataset>.png and switch_<dataset>.png from the finished runs, and
optionally archives each run's small files.

  python -m asasrec_tf.report --runs_dir=results/runs --out_dir=results
  python -m asasrec_tf.report --runs_dir=results/table2_runs   # from the archive
"""

import os

from absl import flags

from asasrec_tf import cli, errors
from asasrec_tf.fileio import atomic_write_text
from asasrec_tf.report import (ablation, beyond, figure2, paper,
                               robustness_table, runs, switch, table2)

FLAGS = flags.FLAGS


def define_flags() -> None:
  g = "Report"
  cli.define_flag(g, "string", "runs_dir", "results/runs",
                  "Run directories to read.")
  cli.define_flag(g, "string", "out_dir", "results",
                  "Where the tables and figures go.")
  cli.define_flag(g, "list", "unavailable", [], "Datasets whose data is not "
                  "available (run_all.sh passes them); the table says so.")
  cli.define_flag(g, "string", "authors_logs", "results/authors_logs.csv",
                  "The authors' logged curves, drawn beside ours across the "
                  "switch (skipped if the file does not exist).")
  cli.define_flag(g, "string", "archive_dir", None, "Also copy each "
                  "finished run's results.json, robustness.json and "
                  "compressed per-user test metrics here (one directory a "
                  "run), so that the report can be rebuilt from them.")
  cli.define_flag(g, "bool", "smoke", False, "Mark every file written as a "
                  "smoke test (run_all.sh --quick): a check of the pipeline, "
                  "not a result.")


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  found = runs.load_runs(FLAGS.runs_dir)
  os.makedirs(FLAGS.out_dir, exist_ok=True)
  written = []
  logs = switch.load_authors_logs(FLAGS.authors_logs)
  source = os.path.join(FLAGS.runs_dir, "*")
  for name, text in (
      ("table2.md", table2.markdown(found, FLAGS.unavailable, source)),
      ("table2.csv", table2.csv_text(found, FLAGS.unavailable)),
      ("ablation.md", ablation.markdown(found, source)),
      ("robustness.md", robustness_table.markdown(found, source)),
      ("beyond.md", beyond.markdown(found, source))):
    if text:
      path = os.path.join(FLAGS.out_dir, name)
      atomic_write_text(path, paper.smoke_mark(text, name) if FLAGS.smoke
                        else text)
      written.append(path)
  title = paper.SMOKE_TITLE if FLAGS.smoke else ""
  try:
    for dataset in paper.DATASETS:
      for path in (figure2.plot(found, dataset, FLAGS.out_dir, title=title),
                   switch.plot(found, dataset, FLAGS.out_dir, logs,
                               title=title),
                   beyond.plot_sensitivity(found, dataset, FLAGS.out_dir,
                                           title=title)):
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
  cli.run(main, __doc__, define_flags)
