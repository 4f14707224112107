"""A worker's own view of its consumer positions, as gauges read at scrape time (no timer, no idle cost).

The broker's lag (log end minus the group's committed offset) says *that* a group is behind, not *why*. The
consumer's view tells the three cases apart when a lag will not go:

* ``read`` behind the log end: the consumer stopped fetching (or its fetches come back empty);
* ``read`` at the end but ``acked`` behind it, or ``in_flight`` > 0: a handler has not finished;
* everything acked but ``committed`` behind: offset commits stopped (faust commits only a gap-free run of acked
  offsets after its committed one, so a single offset that was read and never acked holds every commit back).

faust keeps these in its consumer (``_read_offset``, ``_acked``, ``_committed_offset``, ``_unacked_messages``);
there is no public accessor. The scrape runs on the probe server's thread: each mapping is copied in one C-level
call (atomic under the GIL) before it is read, and a scrape that races a rebalance just reports fewer partitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class ConsumerOffsets(Collector):
    def __init__(self, app: Any, group: str) -> None:
        self.app = app
        self.group = group

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "kagi_consumer_offset",
            "This worker's own view of a partition: read (last offset fetched), acked (highest offset handled "
            "and not yet committed), committed (next offset to commit, as faust last committed it), in_flight "
            "(delivered to a handler, not yet handled)",
            labels=["group", "topic", "partition", "kind"])
        for (topic, partition), values in self.snapshot().items():
            for kind, value in values.items():
                family.add_metric([self.group, topic, str(partition), kind], value)
        yield family

    def snapshot(self) -> dict[tuple[str, int], dict[str, float]]:
        consumer = getattr(self.app, "_consumer", None)  # not created before the worker starts
        if consumer is None:
            return {}
        read = dict(consumer._read_offset)
        acked = {tp: list(offsets) for tp, offsets in dict(consumer._acked).items()}
        committed = dict(consumer._committed_offset)
        in_flight: dict[Any, int] = {}
        for message in list(consumer._unacked_messages):
            if not message.acked:
                in_flight[message.tp] = in_flight.get(message.tp, 0) + 1
        views: dict[tuple[str, int], dict[str, float]] = {}
        for tp in set(read) | set(committed) | set(acked) | set(in_flight):
            view: dict[str, float] = {"in_flight": in_flight.get(tp, 0)}
            if read.get(tp) is not None:
                view["read"] = read[tp]
            if acked.get(tp):
                view["acked"] = max(acked[tp])
            if committed.get(tp) is not None:
                view["committed"] = committed[tp]
            views[(tp.topic, tp.partition)] = view
        return views


__all__ = ["ConsumerOffsets"]
