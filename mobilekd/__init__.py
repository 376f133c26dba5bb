"""mobilekd: turn a big model into one that runs well on a phone, and prove it fits."""

__version__ = "0.1.0"
