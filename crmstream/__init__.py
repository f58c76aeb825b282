"""crmstream: the real-time customer-behaviour engine.

This package holds what every layer shares (settings, errors, names of topics
and keys) and the local development stack. The engine itself lives in the
top-level packages ``streams`` → ``handlers`` → ``rules`` → ``schemas``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crmstream")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
