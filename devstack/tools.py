"""The programs the local stack runs, and one clear line when one is missing."""

from __future__ import annotations

import shutil
from typing import Final

from crmstream.errors import MissingToolError

INSTALL_HINTS: Final = {
    "java": "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jre-headless)",
    "mvn": "install Maven to fetch the Kafka jars once (Debian: apt-get install maven)",
    "redis-server": "install Redis 7 or newer (Debian: apt-get install redis-server)",
    "openssl": "install OpenSSL for the secured stack (Debian: apt-get install openssl)",
}


def require(tool: str) -> str:
    """Absolute path of tool, or MissingToolError naming what to install."""
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(tool, INSTALL_HINTS.get(tool, f"install {tool}"))
    return path
