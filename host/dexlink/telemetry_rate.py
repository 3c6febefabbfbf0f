"""How often the board sends TELEMETRY while a recording or session runs.

The hand files keep one TELEMETRY every 10th cycle (`[loop] telemetry_decimation`): the
rate a board idles and shows a dashboard at. A recording asks for every loop cycle
instead (SET_CONFIG, decimation 1) for as long as it runs, and puts the board's own
configuration back at the end; `--telemetry-hz` asks for fewer. The link re-applies the
rate after a board reset, like every setting it sent.

    with telemetry_rate(link, None) as rate:    # every cycle
        rate.hz, rate.decimation                # e.g. 1000.0, 1
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from dexlink.errors import UserError
from dexlink.link import Link, LinkError


class TelemetryRateError(UserError):
    """A telemetry rate the board cannot give (above its loop rate, not positive)."""


@dataclass(frozen=True)
class TelemetryRate:
    loop_hz: int
    decimation: int  # one TELEMETRY every `decimation` loop cycles

    @property
    def hz(self) -> float:
        return self.loop_hz / self.decimation


def decimation_for(loop_hz: int, telemetry_hz: float | None) -> int:
    """The decimation that gives telemetry_hz (the nearest the loop allows, never faster);
    None: every cycle."""
    if telemetry_hz is None:
        return 1
    if not telemetry_hz > 0:
        raise TelemetryRateError("--telemetry-hz must be positive (got %g)" % telemetry_hz)
    if telemetry_hz > loop_hz * 1.0001:
        raise TelemetryRateError("--telemetry-hz %g: above the board's loop rate (%d Hz); at "
                                 "most one sample per loop cycle" % (telemetry_hz, loop_hz))
    d = max(1, round(loop_hz / telemetry_hz))
    return d if loop_hz / d <= telemetry_hz * 1.0001 else d + 1


@contextlib.contextmanager
def telemetry_rate(link: Link, telemetry_hz: float | None) -> Iterator[TelemetryRate]:
    """The board sends TELEMETRY at telemetry_hz (None: every loop cycle) until exit, then at
    its rate from before. Loop rate and watchdog are left as they are."""
    before = link.get_config().fields
    keep = {k: before[k] for k in ("loop_hz", "watchdog_ms", "watchdog_action")}
    decimation = decimation_for(keep["loop_hz"], telemetry_hz)
    changed = decimation != before["telemetry_decimation"]
    if changed:
        link.set_config(keep["loop_hz"], decimation, keep["watchdog_ms"], keep["watchdog_action"])
    try:
        yield TelemetryRate(keep["loop_hz"], decimation)
    finally:
        if changed:
            with contextlib.suppress(LinkError):  # a board gone by now has no rate to restore
                link.set_config(keep["loop_hz"], before["telemetry_decimation"],
                                keep["watchdog_ms"], keep["watchdog_action"])
