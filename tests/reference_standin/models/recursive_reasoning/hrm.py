from models.standin import Model as HierarchicalReasoningModel_ACTV1  # noqa: F401
