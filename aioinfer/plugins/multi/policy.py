"""EARLIEST_FINISH: whether a device with an idle worker should take a queued run.

OpenVINO's MULTI (``DEVICE_PRIORITY``) gives a run to the first device with an idle worker,
so a device ten times slower than the first takes a run whenever the fast one's workers are
busy, and the model gets slower than its fast device alone. Two rules replace it, both from
what the dispatcher measures (each lane's run time, a moving average of wall time per run):

1. **Expected finish.** A run at queue position ``ahead`` would start on the faster lanes
   after ``ahead + 1`` of their completions (they finish ``sum(workers / seconds)`` runs a
   second) and end one run time later. A slower lane takes it only if it would end sooner.
   So a slow device takes only the overflow of a deep queue, never a run the fast one would
   finish first.
2. **Shared cores.** Devices that report the same ``DEVICE_UUID`` (every host plugin reports
   the host CPU's) compute on the same cores. A run on the slower one then takes cores from
   the faster one, whose runs slow down by as much: a device ten times slower per core costs
   ten of the fast device's runs for each of its own. A slower lane therefore runs only on
   the cores its faster partners' workers leave free (the host's cores for the host CPU, the
   largest worker count of the group otherwise). On a host where the fast plugin's workers
   already cover the cores, the slow one takes only its probes (below) unless the fast one
   cannot take the runs (runtime fallback, draining).

"Faster" is measured (a lane's first run is not: it warms caches and kernels up); until both
lanes have been measured, the priority order decides, and a recent measurement beats an old
one (a load spike on the host inflates the busy lane's run times, never the idle lane's old
figure: comparing them would hand the work to the slow device for a while). Measurements go
stale when a lane takes no runs, and the order may be wrong, so a lane the rules turn away
still gets *probe* runs: one at a time until it is measured (its warm-up and one timed run),
then one after 1, 2, 4... up to 60 seconds (back to 1 s once it wins a run on its merits),
and never sooner than 200 of its own run times after the last (so probes cost at most half a
percent of a core). Without them, a fast device listed second, or one whose first runs were
slow, could be turned away for good.

The core rule counts cores, not the interpreter lock: two Python plugins of one process
(NUMPY and TEMPLATE) also share that, so a "free" core is less free than it looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dispatch import Lane


FRESH_S = 2.0


def fresh(lane: Lane, now: float) -> bool:
    """Whether ``lane``'s measurement is recent (a timed run in the last 2 s, or the last few
    of its own run times)."""
    return now - lane.measured_at <= max(FRESH_S, 4.0 * lane.seconds)


def prefers(other: Lane, lane: Lane, order: Sequence[Lane], now: float) -> bool:
    """Whether ``other`` goes before ``lane``: measured faster (a recent measurement beats an
    old one: a busy host slows the lane that runs, never the idle one's old figure), or,
    while either is unmeasured, listed first."""
    if other.seconds > 0.0 and lane.seconds > 0.0:
        recent = fresh(other, now)
        if recent != fresh(lane, now):
            return recent
        return other.seconds < lane.seconds
    return order.index(other) < order.index(lane)


PROBE_FIRST_S = 1.0
PROBE_MAX_S = 60.0
PROBE_COST = 200.0  # probes at most 1/200 of a core's time: at least 200 run times apart


def worth(lane: Lane, usable: Sequence[Lane], order: Sequence[Lane], ahead: int,
          now: float) -> bool:
    """Whether ``lane`` (with an idle worker) should take a run that has ``ahead`` runs queued
    in front of it; ``usable`` are the lanes that could take it (``lane`` among them).
    ``True`` for a probe too, which the caller must then give the lane (its next probe is
    then due twice as late)."""
    better = [other for other in usable
              if other is not lane and prefers(other, lane, order, now)]
    if not better or _wins(lane, better, ahead):
        lane.probe_every = PROBE_FIRST_S
        return True
    if lane.seconds <= 0.0:
        return lane.busy == 0  # a probe, one at a time: its warm-up, then its first timed run
    if now >= lane.probe_at:
        lane.probe_at = now + max(lane.probe_every, PROBE_COST * lane.seconds)
        lane.probe_every = min(PROBE_MAX_S, 2.0 * lane.probe_every)
        return True
    return False


def _wins(lane: Lane, better: Sequence[Lane], ahead: int) -> bool:
    """Rules 1 and 2 of the module docstring, against the lanes preferred to ``lane``."""
    if lane.group is not None:
        taken = sum(other.workers for other in better if other.group == lane.group)
        if taken and lane.busy >= lane.cores - taken:
            return False
    mine = lane.seconds
    measured = [other for other in better if other.seconds > 0.0]
    if mine <= 0.0 or not measured:
        return True  # runs measure it
    rate = sum(other.workers / other.seconds for other in measured)
    fastest = min(other.seconds for other in measured)
    return mine <= (ahead + 1) / rate + fastest
