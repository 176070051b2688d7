"""The names of every choice a flag offers, and the defaults a flag shares
with a library module.

Kept apart from the modules that implement the choices (and that import
TensorFlow) so that a program parses its flags, prints --help or refuses a
bad value without importing TensorFlow, which takes seconds. Those modules
take their tuples (and defaults) from here, so each exists once.
"""

# training/factory.py
MODELS = ("sasrec", "asasrec", "mostpop", "bpr", "apr")
OPTIMIZERS = ("adam", "lazy_adam")
SEQUENTIAL = ("sasrec", "asasrec")
PAIRWISE = ("bpr", "apr")

# models/layers.py, models/sasrec.py: see SASRec and ASASRec.
BLOCKS = ("kang205", "authors")
LOSSES = ("bce", "bce_authors", "gbce", "ce")
# --loss=gbce's defaults, gSASRec's (Petrov & Macdonald, RecSys 2023): k
# negatives a target and the calibration t.
GBCE_NEGATIVES = 256
GBCE_T = 0.75
ADV_TARGETS = ("both", "output", "input")
ADV_GAMMAS = ("clean", "dropout", "shared")
ADV_GAMMA_USES = ("all", "target")
ADV_PASSES = ("two", "one")

# models/adversarial.py
NORMS = ("row", "global")

# evaluation/ranking.py
CANDIDATES = ("full", "sampled")
NEGATIVE_SAMPLING = ("uniform", "popularity")

# training/distribution.py
STRATEGIES = ("none", "mirrored", "multi_worker")

# data/readers.py
FORMATS = ("sasrec", "movielens", "rating_tsv", "csv", "snap_checkins")
