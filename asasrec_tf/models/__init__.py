"""Models: Keras layers, SASRec/ASASRec, and the shared adversarial helper."""
