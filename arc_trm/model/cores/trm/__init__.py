"""TRM: the Tiny Recursive Model (arXiv 2510.04871), as SamsungSAILMontreal/TinyRecursiveModels computes it."""
