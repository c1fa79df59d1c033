"""An independent checker of messages: a publisher with publisher confirms and retries, a consumer
with manual acks, unique ids; `verdict` says whether every confirmed message was delivered (at
least once; duplicates are counted apart) and what is still missing.

It knows nothing of hakeeper: it speaks AMQP (pika) to the brokers' addresses and nothing else.
Both sides go through the list of brokers in order and move to the next one when a connection
fails, as OpenStack's oslo.messaging does with a transport_url naming every broker.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]

QUEUE = "hk-check"
USER, PASSWORD = "guest", "guest"


@dataclass(frozen=True)
class Verdict:
    confirmed: int
    delivered: int  # distinct confirmed-or-not ids delivered
    duplicates: int  # deliveries beyond the first of an id
    missing: list[str] = field(default_factory=list)  # confirmed, never delivered
    publish_retries: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        return (
            f"{self.confirmed} confirmed, {self.delivered} delivered ({self.duplicates} duplicates), "
            f"{len(self.missing)} confirmed but not delivered {self.missing[:5]}, "
            f"{self.publish_retries} publish retries"
        )


def _params(host: str, port: int, vhost: str = "/") -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=host, port=port, virtual_host=vhost, credentials=pika.PlainCredentials(USER, PASSWORD),
        heartbeat=5, blocked_connection_timeout=10, socket_timeout=2, connection_attempts=1,
        stack_timeout=5,
    )


def declare(host: str, port: int = 5672, vhost: str = "/", queue: str = QUEUE) -> None:
    """The durable quorum queue the checker uses (what oslo.messaging declares with
    rabbit_quorum_queue = true)."""
    conn = pika.BlockingConnection(_params(host, port, vhost))
    try:
        conn.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    finally:
        with contextlib.suppress(Exception):
            conn.close()


class _Side(threading.Thread):
    def __init__(self, hosts: Sequence[str], port: int, vhost: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.hosts = list(hosts)
        self.port = port
        self.vhost = vhost
        self.queue = queue
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.failovers = 0
        self.host_index = 0

    def connect(self) -> pika.BlockingConnection:
        """The first broker of the list, from the current one on, that takes a connection."""
        while not self.stopping.is_set():
            host = self.hosts[self.host_index % len(self.hosts)]
            try:
                return pika.BlockingConnection(_params(host, self.port, self.vhost))
            except (pika.exceptions.AMQPError, OSError):
                self.host_index += 1
                self.failovers += 1
                time.sleep(0.05)
        raise RuntimeError("stopped")

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


class Publisher(_Side):
    """Publishes ids `<tag>-<n>` one at a time, each until the broker confirms it; a nack, a
    returned message or a broken connection means publishing the same id again (maybe elsewhere)."""

    def __init__(self, hosts: Sequence[str], port: int = 5672, vhost: str = "/", queue: str = QUEUE,
                 tag: str = "m", rate: float = 0.0) -> None:
        super().__init__(hosts, port, vhost, queue)
        self.tag = tag
        self.rate = rate  # messages per second, 0: as fast as confirms come back
        self.confirmed: dict[str, tuple[float, str]] = {}  # id -> (monotonic time of the confirm, broker)
        self.retries = 0
        self.errors: Counter[str] = Counter()  # why publishes were retried, by exception class
        # When each connection was made (monotonic): a confirm after a reconnection came through
        # the new connection, never from a broker that died just after sending it.
        self.connected_at: list[float] = []

    def run(self) -> None:
        n = 0
        conn: pika.BlockingConnection | None = None
        channel: Any = None
        while not self.stopping.is_set():
            msg = f"{self.tag}-{n}"
            try:
                if conn is None or conn.is_closed:
                    conn = self.connect()
                    with self.lock:
                        self.connected_at.append(time.monotonic())
                    channel = conn.channel()
                    channel.confirm_delivery()
                channel.basic_publish(
                    "", self.queue, msg.encode(), pika.BasicProperties(delivery_mode=2, message_id=msg), mandatory=True
                )
            except RuntimeError:
                break
            except (pika.exceptions.AMQPError, OSError) as exc:
                # Not confirmed: the same id again. A nack keeps the connection; a broken one does not.
                self.retries += 1
                self.errors[type(exc).__name__] += 1
                if conn is not None and (conn.is_closed or channel is None or not channel.is_open):
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
                    self.host_index += 1
                time.sleep(0.02)
                continue
            with self.lock:
                self.confirmed[msg] = (time.monotonic(), self.hosts[self.host_index % len(self.hosts)])
            n += 1
            if self.rate:
                time.sleep(1 / self.rate)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def confirmed_ids(self) -> set[str]:
        with self.lock:
            return set(self.confirmed)

    def first_confirm_on_a_new_connection(self, t: float) -> float | None:
        """When the first confirm came through a connection made after `t` (the same address
        behind a VIP: a reconnection tells the new broker's confirms from the old one's)."""
        with self.lock:
            since = [c for c in self.connected_at if c > t]
        if not since:
            return None
        got = self.first_confirm_after(since[0])
        return None if got is None else got[0]

    def first_confirm_after(self, t: float, not_from: str | None = None) -> tuple[float, str] | None:
        """The first confirm after `t` (through another broker than `not_from`): when, and from whom.
        (A confirm the killed broker sent just before it died may still be read after the kill.)"""
        with self.lock:
            later = [c for c in self.confirmed.values() if c[0] > t and c[1] != not_from]
        return min(later) if later else None


class Consumer(_Side):
    """Consumes with manual acks (prefetch 200); an id is recorded when it arrives, acked after."""

    def __init__(self, hosts: Sequence[str], port: int = 5672, vhost: str = "/", queue: str = QUEUE) -> None:
        super().__init__(hosts, port, vhost, queue)
        self.seen: dict[str, int] = {}
        self.last_delivery = time.monotonic()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn = self.connect()
            except RuntimeError:
                break
            try:
                channel = conn.channel()
                channel.basic_qos(prefetch_count=200)
                for method, _props, body in channel.consume(self.queue, inactivity_timeout=0.2):
                    if self.stopping.is_set():
                        break
                    if method is None:
                        continue
                    with self.lock:
                        key = body.decode(errors="replace")
                        self.seen[key] = self.seen.get(key, 0) + 1
                        self.last_delivery = time.monotonic()
                    channel.basic_ack(method.delivery_tag)
                with contextlib.suppress(Exception):
                    channel.cancel()
                conn.close()
            except (pika.exceptions.AMQPError, OSError):
                self.host_index += 1
                self.failovers += 1
                with contextlib.suppress(Exception):
                    conn.close()
                time.sleep(0.05)

    def delivered(self) -> dict[str, int]:
        with self.lock:
            return dict(self.seen)


def verdict(publisher: Publisher, consumer: Consumer, drain: float = 60.0, quiet: float = 2.0,
            earlier: Sequence[Consumer] = ()) -> Verdict:
    """Stop the publisher, let the consumer drain (until every confirmed id arrived and nothing came
    for `quiet` seconds, or `drain` passed), stop it and judge. `earlier`: consumers of the same
    queue that were stopped before (what they received counts as delivered)."""
    publisher.stop()
    confirmed = publisher.confirmed_ids()
    before = set().union(*(c.delivered() for c in earlier))
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        seen = before | set(consumer.delivered())
        if confirmed <= seen and time.monotonic() - consumer.last_delivery > quiet:
            break
        time.sleep(0.2)
    consumer.stop()
    return judge(publisher, consumer, earlier)


def judge(publisher: Publisher, consumer: Consumer, earlier: Sequence[Consumer] = ()) -> Verdict:
    """Every id the publisher had confirmed against what the consumers received so far."""
    confirmed = publisher.confirmed_ids()
    seen: Counter[str] = Counter()
    for side in (*earlier, consumer):
        seen.update(side.delivered())
    missing = sorted(confirmed - set(seen), key=lambda m: int(m.rsplit("-", 1)[1]))
    return Verdict(
        confirmed=len(confirmed),
        delivered=len(seen),
        duplicates=sum(c - 1 for c in seen.values()),
        missing=missing,
        publish_retries=publisher.retries,
    )
