"""Each real broker carries messages: RabbitMQ with confirms, Kafka with keyed partitioning."""
from queuekit.brokers.roundtrip import kafka_roundtrip, rabbitmq_roundtrip


def test_rabbitmq_publish_with_confirms_and_consume(kit):
    trip = rabbitmq_roundtrip(kit, count=20)
    assert (trip.sent, trip.received) == (20, 20)


def test_kafka_same_key_lands_on_same_partition(kit):
    trip = kafka_roundtrip(kit, count=20)
    assert (trip.sent, trip.received) == (20, 20)
    assert trip.detail == "same key -> same partition"
