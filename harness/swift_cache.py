# The private Swift's cache: a paste filter that puts an in-process dict with MemcacheRing's methods in
# env['swift.cache'], so tempauth and the proxy need no memcached (a dead one floods the logs and is slower).
import json
import threading
import time as clock


class InProcessCache(object):
    def __init__(self):
        self._items = {}
        self._lock = threading.Lock()

    def _live(self, key):
        item = self._items.get(key)
        if item is None:
            return None
        value, expires = item
        if expires and expires < clock.time():
            del self._items[key]
            return None
        return value

    @staticmethod
    def _expiry(time):
        # memcached: 0 is never, up to 30 days is relative, more is an absolute time.
        if not time:
            return 0
        return time if time > 30 * 24 * 3600 else clock.time() + time

    def get(self, key, raise_on_error=False):
        with self._lock:
            value = self._live(key)
        # Stored as JSON, as memcached would: a caller never shares a mutable object with the cache.
        return None if value is None else json.loads(value)

    def set(self, key, value, serialize=True, time=0, min_compress_len=0, raise_on_error=False):
        with self._lock:
            self._items[key] = (json.dumps(value), self._expiry(time))

    def incr(self, key, delta=1, time=0):
        with self._lock:
            current = self._live(key)
            number = max(0, (int(json.loads(current)) if current is not None else 0) + int(delta))
            self._items[key] = (json.dumps(number), self._expiry(time))
            return number

    def decr(self, key, delta=1, time=0):
        return self.incr(key, delta=-delta, time=time)

    def delete(self, key, server_key=None):
        with self._lock:
            self._items.pop(key, None)

    def set_multi(self, mapping, server_key, serialize=True, time=0, min_compress_len=0):
        for key, value in mapping.items():
            self.set(key, value, time=time)

    def get_multi(self, keys, server_key):
        return [self.get(key) for key in keys]


def filter_factory(global_conf, **local_conf):
    cache = InProcessCache()

    def make_filter(app):
        def cache_filter(env, start_response):
            env['swift.cache'] = cache
            return app(env, start_response)
        return cache_filter
    return make_filter
