"""queuekit: the same workloads on Celery, Dramatiq and Kafka, compared by what is observed."""
