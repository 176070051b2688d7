"""The numbers the paper reports, and the names run_all.sh gives runs.

Table 2 of Manotumruksa & Yilmaz (SIGIR'20): full-ranking HR@100 and
NDCG@100, the epoch selected on the test set (see ../shared/SPEC.md, fact 1).
A ``*`` in the paper marks a significant difference from the second best.
"""

from __future__ import annotations

# Table 2's rows. ASASRec twice: Eq. 9 as the paper writes it, and the
# step of the authors' code, which made the paper's numbers.
MODELS = ("mostpop", "bpr", "apr", "sasrec", "asasrec", "asasrec-authors")
# run_all.sh trains each base model for some epochs (its "-pre" run), then
# continues it without and with the adversary: (base, adversarial...).
GROUPS = (("bpr", ("apr",)), ("sasrec", ("asasrec", "asasrec-authors")))
ADVERSARIAL = tuple(a for _, advs in GROUPS for a in advs)
BASE_OF = {m: base for base, advs in GROUPS for m in (base, *advs)}
MODEL_NAMES = {"mostpop": "MostPop", "bpr": "BPR", "apr": "APR",
               "sasrec": "SASRec", "asasrec": "ASASRec (Eq. 9)",
               "asasrec-authors": "ASASRec (authors' step)"}
# The paper's own rows, and the paper's row each of ours is compared with.
PAPER_MODELS = ("mostpop", "bpr", "apr", "sasrec", "asasrec")
PAPER_ROW = {m: m for m in MODELS}
PAPER_ROW["asasrec-authors"] = "asasrec"

# Column order of Table 2, with the substitute beside the data it replaces;
# the synthetic data last (no paper numbers; for smoke runs).
DATASETS = ("ml-1m", "beauty", "beauty-bert4rec", "video", "foursquare",
            "brightkite", "yelp", "synthetic")
DATASET_NAMES = {"ml-1m": "MovieLens", "beauty": "Beauty",
                 "beauty-bert4rec": "Beauty (BERT4Rec substitute)",
                 "video": "Video", "foursquare": "Foursquare",
                 "brightkite": "Brightkite", "yelp": "Yelp",
                 "synthetic": "Synthetic"}

# TABLE2[dataset][model] = (HR@100, NDCG@100).
TABLE2 = {
    "ml-1m": {"mostpop": (0.2295, 0.0562), "bpr": (0.4111, 0.1069),
              "apr": (0.4156, 0.1093), "sasrec": (0.6272, 0.1957),
              "asasrec": (0.6482, 0.2114)},
    "beauty": {"mostpop": (0.0367, 0.0089), "bpr": (0.0841, 0.0243),
               "apr": (0.0914, 0.0269), "sasrec": (0.1223, 0.0368),
               "asasrec": (0.1374, 0.042)},
    "video": {"mostpop": (0.0879, 0.0248), "bpr": (0.2344, 0.0646),
              "apr": (0.2481, 0.0693), "sasrec": (0.3105, 0.0853),
              "asasrec": (0.3356, 0.0974)},
    "foursquare": {"mostpop": (0.1137, 0.0847), "bpr": (0.8628, 0.5956),
                   "apr": (0.8674, 0.5696), "sasrec": (0.8674, 0.6833),
                   "asasrec": (0.8760, 0.7089)},
    "brightkite": {"mostpop": (0.2372, 0.1157), "bpr": (0.7064, 0.5424),
                   "apr": (0.7071, 0.5318), "sasrec": (0.7395, 0.5651),
                   "asasrec": (0.7340, 0.5714)},
    "yelp": {"mostpop": (0.0775, 0.0200), "bpr": (0.2488, 0.0677),
             "apr": (0.2618, 0.0700), "sasrec": (0.2685, 0.0763),
             "asasrec": (0.2888, 0.0841)},
}

PROTOCOLS = ("paper", "clean")
PROTOCOL_TITLES = {
    "paper": ("the paper's protocol: split `loo` (last item = test, no "
              "validation), full ranking over all items not in the history, "
              "K = 100, **epoch selected on the test set** as the authors' "
              "code did (so these numbers are optimistic)"),
    "clean": ("the clean protocol: split `loo_valid` (last item = test, "
              "second-to-last = validation), full ranking, K = 10 and 100, "
              "epoch selected on validation NDCG@10"),
}


def run_name(dataset: str, protocol: str, model: str, stage: str = "") -> str:
  """The run directory name run_all.sh uses (stage: '' or 'pre')."""
  return f"{dataset}-{protocol}-{model}" + (f"-{stage}" if stage else "")


SMOKE_TITLE = "SMOKE TEST, not a result"
_SMOKE = ("**SMOKE TEST** (`run_all.sh --quick`: a few epochs): these files "
          "check that the pipeline runs end to end; their numbers, "
          "significance marks and verdicts say nothing about the paper.")


def smoke_mark(text: str, name: str) -> str:
  """``text`` (a report file called ``name``) marked as a smoke test."""
  if name.endswith(".csv"):
    return f"# {_SMOKE}\n" + text
  title, _, rest = text.partition("\n")
  return f"{title} ({SMOKE_TITLE})\n\n{_SMOKE}\n{rest}"


def paper_value(dataset: str, model: str, metric: str):
  """The paper's Table 2 value for our row ``model`` (None if none)."""
  row = TABLE2.get(dataset, {}).get(PAPER_ROW[model])
  if row is None or metric not in ("hr@100", "ndcg@100"):
    return None
  return row[0] if metric == "hr@100" else row[1]
