"""Deprecated: the timing code's former single module. Import from `explorer.timing` instead.

Kept only while app.py (`from explorer.timing import latency`) and explorer/lab/ still import
through it; remove it once they use the package. Each name is looked up on the package when
it is read, so a wrapper set on `explorer.timing` is seen through this module too.
"""
import explorer.timing as _timing


def __getattr__(name: str):
    return getattr(_timing, name)


def __dir__() -> list[str]:
    return list(_timing.__all__)
