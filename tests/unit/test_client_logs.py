"""Which client log lines count as 'the broker was unreachable' (no brokers: log records only)."""
from __future__ import annotations

import logging

from queuekit.suite.client_logs import Outage


def _emit(outage: Outage, name: str, text: str) -> None:
    outage.emit(logging.LogRecord(name, logging.INFO, __file__, 1, text, None, None))


def test_a_clean_close_by_the_client_is_not_an_outage():
    outage = Outage()
    _emit(outage, "pika.connection", "Stack terminated due to ConnectionClosedByClient: (200) 'Normal shutdown'")
    _emit(outage, "pika.connection", "Closing connection (200): 'Normal shutdown'")
    assert outage.summary("fan-out", injected=False) == []


def test_a_refused_connection_is_one_line_per_broker():
    outage = Outage()
    _emit(outage, "pika.adapters.utils.connection_workflow", "TCP Connection attempt failed: Connection refused")
    _emit(outage, "kafka_app.rdkafka", "Connect to ipv4#127.0.0.1:9092 failed: Connection refused")
    lines = outage.summary("broker-restart", injected=True)
    assert len(lines) == 2 and all("as injected" in line for line in lines)
    assert lines[0].startswith("Kafka") and lines[1].startswith("RabbitMQ")


def test_rstreams_root_logger_lines_go_to_the_clients_log_not_the_terminal(tmp_path, capsys):
    import logging

    from queuekit.suite.client_logs import to_file

    with to_file(tmp_path / "clients.log") as outage:
        record = logging.LogRecord("root", logging.ERROR, "/x/site-packages/rstream/recovery.py", 125,
                                   "error checking stream existence: [Errno 111] Connection refused", None, None)
        logging.getLogger().handle(record)  # as rstream's logging.error(...) does
        lines = outage.summary("broker-restart", injected=True)
    assert "Connection refused" in (tmp_path / "clients.log").read_text()
    assert capsys.readouterr().err == ""
    assert lines and lines[0].startswith("RabbitMQ")


def test_celery_on_kafkas_librdkafka_lines_go_to_the_file_and_count_as_no_outage(tmp_path, capsys):
    """kombu keeps its Kafka producers after a cell: their lines arrive during the next Kafka cell."""
    from queuekit.suite.client_logs import to_file

    with to_file(tmp_path / "clients.log") as outage:
        logging.getLogger("celery_app.rdkafka").error("FAIL 127.0.0.1:9092: Connect to ipv4#127.0.0.1:9092 failed: "
                                                      "Connection refused")
        assert outage.summary("work-distribution", injected=False) == []
    assert "Connection refused" in (tmp_path / "clients.log").read_text()
    assert capsys.readouterr().err == ""
