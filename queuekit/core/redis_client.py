"""How every part of the kit (workers included) reaches Redis: one node, or the primary found through Sentinel.

The kit's own single node and an external Redis are one URL (``Settings.redis_url``).
In the cluster topology nobody is told where the primary is: redis-py's
``Sentinel`` asks the three Sentinels, and a connection of ``master_for`` asks
again whenever it reconnects, so a client follows a failover on its next
reconnect (a connection open to the old primary fails first: that error is
what the fault probe counts).
"""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

from queuekit.core.config import Settings

SERVICE = "queuekit"  # the name the Sentinels monitor the primary under (SENTINEL GET-MASTER-ADDR-BY-NAME)
SOCKET_TIMEOUT = 2.0  # a paused or cut-off primary is noticed in 2 s, not after TCP's minutes


def sentinel(settings: Settings, socket_timeout: float = SOCKET_TIMEOUT):
    """The cluster topology's Sentinels, authenticated as the kit's user (they refuse anyone else)."""
    from redis.sentinel import Sentinel

    auth = {"username": settings.redis_user, "password": settings.redis_password}
    return Sentinel(settings.redis_sentinels, sentinel_kwargs={**auth, "socket_timeout": socket_timeout,
                                                               "socket_connect_timeout": socket_timeout},
                    socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                    username=auth["username"], password=auth["password"])


def connect(settings: Settings, socket_timeout: float = SOCKET_TIMEOUT, **kwargs):
    """A client of the primary: through Sentinel in the cluster topology, else of ``settings.redis_url``."""
    import redis

    if settings.clustered and not settings.external_redis_url:
        return sentinel(settings, socket_timeout).master_for(SERVICE, socket_timeout=socket_timeout,
                                                             socket_connect_timeout=socket_timeout, **kwargs)
    url = settings.redis_url
    if "db" in kwargs:  # redis-py's from_url lets the URL's /<db> win over a db= keyword: put it in the URL
        url = urlsplit(url)._replace(path=f"/{int(kwargs.pop('db'))}").geturl()
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout, **kwargs)


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for status lines and errors)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{unquote(parts.username or '')}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
