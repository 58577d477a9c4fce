"""Client logs go to the run's file, not the terminal; the terminal gets one outage line per cell."""
from __future__ import annotations

import logging

from queuekit.suite import client_logs


def test_client_logs_go_to_the_file_and_the_outage_is_summed_up(tmp_path, capsys):
    rdkafka = logging.getLogger("kafka_app.rdkafka")
    path = tmp_path / "logs" / "clients.log"
    with client_logs.to_file(path) as outage:
        for created in (100.0, 103.5, 106.2):
            record = rdkafka.makeRecord("kafka_app.rdkafka", logging.ERROR, __file__, 1,
                                        "FAIL [thrd:127.0.0.1:9092/1]: Connect to ipv4#127.0.0.1:9092 failed: "
                                        "Connection refused", None, None)
            record.created = created
            rdkafka.handle(record)
        logging.getLogger("pika.adapters").warning("a note that is no outage")
        lines = outage.summary("broker-restart on kafka", injected=True)
    assert lines == ["Kafka unreachable for 6.2 s during broker-restart on kafka (3 client log lines), as injected"]
    assert "Connection refused" in path.read_text() and "a note that is no outage" in path.read_text()
    captured = capsys.readouterr()
    assert "Connection refused" not in captured.err + captured.out
    assert rdkafka.propagate  # restored afterwards
