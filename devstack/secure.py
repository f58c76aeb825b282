"""The secured local stack (`crmstream stack up --secure`): a second broker and Redis, on
their own ports, that accept only TLS with authentication.

- A certificate authority and a server certificate for 127.0.0.1 and localhost, made
  once with openssl into ``<state>/secure/pki``.
- Kafka: one SASL_SSL listener, SCRAM-SHA-512 users written into the storage when it
  is formatted (the broker's own, for the listener it also talks to itself on, and the
  clients').
- Redis: TLS only (no plain port) and ACL users (the default user is off).
- ``<state>/secure/env``: the ``CRMSTREAM_*`` variables that point a client at them,
  passwords included (mode 0600), to ``source`` or to read with :func:`secure_settings`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Final

from pydantic import RedisDsn, SecretStr

from crmstream.connections import KafkaSettings
from crmstream.errors import StackError
from crmstream.settings import Settings
from devstack.kafka import KafkaBroker
from devstack.redis import RedisServer
from devstack.settings import StackSettings
from devstack.tools import require

SCRAM: Final = "SCRAM-SHA-512"
_ADMIN: Final = "broker"
_CLIENT: Final = "crmstream"


def secure_home(stack: StackSettings) -> Path:
    return stack.state_dir / "secure"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as private:
        private.write(text)


class Material:
    """The CA, the server's key and certificate, and the passwords: made once, kept."""

    def __init__(self, stack: StackSettings) -> None:
        self.home = secure_home(stack)
        self.pki = self.home / "pki"
        self.ca = self.pki / "ca.pem"
        self.key = self.pki / "server.key"
        self.cert = self.pki / "server.pem"
        self.bundle = self.pki / "server-bundle.pem"  # key and certificate, for Kafka
        self.passwords = self.home / "passwords"

    def ensure(self) -> dict[str, str]:
        if not self.bundle.exists():
            self._make_certificates()
        if not self.passwords.exists():
            made = {name: secrets.token_hex(16) for name in ("broker", "kafka", "redis")}
            _write_private(self.passwords, "".join(f"{k}={v}\n" for k, v in made.items()))
        return self.read_passwords()

    def read_passwords(self) -> dict[str, str]:
        lines = self.passwords.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if line)

    def _make_certificates(self) -> None:
        openssl = require("openssl")
        self.pki.mkdir(parents=True, exist_ok=True)
        ca_key = self.pki / "ca.key"
        request = self.pki / "server.csr"
        extensions = self.pki / "server.ext"
        extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        steps = [
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-noenc", "-days", "3650",
             "-keyout", str(ca_key), "-out", str(self.ca), "-subj", "/CN=crmstream local CA"],
            [openssl, "req", "-newkey", "rsa:2048", "-noenc", "-keyout", str(self.key),
             "-out", str(request), "-subj", "/CN=localhost"],
            [openssl, "x509", "-req", "-in", str(request), "-CA", str(self.ca),
             "-CAkey", str(ca_key), "-CAcreateserial", "-days", "3650",
             "-extfile", str(extensions), "-out", str(self.cert)],
        ]  # fmt: skip
        for step in steps:
            made = subprocess.run(step, capture_output=True, text=True, check=False)
            if made.returncode != 0:
                raise StackError(f"openssl {step[1]} failed: {made.stderr.strip()}")
        ca_key.chmod(0o600)
        self.key.chmod(0o600)
        _write_private(self.bundle, self.key.read_text() + self.cert.read_text())


def secure_settings(settings: Settings, stack: StackSettings) -> Settings:
    """``settings`` pointed at the secured services, as a client of theirs (the same
    values as :func:`write_env`)."""
    material = Material(stack)
    passwords = material.read_passwords()
    kafka = KafkaSettings(
        bootstrap=f"127.0.0.1:{stack.secure_kafka_port}",
        client_id=settings.kafka.client_id,
        security_protocol="SASL_SSL",
        sasl_mechanism=SCRAM,
        sasl_username=_CLIENT,
        sasl_password=SecretStr(passwords["kafka"]),
        ssl_cafile=material.ca,
    )
    redis = settings.redis.model_copy(
        update={
            "url": RedisDsn(f"rediss://127.0.0.1:{stack.secure_redis_port}/0"),
            "username": _CLIENT,
            "password": SecretStr(passwords["redis"]),
            "ssl_ca_certs": material.ca,
        }
    )
    return settings.model_copy(update={"kafka": kafka, "redis": redis})


def write_env(settings: Settings, stack: StackSettings) -> Path:
    """``<state>/secure/env``: the variables of :func:`secure_settings`, to source."""
    secured = secure_settings(settings, stack)
    values: dict[str, object] = {
        **{f"CRMSTREAM_KAFKA_{name.upper()}": value for name, value in secured.kafka},
        **{f"CRMSTREAM_REDIS_{name.upper()}": value for name, value in secured.redis},
    }
    lines = [
        f"export {name}={value.get_secret_value() if isinstance(value, SecretStr) else value}\n"
        for name, value in values.items()
        if value is not None
    ]
    path = secure_home(stack) / "env"
    _write_private(path, "".join(lines))
    return path


class SecureKafka(KafkaBroker):
    """The broker with a SASL_SSL listener only (its controller listens on loopback)."""

    def __init__(self, settings: Settings, stack: StackSettings) -> None:
        self.material = Material(stack)
        own = stack.model_copy(
            update={
                "state_dir": secure_home(stack),
                "kafka_controller_port": stack.secure_kafka_controller_port,
            }
        )
        kafka = settings.kafka.model_copy(
            update={"bootstrap": f"127.0.0.1:{stack.secure_kafka_port}"}
        )
        super().__init__(settings.model_copy(update={"kafka": kafka}), own)

    def listener_config(self) -> dict[str, str]:
        passwords = self.material.ensure()
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{_ADMIN}" password="{passwords["broker"]}";'
        )
        return {
            "listeners": (
                f"SECURE://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"SECURE://{self.host}:{self.port}",
            "inter.broker.listener.name": "SECURE",
            "listener.security.protocol.map": "SECURE:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            "listener.name.secure.scram-sha-512.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.material.bundle),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.material.ca),
        }

    def scram_users(self) -> list[str]:
        passwords = self.material.ensure()
        return [
            f"{SCRAM}=[name={_ADMIN},password={passwords['broker']}]",
            f"{SCRAM}=[name={_CLIENT},password={passwords['kafka']}]",
        ]


class SecureRedis(RedisServer):
    """Redis on a TLS port only, with an ACL user for crmstream and the default user off."""

    def __init__(self, settings: Settings, stack: StackSettings) -> None:
        self.material = Material(stack)
        own = stack.model_copy(update={"state_dir": secure_home(stack)})
        redis = settings.redis.model_copy(
            update={
                "url": RedisDsn(f"rediss://127.0.0.1:{stack.secure_redis_port}/0"),
                "password": None,
            }
        )
        super().__init__(settings.model_copy(update={"redis": redis}), own)

    def config(self) -> str:
        passwords = self.material.ensure()
        plain = super().config().replace(f"port {self.port}\n", "port 0\n")
        return plain + "".join(
            f"{line}\n"
            for line in (
                f"tls-port {self.port}",
                f'tls-cert-file "{self.material.cert}"',
                f'tls-key-file "{self.material.key}"',
                f'tls-ca-cert-file "{self.material.ca}"',
                "tls-auth-clients no",
                "user default off",
                f"user {_CLIENT} on >{passwords['redis']} ~* &* +@all",
            )
        )
