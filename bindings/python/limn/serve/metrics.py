"""Prometheus metrics of one server: its own registry (two apps in one process never share one).

Names follow Prometheus conventions: the ``limn_`` prefix, base units (seconds, bytes) and
``_total`` on counters. Their Triton equivalents are in the README.
"""

from __future__ import annotations

from typing import Callable, Iterable, List

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["Metrics", "FAILURE_REASONS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FAILURE_REASONS = ("rejected", "timeout", "cancelled", "bad_input", "internal")

# Seconds: from a few milliseconds (tiny images) to minutes (large photos on the CPU).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# limn.MemoryStats fields, as (metric suffix, help).
_MEMORY = [
    ("allocated", "Bytes in live tensors of limn's calls"),
    ("reserved", "Bytes held by the CUDA caching allocator; the process's resident set on the CPU"),
    ("peak_allocated", "Peak of allocated bytes"),
    ("peak_reserved", "Peak of reserved bytes"),
    ("limit", "Memory cap set with --memory-limit; 0: none"),
    ("device_total", "Total memory of the device"),
    ("device_free", "Free memory of the device"),
]


class _MemoryCollector:
    """limn.memory_stats of each device in use, read at every scrape."""

    def __init__(self, devices: Callable[[], Iterable[str]]) -> None:
        self._devices = devices

    def describe(self) -> List[GaugeMetricFamily]:
        return []  # described at scrape time only (registering must not touch the devices)

    def collect(self) -> List[GaugeMetricFamily]:
        import limn

        families = {key: GaugeMetricFamily(f"limn_memory_{key}_bytes", text, labels=["device"])
                    for key, text in _MEMORY}
        for device in sorted(set(self._devices())):
            try:
                stats = limn.memory_stats(device)
            except limn.Error:
                continue
            for key, _ in _MEMORY:
                families[key].add_metric([device], float(getattr(stats, key)))
        return list(families.values())


class Metrics:
    """The metric objects the service and the HTTP middleware update."""

    def __init__(self, devices: Callable[[], Iterable[str]]) -> None:
        import prometheus_client

        if hasattr(prometheus_client, "disable_created_metrics"):
            # No *_created series next to each counter (a process-wide switch of prometheus-client).
            prometheus_client.disable_created_metrics()
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("limn_requests", "HTTP requests by model, operation and status",
                                ["model", "operation", "status"], registry=r)
        self.failures = Counter("limn_failures", "Failed requests by reason: " + ", ".join(FAILURE_REASONS),
                                ["reason"], registry=r)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)
        self.queue_seconds = Histogram("limn_queue_wait_seconds", "Seconds waiting in the queue",
                                       ["model", "operation"], buckets=_BUCKETS, registry=r)
        self.compute_seconds = Histogram("limn_compute_seconds", "Seconds the library worked",
                                         ["model", "operation"], buckets=_BUCKETS, registry=r)
        self.request_seconds = Histogram("limn_request_duration_seconds",
                                         "Seconds from admission to result (queue wait and compute)",
                                         ["model", "operation"], buckets=_BUCKETS, registry=r)
        self.pending = Gauge("limn_pending_requests", "Requests waiting in the queue", ["model"], registry=r)
        self.inflight = Gauge("limn_inflight_requests", "Requests running in the library", ["model"], registry=r)
        self.images = Counter("limn_images", "Images processed", ["model", "operation"], registry=r)
        self.megapixels = Counter("limn_megapixels", "Megapixels (10^6 pixels) of the images processed",
                                  ["model", "operation"], registry=r)
        r.register(_MemoryCollector(devices))

    def fail(self, reason: str) -> None:
        self.failures.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
