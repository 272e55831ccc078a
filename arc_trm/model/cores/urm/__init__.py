"""URM: the Universal Reasoning Model (arXiv 2512.14693), as UbiquantAI/URM computes it."""
