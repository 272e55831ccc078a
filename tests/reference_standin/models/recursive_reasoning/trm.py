from models.standin import Model as TinyRecursiveReasoningModel_ACTV1  # noqa: F401
