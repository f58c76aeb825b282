"""The Redis Functions of the engine: each library a Python module of its calls beside
the Lua that serves them, the contract between the two written once (contract.py).

- ``contract``: calls and replies as frozen dataclasses; the layouts Lua reads them by
- ``library``: libraries built from their parts, named by their source, loaded, called
- ``offsets``: the offsets a partition's state reflects
"""

from handlers.functions.library import FunctionLibrary, Library

__all__ = ["FunctionLibrary", "Library"]
