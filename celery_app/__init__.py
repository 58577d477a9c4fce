"""Celery over RabbitMQ: the three workloads as Celery tasks."""
