"""bench/loadgen.py's TIME_WAIT keeper between samples, and compare_ports' paired ratio."""

from __future__ import annotations

from pathlib import Path

import compare_ports
import loadgen


def state_of(pid: int) -> str:
    """The one-letter state in /proc/PID/stat: "T" for a stopped process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_top_up_refills_the_time_wait_count_then_stops_the_keeper() -> None:
    preset = loadgen.Preset(tcp=2, udp=1, processes=1, time_wait=300)
    with loadgen.LoadGen(preset, port_base=38100) as load:
        assert load.top_up() >= 0  # no keeper yet: just the count (others' expire meanwhile)
        load.fill_time_wait(preset.time_wait)
        keeper = load._keeper
        assert keeper is not None
        for _sample in range(3):
            # Read after the stop: older TIME_WAIT sockets (other tests') may expire meanwhile.
            assert load.top_up() >= 0.9 * preset.time_wait
            assert state_of(keeper) == "T"  # stopped while the sample would run
        load.stop_time_wait()  # a stopped keeper is killed and reaped all the same
        assert not Path(f"/proc/{keeper}").exists()


def test_paired_ratio_is_the_median_of_each_round_s_ratio() -> None:
    # Round by round 2.0, 0.5 and 2.0: median 2.0, where the medians' ratio is 1.0.
    tool = {"wall_s": [2.0, 1.0, 4.0]}
    other = {"wall_s": [1.0, 2.0, 2.0]}
    assert compare_ports.paired_ratio(tool, other) == 2.0
