"""wotr: trust a release only when several independent builders signed the same digest."""

__version__ = "0.1.0"
