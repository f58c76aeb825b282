"""The round trip, the profile oracle and the trigger oracle through SASL_SSL and Redis
TLS with ACL users; and a wrong password or an untrusted certificate refused at start in
one line, within seconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import RedisDsn, SecretStr

from crmstream.settings import Settings
from devstack import StackSettings
from devstack.probe import kafka_answers, redis_answers
from tests.integration.test_kafka_roundtrip import (
    test_ten_thousand_messages_come_back_exactly as test_round_trip,
)
from tests.integration.test_profiles import (
    test_every_field_of_every_profile_matches_the_reference as test_profiles,
)
from tests.integration.test_triggers_oracle import (
    events,
    oracle_settings,
)
from tests.integration.test_triggers_oracle import (
    test_exactly_the_triggers_the_reference_expects as test_triggers,
)
from tests.support import require_tool, started_worker

__all__ = ["events", "oracle_settings", "test_profiles", "test_round_trip", "test_triggers"]


def with_kafka(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update=changes)})


def with_redis(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"redis": settings.redis.model_copy(update=changes)})


def other_ca(tmp_path: Path) -> Path:
    """A certificate authority that signed nothing the stack serves."""
    ca = tmp_path / "other-ca.pem"
    subprocess.run(
        [require_tool("openssl", "openssl"), "req", "-x509", "-newkey", "rsa:2048", "-noenc",
         "-days", "1", "-keyout", str(tmp_path / "other-ca.key"), "-out", str(ca),
         "-subj", "/CN=not the stack's CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    return ca


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        ("kafka password", "Authentication failed"),
        ("kafka certificate", "certificate verify failed"),
        ("redis password", "refused the credentials"),
        ("redis certificate", "certificate verify failed"),
    ],
)
def test_a_wrong_secret_is_refused_at_start_in_one_line(
    settings: Settings, tmp_path: Path, broken: str, said: str
) -> None:
    wrong = SecretStr("not-the-password")
    if broken == "kafka password":
        settings = with_kafka(settings, sasl_password=wrong)
    elif broken == "kafka certificate":
        settings = with_kafka(settings, ssl_cafile=other_ca(tmp_path))
    elif broken == "redis password":
        settings = with_redis(settings, password=wrong)
    else:
        settings = with_redis(settings, ssl_ca_certs=other_ca(tmp_path))
    status, last_line, seconds = started_worker(settings, tmp_path)
    assert status == 1
    assert last_line.startswith("error: ")
    assert said in last_line
    assert "not-the-password" not in last_line
    assert seconds < 30


def test_the_secured_services_take_nothing_in_clear(
    settings: Settings, stack_settings: StackSettings
) -> None:
    """No plain connection, no default user: only TLS with the stack's users."""
    env = stack_settings.state_dir / "secure" / "env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert "CRMSTREAM_KAFKA_SASL_PASSWORD=" in env.read_text()
    plain_kafka = settings.kafka.model_copy(update={"security_protocol": "PLAINTEXT"})
    assert not kafka_answers(settings.model_copy(update={"kafka": plain_kafka}))
    plain_redis = settings.redis.model_copy(
        update={"url": RedisDsn(str(settings.redis.url).replace("rediss://", "redis://"))}
    )
    assert not redis_answers(settings.model_copy(update={"redis": plain_redis}))
    nobody = settings.redis.model_copy(update={"username": None, "password": None})
    assert not redis_answers(settings.model_copy(update={"redis": nobody}))
    assert redis_answers(settings)
    assert kafka_answers(settings)
