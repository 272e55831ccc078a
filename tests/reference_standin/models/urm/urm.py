from models.standin import Model as URM  # noqa: F401
