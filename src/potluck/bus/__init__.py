"""The event bus: transactional outbox, relay, transports, inbox and workers.

Products only need ``publish`` (write an event in their transaction) and the handler
registry; see docs/events.md.
"""

from potluck.bus.outbox import Event, publish, publish_many
from potluck.bus.registry import Handler, HandlerContext, HandlerRegistry

__all__ = ["Event", "Handler", "HandlerContext", "HandlerRegistry", "publish", "publish_many"]
