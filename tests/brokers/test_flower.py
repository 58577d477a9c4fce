"""Flower runs against the kit's RabbitMQ (and a second one against its Redis) and guards its API with basic auth."""
import httpx
import pytest

URLS = {"flower": lambda kit: kit.flower_url, "flower-redis": lambda kit: kit.flower_redis_url}


@pytest.mark.parametrize("flower", list(URLS))
def test_flower_api_answers_with_auth(flower, kit):
    r = httpx.get(f"{URLS[flower](kit)}/api/workers", auth=kit.flower_auth, timeout=10)
    assert r.status_code == 200
    assert isinstance(r.json(), dict)


@pytest.mark.parametrize("flower", list(URLS))
def test_flower_api_refuses_without_auth(flower, kit):
    url = URLS[flower](kit)
    assert httpx.get(f"{url}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{url}/api/workers", auth=("queuekit", "wrong"), timeout=10).status_code == 401
