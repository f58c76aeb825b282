"""docker-compose.yml cannot run here; it must still be right."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from crmstream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_stack_has_every_service() -> None:
    services = _compose()["services"]
    assert {"kafka", "redis", "worker", "console", "prometheus", "grafana"} <= set(services)


def test_kafka_image_matches_the_local_stack_version() -> None:
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match
    assert _compose()["services"]["kafka"]["image"] == f"apache/kafka:{match[1]}"


def test_crmstream_services_use_variables_that_settings_understand(
    monkeypatch: Any,
) -> None:
    services = _compose()["services"]
    for name in ("worker", "topics", "console"):
        env = services[name]["environment"]
        assert env["CRMSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["CRMSTREAM_REDIS_URL"].startswith("redis://redis:")
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()
        assert settings.kafka.bootstrap == "kafka:9092"
        assert settings.redis.host_port == ("redis", 6379)
        assert settings.worker.web_host == "0.0.0.0"  # noqa: S104 -- inside its container
        # No default secret: compose refuses to start until the operator sets one.
        assert env["CRMSTREAM_PRIVACY_HASH_KEY"].startswith("${CRMSTREAM_PRIVACY_HASH_KEY:?")


def test_every_published_port_is_bound_to_the_host_s_loopback() -> None:
    """Kafka and Redis take anyone without a password here, Grafana lets viewers in
    anonymously: none of them may answer on the host's other interfaces."""
    published = {name: service.get("ports", []) for name, service in _compose()["services"].items()}
    assert published["worker"] == ["127.0.0.1:6066:6066"]
    assert published["console"] == ["127.0.0.1:6070:6070"]
    assert published["kafka"] == ["127.0.0.1:9092:9094"]
    assert published["redis"] == ["127.0.0.1:6379:6379"]
    # The long form (a mapping with host_ip) or a bare "PORT" would escape the check.
    open_to_all = [
        f"{name}: {port}"
        for name, ports in published.items()
        for port in ports
        if not (isinstance(port, str) and port.startswith("127.0.0.1:") and port.count(":") == 2)
    ]
    assert open_to_all == []


def test_the_image_holds_every_installed_package() -> None:
    """pip install . in the image finds only what the Dockerfile copied in."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    included = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert included
    packages = {name.strip(' "*') for name in included[1].split(",")} - {"bench"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert {
        package for package in packages if f"COPY {package} ./{package}" not in dockerfile
    } == set()


def test_mounted_files_exist() -> None:
    for service in _compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert (ROOT / "Dockerfile").exists()
