"""A user's own package for mobilekd: a model factory (nets.py) and a dataset loader (data.py)."""
