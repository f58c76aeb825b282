"""Building the Faust app from settings."""

from __future__ import annotations

import ssl
from typing import Any

import faust
from faust.types.auth import CredentialsT

from crmstream.connections import KafkaSettings
from crmstream.settings import Settings


def _credentials(kafka: KafkaSettings) -> CredentialsT | ssl.SSLContext | None:
    context: ssl.SSLContext | None = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
            )
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return context


def create_app(settings: Settings) -> faust.App:
    """A Faust app that speaks raw bytes: validation is pydantic's job, not Faust's models'."""
    datadir = settings.worker.data_dir / settings.worker.app_id
    # Faust creates only the last level of its data folder.
    datadir.mkdir(parents=True, exist_ok=True)
    brokers = [f"kafka://{host.strip()}" for host in settings.kafka.bootstrap.split(",")]
    return faust.App(
        settings.worker.app_id,
        broker=brokers,
        broker_credentials=_credentials(settings.kafka),
        broker_client_id=settings.kafka.client_id,
        autodiscover=False,
        datadir=str(datadir),
        # Profiles live in Redis; Faust tables (and RocksDB) are not used.
        store="memory://",
        # topic_disable_leader stays off: the leader topic is the only one Faust's own
        # consumer subscribes to (events come through streams/consumer.py), and aiokafka
        # refuses a consumer with no topic at all.
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topics.event_partitions,
        topic_replication_factor=settings.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout_s / 3),
        web_host=settings.worker.web_host,
        # Listen where the setting says (loopback unless told): Faust would take every
        # interface.
        web_bind=settings.worker.web_host,
        web_port=settings.worker.web_port,
    )


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The same connection settings for aiokafka clients of our own (the batch consumer)."""
    options: dict[str, Any] = {
        "bootstrap_servers": [host.strip() for host in kafka.bootstrap.split(",")],
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    credentials = _credentials(kafka)
    if isinstance(credentials, ssl.SSLContext):
        options["ssl_context"] = credentials
    elif credentials is not None:
        options["ssl_context"] = getattr(credentials, "ssl_context", None)
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options
