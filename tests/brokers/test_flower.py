"""Flower runs against the kit's RabbitMQ and guards its API with basic auth."""
import httpx


def test_flower_api_answers_with_auth(kit):
    r = httpx.get(f"{kit.flower_url}/api/workers", auth=kit.flower_auth, timeout=10)
    assert r.status_code == 200
    assert isinstance(r.json(), dict)


def test_flower_api_refuses_without_auth(kit):
    assert httpx.get(f"{kit.flower_url}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{kit.flower_url}/api/workers", auth=("queuekit", "wrong"), timeout=10).status_code == 401
