"""Prints the statistics of a dataset as one JSON object.

  python -m asasrec_tf.data --dataset=video --data_dir=../shared/data --split=loo
"""

import json

from asasrec_tf import cli, errors


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  print(json.dumps(cli.data_from_flags().stats()))


if __name__ == "__main__":
  cli.run(main, __doc__, cli.define_data_flags)
