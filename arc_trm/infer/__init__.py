"""Stage 3: from a model and a dataset to answers: run every augmented view, invert, vote, choose two
attempts, score; the submission file. Used by in-training evaluation and by ``predict``."""
