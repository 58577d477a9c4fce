"""The Celery application: broker, serialization and delivery settings.

Secure defaults: JSON only (pickle is never accepted), broker URL from queuekit.config.
"""
from __future__ import annotations

from celery import Celery

from queuekit.config import settings

app = Celery("queuekit", broker=settings().amqp_url)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],  # refuse pickle and everything else
    worker_send_task_events=True,  # Flower sees tasks as they run
    task_send_sent_event=True,
)
