"""A single-node Kafka broker in KRaft mode (combined broker and controller) on loopback.

The jars come from Maven Central through a small pom (``deploy/kafka/pom.xml``),
copied once into a cache folder keyed by the pom's content. We start the JVM
ourselves rather than through ``kafka-server-start.sh`` (which Maven does not
ship), so the script's defaults are restated here: heap, G1 settings,
``kafka.logs.dir`` and a log4j configuration.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import uuid
from pathlib import Path
from typing import Final

from crmstream.errors import StackError
from crmstream.settings import Settings
from devstack.process import ManagedProcess
from devstack.settings import StackSettings
from devstack.tools import require

_JVM_PERFORMANCE_OPTS: Final = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)

_LOG4J: Final = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
"""


def new_cluster_id() -> str:
    """A base64 UUID of 22 characters, as ``kafka-storage random-uuid`` prints.

    Like Kafka's own ``Uuid.randomUuid``, it never starts with "-": one id in 64
    would, and command-line parsers take such an argument for an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def default_pom() -> Path:
    """deploy/kafka/pom.xml of the checkout this package runs from."""
    return Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "pom.xml"


class KafkaBroker:
    """The broker of the local stack: jars, storage, configuration, process."""

    def __init__(self, settings: Settings, stack: StackSettings) -> None:
        self.settings = settings
        self.stack = stack
        self.home = stack.state_dir / "kafka"
        self.host, self.port = settings.kafka.first_host_port
        self.controller_port = stack.kafka_controller_port
        self.properties = self.home / "server.properties"
        self.process = ManagedProcess(
            name="kafka",
            pid_file=self.home / "kafka.pid",
            log_file=self.home / "logs" / "stdout.log",
            markers=(str(self.properties),),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ jars
    def pom(self) -> Path:
        pom = self.stack.kafka_pom or default_pom()
        if not pom.is_file():
            raise StackError(
                f"Kafka pom not found at {pom}: run from a crmstream checkout "
                "or set CRMSTREAM_STACK_KAFKA_POM"
            )
        return pom

    def libs(self) -> Path:
        """The broker's classpath folder, resolved with Maven on first use and cached."""
        pom = self.pom()
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
        libs = self.stack.cache_dir / "kafka" / digest / "libs"
        done = libs.parent / ".complete"
        if done.exists():
            return libs
        mvn = require("mvn")
        result = subprocess.run(
            [
                mvn, "-q", "-B", "-f", str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise StackError(f"mvn could not resolve the Kafka jars from {pom}:\n{tail}")
        done.write_text(digest + "\n")
        return libs

    # ------------------------------------------------------------ configure
    def write_config(self) -> None:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": str(self.settings.topics.event_partitions),
            # One node: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            # Topics are declared (crmstream topics create); a typo must fail, not create a topic.
            "auto.create.topics.enable": "false",
            # A single consumer should not wait 3 s for others that will never join.
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
            **self.listener_config(),
        }
        body = "".join(f"{key}={value}\n" for key, value in lines.items())
        self.properties.write_text("# written by crmstream stack up\n" + body)
        (self.home / "log4j.properties").write_text(_LOG4J)

    def listener_config(self) -> dict[str, str]:
        """Listener settings beyond plain text on loopback (the secured broker's)."""
        return {}

    def scram_users(self) -> list[str]:
        """SCRAM credentials written into the storage when it is formatted."""
        return []

    def _java_argv(self, libs: Path, main: str, *args: str, heap: str | None = None) -> list[str]:
        java = require("java")
        logs = self.home / "logs"
        argv = [java]
        if heap:
            argv += [f"-Xms{heap}", f"-Xmx{heap}"]
        argv += [
            *_JVM_PERFORMANCE_OPTS,
            f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]
        return argv

    def cluster_id(self) -> str:
        """One id per state folder, kept so that a restart finds its own storage."""
        path = self.home / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        cid = new_cluster_id()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cid + "\n")
        return cid

    def format_storage(self, libs: Path) -> None:
        """Mandatory before the first start; a no-op on formatted storage."""
        argv = self._java_argv(
            libs,
            "kafka.tools.StorageTool",
            "format",
            # One argument, so that an id an older state folder kept with a leading
            # "-" is not read by the tool's parser as an option.
            f"--cluster-id={self.cluster_id()}",
            "-c",
            str(self.properties),
            "--ignore-formatted",
            *(arg for user in self.scram_users() for arg in ("--add-scram", user)),
        )
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"kafka storage format failed:\n{result.stdout}{result.stderr}")

    # ---------------------------------------------------------------- start
    def start(self) -> int:
        libs = self.libs()
        self.write_config()
        self.format_storage(libs)
        argv = self._java_argv(
            libs, "kafka.Kafka", str(self.properties), heap=self.stack.kafka_heap
        )
        return self.process.spawn(argv)
