"""The RabbitMQ transport (``POTLUCK_TRANSPORT=rabbitmq``): services talk through a broker.

Topology (``<ns>`` is ``POTLUCK_BROKER_NAMESPACE``, ``potluck`` by default)::

    <ns>.events          topic exchange, durable; routing key = event type
    <ns>.<service>       one durable queue per service (quorum by default), bound to
                         <ns>.events with each event type the service has a handler for,
                         and to <ns>.retry with the header potluck-service = <service>
    <ns>.retry.<ms>ms    one delay queue per backoff step, shared by the services: the
                         queue's message TTL is the delay; an expired message is dead-lettered
                         to <ns>.retry (a headers exchange), which routes it back to its
                         service's queue by its potluck-service header
    <ns>.<service>.dead  the dead letters of a service, after ``bus_max_attempts`` failures

Publishing (the relay): one persistent message per event, body = the event envelope JSON
(``Event.to_dict()``), ``message_id`` = event id, ``type`` = event type, on a channel in
publisher-confirm mode: ``publish_many`` sends the batch, waits once for its confirms and
returns when the broker has confirmed every message (stored in every bound queue), reporting
the refused ones so that the relay leaves their outbox rows pending. The publisher declares
the whole topology when it connects, so an event published before any worker started waits
in its services' queues.

Consuming (the workers): a consumer per service queue with a bounded prefetch
(``broker_prefetch``), manual acknowledgements. A batch of messages is applied in one
database transaction like ``InProcessTransport`` does (each service's share in one savepoint,
one by one on failure); only after that transaction committed are the messages acknowledged.
A worker that dies before the ack leaves its messages unacknowledged and the broker hands
them to another consumer; the inbox makes the second delivery a no-op. If the transaction
fails as a whole, every message of the batch is given back (``basic.nack`` with requeue).
A message whose handler failed is republished (confirmed) to the delay queue of
``RetryPolicy.delay(attempts)`` with its attempt count in the ``potluck-attempts`` header,
then acknowledged; after ``bus_max_attempts`` failures it goes to the service's dead-letter
queue instead. One delay queue per step (not one queue with per-message TTLs) because the
broker expires messages only at the head of a queue: a 300 s retry would hold up a 1 s one.

Connections: one ``BlockingConnection`` per thread (pika connections are not thread-safe),
made on first use. An AMQP error drops the thread's connection; the next call reconnects,
with exponential backoff (0.5 s doubling up to ``broker_reconnect_max_delay_seconds``)
while the broker refuses connections. A publish that finds its connection gone reconnects and
publishes the rest once more at once; if that fails too the events are reported refused and
stay pending in the outbox.

Why pika and not aio-pika: the relay and the workers are synchronous threads that hold a
database transaction while they publish or apply (``relay_once``, ``work_once``); pika's
``BlockingConnection`` fits that model directly, where aio-pika would need an event loop per
thread (or one loop and cross-thread futures) for every call. pika is maintained, pure Python
and supports publisher confirms, quorum queues (declare arguments) and basic.qos.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel, _IoloopTimerContext
from pika.exceptions import AMQPChannelError, AMQPConnectionError, AMQPError
from sqlalchemy.orm import Session

from potluck.bus.outbox import Event
from potluck.bus.transport import (
    Apply,
    ApplyBatch,
    DeadLetter,
    RetryPolicy,
    Transport,
    error_text,
)

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

log = structlog.get_logger()

# Headers beginning with "x-" are ignored by headers exchanges, hence no "x-" prefix.
SERVICE = "potluck-service"
ATTEMPTS = "potluck-attempts"
LAST_ERROR = "potluck-last-error"
DEAD_ID = "potluck-dead-id"
FAILED_AT = "potluck-failed-at"

_MAX_HEADER_ERROR_CHARS = 2000
_RECONNECT_BASE_SECONDS = 0.5
_CONFIRM_TIMEOUT_SECONDS = 30.0
_MAX_BROWSE = 100_000  # dead letters looked at by dead_letters() / retry_dead()


class BrokerUnavailable(ConnectionError):
    """No connection to the broker (it refused, or we are waiting before reconnecting)."""


class ConfirmTimeout(AMQPConnectionError):
    """The broker did not confirm in time: the connection is given up."""


class Unroutable(AMQPChannelError):
    """A mandatory message was returned (its queue does not exist)."""


@dataclass(slots=True)
class _Message:
    link: _Link
    service: str
    tag: int
    headers: dict[str, Any]
    body: bytes

    @property
    def attempts(self) -> int:
        try:
            return int(self.headers.get(ATTEMPTS, 0))
        except (TypeError, ValueError):
            return 0


class _Link:
    """One thread's connection: a confirm-mode channel to publish, one to consume on.

    ``BlockingChannel.confirm_delivery`` waits for the broker's confirm after every message
    (about 1,000 messages/s on loopback); ``publish`` instead sends a whole batch and then
    waits once for all its confirms (Basic.Ack/Nack, possibly ``multiple``), which takes the
    underlying pika channel (``_impl``) and the connection's ``_flush_output`` — the same
    calls BlockingChannel makes itself.
    """

    def __init__(self, parameters: pika.URLParameters, prefetch: int) -> None:
        self.connection = pika.BlockingConnection(parameters)
        self.publisher: BlockingChannel = self.connection.channel()
        self._sent = 0  # delivery tags: the broker numbers published messages from 1
        self._unconfirmed: set[int] = set()
        self._nacked: set[int] = set()
        self._returned = 0
        selected: list[object] = []
        self.publisher._impl.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=selected.append
        )
        self.publisher._impl.add_on_return_callback(self._on_return)
        self._wait(lambda: bool(selected), _CONFIRM_TIMEOUT_SECONDS)
        self.consumer: BlockingChannel = self.connection.channel()
        self.consumer.basic_qos(prefetch_count=prefetch)
        self.consuming: set[str] = set()
        self.buffer: deque[_Message] = deque()

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if method.multiple:
            tags = {t for t in self._unconfirmed if t <= method.delivery_tag}
        else:
            tags = {method.delivery_tag}
        self._unconfirmed -= tags
        if isinstance(method, pika.spec.Basic.Nack):
            self._nacked |= tags

    def _on_return(self, *_args: Any) -> None:
        self._returned += 1

    def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        with _IoloopTimerContext(timeout, self.connection._impl) as timer:
            self.connection._flush_output(timer.is_ready, done)
        if not done():
            raise ConfirmTimeout(f"no answer from the broker within {timeout:g} s")

    def publish(
        self,
        messages: Sequence[tuple[str, str, bytes, pika.BasicProperties]],
        *,
        mandatory: bool = False,
    ) -> list[bool]:
        """Publish ``messages`` (exchange, routing key, body, properties) and wait for their
        confirms; per message True (stored by the broker) or False (nacked). With
        ``mandatory``, a message no queue took raises ``Unroutable``. Connection problems
        raise (AMQPError): whether those messages were stored is then unknown."""
        tags: list[int] = []
        returned = self._returned
        for exchange, routing_key, body, properties in messages:
            self.publisher._impl.basic_publish(
                exchange, routing_key, body, properties, mandatory=mandatory
            )
            self._sent += 1
            self._unconfirmed.add(self._sent)
            tags.append(self._sent)
        self._wait(lambda: self._unconfirmed.isdisjoint(tags), _CONFIRM_TIMEOUT_SECONDS)
        if mandatory and self._returned > returned:
            raise Unroutable("a message was returned: no queue took it")
        results = [tag not in self._nacked for tag in tags]
        self._nacked.difference_update(tags)
        return results

    @property
    def usable(self) -> bool:
        return bool(self.connection.is_open and self.publisher.is_open and self.consumer.is_open)

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except Exception as exc:  # already gone: nothing to release
            log.debug("bus.broker_close_failed", exc_info=exc)


class RabbitMQTransport(Transport):
    def __init__(self, app: Potluck) -> None:
        settings = app.settings
        self.app = app
        self.retry = RetryPolicy.from_settings(settings)
        self.batch_size = settings.bus_batch_size
        self.prefetch = settings.broker_prefetch
        self.queue_type = settings.broker_queue_type
        self.consume_wait = settings.broker_consume_wait_seconds
        self.reconnect_max = settings.broker_reconnect_max_delay_seconds
        self.namespace = settings.broker_namespace
        self.exchange = f"{self.namespace}.events"
        self.return_exchange = f"{self.namespace}.retry"
        self.parameters = pika.URLParameters(settings.broker_url)
        self.parameters.connection_attempts = 1
        self.parameters.socket_timeout = 5
        self.parameters.blocked_connection_timeout = 30
        self._local = threading.local()

    # ------------------------------------------------------------ names

    def queue(self, service: str) -> str:
        return f"{self.namespace}.{service}"

    def dead_queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.dead"

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.namespace}.retry.{delay_ms}ms"

    def retry_delays_ms(self) -> list[int]:
        """The delay of every retry step (after failure 1 … max_attempts − 1)."""
        return sorted({_ms(self.retry.delay(n)) for n in range(1, max(self.retry.max_attempts, 2))})

    def services(self) -> list[str]:
        """Services with a queue: those with at least one event type."""
        return [s for s in self.app.registry.services() if self.app.registry.event_types(s)]

    def queue_names(self) -> list[str]:
        names = [self.retry_queue(ms) for ms in self.retry_delays_ms()]
        for service in self.services():
            names += [self.queue(service), self.dead_queue(service)]
        return names

    # ------------------------------------------------------------ connection

    def _link(self) -> _Link:
        """This thread's connection, (re)connecting when there is none."""
        local = self._local
        link: _Link | None = getattr(local, "link", None)
        if link is not None:
            if link.usable:
                return link
            self._drop()
        now = time.monotonic()
        retry_at: float = getattr(local, "retry_at", 0.0)
        if now < retry_at:
            raise BrokerUnavailable(
                f"broker unavailable; reconnecting in {retry_at - now:.1f} s"
                f" ({getattr(local, 'last_error', '')})"
            )
        link = None
        try:
            link = _Link(self.parameters, self.prefetch)
            self._declare(link.publisher)
        except Exception as exc:
            failures = getattr(local, "failures", 0) + 1
            delay = min(_RECONNECT_BASE_SECONDS * 2 ** min(failures - 1, 30), self.reconnect_max)
            local.failures, local.retry_at = failures, now + delay
            local.last_error = f"{type(exc).__name__}: {exc}"
            if link is not None:
                link.close()
            log.warning(
                "bus.broker_connect_failed", failures=failures, retry_in_seconds=delay, exc_info=exc
            )
            raise BrokerUnavailable(f"cannot connect to the broker: {local.last_error}") from exc
        if getattr(local, "failures", 0):
            log.info("bus.broker_reconnected", failures=local.failures)
        local.failures, local.retry_at, local.link = 0, 0.0, link
        return link

    def _drop(self) -> None:
        """Forget this thread's connection (after an AMQP error); the next call reconnects."""
        link: _Link | None = getattr(self._local, "link", None)
        self._local.link = None
        if link is not None:
            link.close()

    def connection(self) -> pika.BlockingConnection:
        """This thread's connection (tests close it under the transport)."""
        return self._link().connection

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    def _declare(self, channel: BlockingChannel) -> None:
        """Exchanges, queues and bindings; idempotent (every new connection declares them)."""
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.exchange_declare(self.return_exchange, exchange_type="headers", durable=True)
        kind = {"x-queue-type": self.queue_type}
        for delay_ms in self.retry_delays_ms():
            arguments: dict[str, Any] = {
                **kind,
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": self.return_exchange,
            }
            if self.queue_type == "quorum":
                # Dead-letter (= move back to the service queue) at least once, not at most
                # once: a quorum queue keeps the message until the service queue has it.
                arguments["x-dead-letter-strategy"] = "at-least-once"
                arguments["x-overflow"] = "reject-publish"
            channel.queue_declare(self.retry_queue(delay_ms), durable=True, arguments=arguments)
        for service in self.services():
            queue = self.queue(service)
            channel.queue_declare(queue, durable=True, arguments=kind)
            channel.queue_declare(self.dead_queue(service), durable=True, arguments=kind)
            for event_type in self.app.registry.event_types(service):
                channel.queue_bind(queue, self.exchange, routing_key=event_type)
            channel.queue_bind(
                queue, self.return_exchange, arguments={"x-match": "all", SERVICE: service}
            )

    # ------------------------------------------------------------ publish

    def publish(self, event: Event) -> None:
        error = self.publish_many([event])[0]
        if error is not None:
            raise RuntimeError(error)

    def publish_many(self, events: Sequence[Event]) -> list[str | None]:
        errors: list[str | None] = [None] * len(events)
        pending = deque(range(len(events)))
        for round_ in range(2):  # a connection found dead is replaced once, at once
            try:
                link = self._link()
            except BrokerUnavailable as exc:
                for i in pending:
                    errors[i] = str(exc)
                break
            try:
                # Reads what the broker sent meanwhile: notices a connection it closed.
                link.connection.process_data_events(time_limit=0)
                confirmed = link.publish(
                    [
                        (
                            self.exchange,
                            events[i].type,
                            json.dumps(events[i].to_dict(), separators=(",", ":")).encode(),
                            pika.BasicProperties(
                                content_type="application/json",
                                delivery_mode=pika.DeliveryMode.Persistent,
                                message_id=events[i].id,
                                type=events[i].type,
                                timestamp=int(events[i].occurred_at.timestamp()),
                                headers={ATTEMPTS: 0},
                            ),
                        )
                        for i in pending
                    ]
                )
                for i, ok in zip(pending, confirmed, strict=True):
                    if not ok:
                        errors[i] = "the broker refused the message (basic.nack)"
                        log.warning(
                            "bus.publish_failed", event_id=events[i].id, event_type=events[i].type
                        )
                pending.clear()
                break
            except AMQPError as exc:
                log.warning("bus.broker_lost", during="publish", round=round_, exc_info=exc)
                self._drop()
                if round_ == 1:
                    for i in pending:
                        errors[i] = error_text(exc)
        return errors

    def _send(self, link: _Link, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish to one queue (default exchange), confirmed; mandatory: a queue that does
        not exist raises (Unroutable) instead of dropping the message."""
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=_event_id(body),
            headers=headers,
        )
        if not link.publish([("", queue, body, properties)], mandatory=True)[0]:
            raise Unroutable(f"the broker refused the message for {queue} (basic.nack)")

    # ------------------------------------------------------------ consume

    def consume(
        self,
        services: Sequence[str],
        apply: Apply,
        *,
        limit: int,
        apply_batch: ApplyBatch | None = None,
    ) -> int:
        wanted = [s for s in services if self.app.registry.event_types(s)]
        if not wanted:
            return 0
        handled = 0
        while handled < limit:
            size = min(self.batch_size, limit - handled)
            messages = self._take(wanted, size, wait=handled == 0)
            if not messages:
                break
            self._handle(messages, apply, apply_batch)
            handled += len(messages)
        return handled

    def _take(self, services: list[str], size: int, *, wait: bool) -> list[_Message]:
        try:
            link = self._link()
            for service in services:
                if service not in link.consuming:
                    link.consumer.basic_consume(
                        self.queue(service),
                        on_message_callback=_collector(link, service),
                        auto_ack=False,
                    )
                    link.consuming.add(service)
            link.connection.process_data_events(time_limit=0)
            # Nothing here yet: if the broker holds ready messages, they are on their way
            # (drain() relies on a confirmed publish being consumable by the next call). The
            # count is asked on the consumer channel, so a message the broker pushed to us
            # before counting arrives before the answer: it is either counted or buffered.
            if wait and self.consume_wait > 0 and not _has(link, services):
                ready = self._ready(link, services)
                link.connection.process_data_events(time_limit=0)
                deadline = time.monotonic() + self.consume_wait
                while ready and not _has(link, services) and time.monotonic() < deadline:
                    link.connection.process_data_events(
                        time_limit=min(0.02, max(deadline - time.monotonic(), 0))
                    )
        except AMQPError as exc:
            log.warning("bus.broker_lost", during="consume", exc_info=exc)
            self._drop()
            raise
        taken: list[_Message] = []
        kept: deque[_Message] = deque()
        while link.buffer:
            message = link.buffer.popleft()
            if len(taken) < size and message.service in services:
                taken.append(message)
            else:
                kept.append(message)
        link.buffer = kept
        return taken

    def _ready(self, link: _Link, services: list[str]) -> int:
        return sum(
            int(link.consumer.queue_declare(self.queue(s), passive=True).method.message_count)
            for s in services
        )

    def _handle(
        self, messages: list[_Message], apply: Apply, apply_batch: ApplyBatch | None
    ) -> None:
        """Apply in one transaction; acknowledge (or retry / dead-letter) after the commit."""
        failures: dict[int, Exception] = {}
        events: dict[int, Event] = {}
        for i, message in enumerate(messages):
            try:
                events[i] = Event.from_dict(json.loads(message.body))
            except Exception as exc:  # not an envelope: it can never succeed
                failures[i] = ValueError(f"not an event envelope: {exc!r}")
        try:
            with self.app.db.transaction() as session:
                self._apply_all(session, messages, events, failures, apply, apply_batch)
        except Exception:
            # Nothing committed: give every message back, it is taken again.
            self._requeue(messages)
            raise
        for i, message in enumerate(messages):
            failure = failures.get(i)
            if failure is None:
                self._ack(message)
            else:
                self._fail(message, failure, poison=i not in events)

    def _apply_all(
        self,
        session: Session,
        messages: list[_Message],
        events: dict[int, Event],
        failures: dict[int, Exception],
        apply: Apply,
        apply_batch: ApplyBatch | None,
    ) -> None:
        one_by_one = sorted(events)
        if apply_batch is not None:
            one_by_one = []
            groups: dict[str, list[int]] = {}
            for i in events:
                groups.setdefault(messages[i].service, []).append(i)
            for service, group in groups.items():
                try:
                    with session.begin_nested():
                        apply_batch(session, service, [events[i] for i in group])
                except Exception as exc:
                    if len(group) == 1:
                        failures[group[0]] = exc
                    else:
                        one_by_one.extend(group)
        for i in one_by_one:
            try:
                with session.begin_nested():
                    apply(session, messages[i].service, events[i])
            except Exception as exc:
                failures[i] = exc

    def _current(self, message: _Message) -> bool:
        """Its channel is still ours: otherwise the broker already took the message back."""
        return message.link is getattr(self._local, "link", None) and message.link.usable

    def _ack(self, message: _Message) -> None:
        if not self._current(message):
            return
        try:
            message.link.consumer.basic_ack(message.tag)
        except AMQPError as exc:
            log.warning("bus.broker_lost", during="ack", exc_info=exc)
            self._drop()

    def _requeue(self, messages: list[_Message]) -> None:
        for message in messages:
            if not self._current(message):
                continue
            try:
                message.link.consumer.basic_nack(message.tag, requeue=True)
            except AMQPError as exc:
                log.warning("bus.broker_lost", during="nack", exc_info=exc)
                self._drop()

    def _fail(self, message: _Message, exc: Exception, *, poison: bool) -> None:
        """Republish a failed message to its retry step (or its dead letters), then ack."""
        if not self._current(message):
            return
        attempts = self.retry.max_attempts if poison else message.attempts + 1
        event_id = _event_id(message.body)
        fields = {
            "event_id": event_id,
            "service": message.service,
            "event_type": _event_type(message.body),
            "attempts": attempts,
        }
        headers: dict[str, Any] = {
            SERVICE: message.service,
            ATTEMPTS: attempts,
            LAST_ERROR: error_text(exc)[-_MAX_HEADER_ERROR_CHARS:],
        }
        if self.retry.exhausted(attempts):
            headers[DEAD_ID] = secrets.randbits(53)
            headers[FAILED_AT] = self.app.clock.now().isoformat()
            queue = self.dead_queue(message.service)
            log.error("bus.delivery_dead", **fields, delivery_id=headers[DEAD_ID], exc_info=exc)
        else:
            delay = self.retry.delay(attempts)
            queue = self.retry_queue(_ms(delay))
            log.warning("bus.delivery_failed", **fields, retry_in_seconds=delay, exc_info=exc)
        try:
            self._send(message.link, queue, message.body, headers)
            message.link.consumer.basic_ack(message.tag)
        except AMQPError as send_exc:
            # Unacknowledged: the broker redelivers it (with its previous attempt count).
            log.warning("bus.broker_lost", during="retry", exc_info=send_exc)
            self._drop()

    # ------------------------------------------------------------ operations

    def _browse(self, queue: str, channel: BlockingChannel) -> list[Any]:
        """Every message of ``queue``, unacknowledged on ``channel`` (closing it puts them
        back)."""
        # Until basic.get finds nothing, not message_count times: a quorum queue reports the
        # messages another browser just gave back only a moment later.
        found = []
        for _ in range(_MAX_BROWSE):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append((method, properties, body))
        return found

    def dead_letters(self, *, limit: int = 50) -> list[DeadLetter]:
        link = self._link()
        channel = link.connection.channel()
        letters: list[DeadLetter] = []
        try:
            for service in self.services():
                for _method, properties, body in self._browse(self.dead_queue(service), channel):
                    headers = properties.headers or {}
                    letters.append(
                        DeadLetter(
                            id=int(headers.get(DEAD_ID, 0)),
                            event_id=_event_id(body),
                            service=service,
                            type=_event_type(body),
                            attempts=int(headers.get(ATTEMPTS, 0)),
                            last_error=_text(headers.get(LAST_ERROR)),
                            failed_at=_when(headers.get(FAILED_AT)),
                        )
                    )
        finally:
            _close(channel)  # the browsed messages go back to their queues
        letters.sort(key=lambda d: (d.failed_at, d.id), reverse=True)
        return letters[:limit]

    def retry_dead(self, delivery_id: int) -> bool:
        link = self._link()
        channel = link.connection.channel()
        try:
            for service in self.services():
                for method, properties, body in self._browse(self.dead_queue(service), channel):
                    headers = properties.headers or {}
                    if int(headers.get(DEAD_ID, 0)) != delivery_id:
                        continue
                    # A fresh retry budget; last_error is kept for comparison.
                    self._send(
                        link,
                        self.queue(service),
                        body,
                        {SERVICE: service, ATTEMPTS: 0, LAST_ERROR: headers.get(LAST_ERROR, "")},
                    )
                    channel.basic_ack(method.delivery_tag)
                    log.info("bus.delivery_requeued", delivery_id=delivery_id, service=service)
                    return True
        finally:
            _close(channel)
        return False

    def stats(self) -> dict[str, Any]:
        """Ready messages per queue (unacknowledged ones, being applied, are not counted)."""
        link = self._link()
        channel = link.connection.channel()
        depths: dict[str, int] = {}
        try:
            for name in self.queue_names():
                depths[name] = int(channel.queue_declare(name, passive=True).method.message_count)
        finally:
            _close(channel)
        dead = sum(depths[self.dead_queue(s)] for s in self.services())
        return {
            "deliveries_pending": sum(depths.values()) - dead,
            "deliveries_dead": dead,
            "broker_queues": depths,
        }


def _collector(link: _Link, service: str) -> Any:
    def on_message(
        _channel: BlockingChannel,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        link.buffer.append(
            _Message(
                link=link,
                service=service,
                tag=method.delivery_tag,
                headers=dict(properties.headers or {}),
                body=body,
            )
        )

    return on_message


def _has(link: _Link, services: list[str]) -> bool:
    return any(m.service in services for m in link.buffer)


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 1)


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(body)
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _event_id(body: bytes) -> str:
    return str(_envelope(body).get("id", ""))


def _event_type(body: bytes) -> str:
    return str(_envelope(body).get("type", ""))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _when(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(_text(value) or "")
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)


def _close(channel: BlockingChannel) -> None:
    try:
        if channel.is_open:
            channel.close()
    except AMQPError:
        pass
