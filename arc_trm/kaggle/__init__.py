"""Kaggle packaging: the offline dataset (wheels + checkpoint) and the notebook that runs predict."""
