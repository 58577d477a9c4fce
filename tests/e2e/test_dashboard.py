"""`queuekit dashboard` end to end in headless Debian Chromium (Playwright driving /usr/bin/chromium):
every registered stack appears, a run's numbers move without a reload, dead letters show with their
reasons, /metrics serves them; a screenshot goes to docs/dashboard.png."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from queuekit.core.waiting import wait_for
from queuekit.stacks.registry import stack_names

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]  # + --headless (Playwright's headless=True)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _queuekit(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "queuekit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def dashboard(kit, tmp_path):
    port = _free_port()
    log = tmp_path / "dashboard.log"
    # its output to a file, not a pipe nobody reads: a full pipe would block the dashboard mid-write
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "queuekit", "dashboard", "--port", str(port), "--interval",
                                 "0.5"], stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(f"{url}/api/state", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=60, what=f"queuekit dashboard to answer on {url}")
    yield url
    proc.terminate()
    proc.wait(20)


def test_dashboard_shows_every_stack_live_in_chromium(kit, dashboard, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=chromium,
                                                       headless=True, args=FLAGS,
                                                       viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        page.goto(dashboard)
        for stack in stack_names():  # every registered stack has its section, nothing hard-coded
            page.wait_for_selector(f"#stack-{stack}", timeout=30_000)

        runs = [_queuekit("run", "dramatiq", "signup", "-n", "1500", "--workers", "1", "--malformed", "2")]
        seen: dict[str, set[str]] = {"backlog": set(), "publish_rate": set()}

        def value(card: str, metric: str) -> str | None:
            node = page.query_selector(f'[data-card="{card}"] [data-value="{metric}"]')
            return node.inner_text() if node else None

        def moving() -> bool:
            for metric in seen:
                if (v := value("dramatiq/signup", metric)) is not None:
                    seen[metric].add(v)
            return len(seen["backlog"]) >= 3 and any(v not in ("0", "–") for v in seen["publish_rate"])

        def what_it_showed() -> str:
            """On a timeout: what the dashboard's API and the page said, and the dashboard's own output."""
            try:
                state = httpx.get(f"{dashboard}/api/state", timeout=10).json()
                api = (f"samples {state['samples']}, errors "
                       f"{ {s['name']: s['error'] for s in state['stacks'] if s['error']} }, dramatiq workloads "
                       f"{[w['name'] for s in state['stacks'] if s['name'] == 'dramatiq' for w in s['workloads']]}")
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                api = f"/api/state unreadable: {exc!r}"
            output = (tmp_path / "dashboard.log").read_text()[-1500:]
            return f"seen {seen}; page status {page.inner_text('#status')!r}; {api}; dashboard output: {output!r}"

        try:
            wait_for(moving, timeout=120, interval=0.3, describe=what_it_showed,
                     what="dramatiq/signup backlog and publish rate to move on the page")
            wait_for(lambda: value("dramatiq/signup", "dead_letters") == "2"
                     and page.query_selector('[data-card="dramatiq/signup"] ul.reasons li') is not None,
                     timeout=120, what="the two malformed messages as dead letters, with reasons")
            runs.append(_queuekit("run", "kafka", "tracking", "-n", "3000", "--workers", "1"))
            wait_for(lambda: value("kafka/tracking", "backlog") not in (None, "0"), timeout=120, interval=0.3,
                     what="kafka/tracking lag on the page")
            shown = int(page.get_attribute("body", "data-samples"))
            wait_for(lambda: int(page.get_attribute("body", "data-samples")) >= shown + 3, timeout=30,
                     what="three more samples on the page (the Kafka chart drawn)")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            reasons = page.inner_text('[data-card="dramatiq/signup"] ul.reasons')
        finally:
            for run in runs:
                out, _ = run.communicate(timeout=300)
                assert run.returncode == 0, out[-2000:]
            browser.close()
    assert "signup" in reasons  # "<service>: <why>", read from the dead-letter queue
    metrics = httpx.get(f"{dashboard}/metrics", timeout=10).text
    assert 'queuekit_dead_letters{stack="dramatiq",workload="signup"} 2.0' in metrics
    assert 'queuekit_published_total{stack="dramatiq",workload="signup"}' in metrics


def test_rabbitmq_prometheus_plugin_serves_metrics(kit):
    r = httpx.get(f"http://127.0.0.1:{kit.ports.rabbit_prometheus}/metrics", timeout=10)
    assert r.status_code == 200 and "rabbitmq_queue_messages" in r.text


@pytest.mark.parametrize("name", ["celery_kafka", "kafka_share"])
def test_a_kafka_stacks_card_reads_its_own_topics(kit, fresh_stack, name):
    """Each card reads the observer its stack declares: Kafka lag and the dead letters of the stack's own
    topics. (celery_kafka's card used to read celery_app.observe, the RabbitMQ queues of the celery column,
    found by package name, for the card and /metrics; kafka_share had no live view.)"""
    from queuekit.core.options import StackOptions
    from queuekit.live.dashboard import Sampler

    stack = fresh_stack(name)
    stack.start(["signup"], StackOptions(workers=1))
    stack.publish_raw("signup", b"not json {")
    sampler = Sampler(kit, (name,))

    def card() -> dict:
        sampler.sample()
        [card] = sampler.state()["stacks"]
        return card

    def dead_on_the_card() -> int:
        return sum(w["dead_letters"] for w in card()["workloads"] if w["name"] == "signup")

    wait_for(lambda: dead_on_the_card() == 1, timeout=60, what=f"1 dead letter on {name}'s card",
             describe=lambda: str(card()))
    assert len(stack.dead_letters("signup")) == 1  # the stack's own reading of its dead-letter topic agrees
    [signup] = [w for w in card()["workloads"] if w["name"] == "signup"]
    assert signup["in_flight"] is None and signup["consumers"] == 1  # pull-based: Kafka's view, not a queue's
    metrics = "\n".join(line for line in _prometheus(sampler) if f'stack="{name}",workload="signup"' in line)
    assert f'queuekit_dead_letters{{stack="{name}",workload="signup"}} 1.0' in metrics, metrics


def _prometheus(sampler) -> list[str]:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(sampler)
    return generate_latest(registry).decode().splitlines()


@pytest.mark.parametrize("name", ["celery_redis"])
def test_the_celery_redis_card_reads_its_own_lists(kit, fresh_stack, name):
    """celery_redis's card: the dead-letter list and the unacked hash of its own key prefix (celery_app/redis_observe.py),
    not the RabbitMQ queues of the celery column."""
    from queuekit.core.options import StackOptions
    from queuekit.live.dashboard import Sampler

    stack = fresh_stack(name)
    stack.start(["signup"], StackOptions(workers=1))
    stack.publish_raw("signup", b"not json {")
    sampler = Sampler(kit, (name,))

    def signup_card() -> dict:
        sampler.sample()
        [card] = sampler.state()["stacks"]
        return next(w for w in card["workloads"] if w["name"] == "signup")

    wait_for(lambda: signup_card()["dead_letters"] == 1, timeout=60, what=f"1 dead letter on {name}'s card",
             describe=lambda: str(signup_card()))
    assert len(stack.dead_letters("signup")) == 1  # the stack's own reading of its dead-letter list agrees
    wait_for(lambda: signup_card()["backlog"] == 0 and signup_card()["in_flight"] == 0, timeout=30,
             what="an empty list and unacked hash on the card", describe=lambda: str(signup_card()))
    metrics = "\n".join(line for line in _prometheus(sampler) if f'stack="{name}",workload="signup"' in line)
    assert f'queuekit_dead_letters{{stack="{name}",workload="signup"}} 1.0' in metrics, metrics
