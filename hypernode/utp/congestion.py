"""LEDBAT congestion control for uTP, as libutp does it: the one-way delay measured from the
timestamps each packet carries, its base (the lowest seen in the last minutes, so that the clock offset
between the two hosts cancels out), and a congestion window that grows while the queuing delay stays
under the target (100 ms) and shrinks above it; slow start at first, halving on loss.

Times: ``now_ms`` in milliseconds, delays in microseconds (the units of the packet header). Nothing here
does I/O; :class:`~hypernode.utp.connection.UTPConnection` feeds it.
"""

from __future__ import annotations

CUR_DELAY_SIZE = 3  # the current delay is the lowest of the last 3 samples
DELAY_BASE_HISTORY = 13  # minutes of base-delay history
MAX_CWND_INCREASE_BYTES_PER_RTT = 3000
MAX_WINDOW_DECAY = 100  # ms between two halvings of the window on loss
MIN_WINDOW_SIZE = 10
TARGET_DELAY = 100_000  # us
MASK32 = 0xFFFFFFFF


def wrapping_less(lhs: int, rhs: int, mask: int) -> bool:
    """``lhs < rhs`` for counters that wrap at ``mask + 1`` (the shorter way round decides)."""
    return ((rhs - lhs) & mask) < ((lhs - rhs) & mask)


class DelayHistory:
    """Delay samples relative to their base: the lowest sample of the last minutes (one slot a minute),
    which removes the clocks' offset; the value is the lowest of the last three."""

    __slots__ = ("base", "cur", "cur_idx", "base_hist", "base_idx", "base_time", "initialized")

    def __init__(self, now_ms: int) -> None:
        self.base = 0
        self.cur = [0] * CUR_DELAY_SIZE
        self.cur_idx = 0
        self.base_hist = [0] * DELAY_BASE_HISTORY
        self.base_idx = 0
        self.base_time = now_ms
        self.initialized = False

    def shift(self, offset: int) -> None:
        """Raise every base by ``offset`` (clock skew seen in the other direction)."""
        self.base_hist = [(b + offset) & MASK32 for b in self.base_hist]
        self.base = (self.base + offset) & MASK32

    def add_sample(self, sample: int, now_ms: int) -> None:
        if not self.initialized:
            self.base_hist = [sample] * DELAY_BASE_HISTORY
            self.base = sample
            self.initialized = True
        if wrapping_less(sample, self.base_hist[self.base_idx], MASK32):
            self.base_hist[self.base_idx] = sample
        if wrapping_less(sample, self.base, MASK32):
            self.base = sample
        self.cur[self.cur_idx] = (sample - self.base) & MASK32
        self.cur_idx = (self.cur_idx + 1) % CUR_DELAY_SIZE
        if now_ms - self.base_time > 60_000:  # a new minute's slot
            self.base_time = now_ms
            self.base_idx = (self.base_idx + 1) % DELAY_BASE_HISTORY
            self.base_hist[self.base_idx] = sample
            self.base = self.base_hist[0]
            for b in self.base_hist:
                if wrapping_less(b, self.base, MASK32):
                    self.base = b

    def value(self) -> int:
        return min(self.cur)


class Ledbat:
    """The congestion window (``max_window``, bytes) and the delay measurements that drive it."""

    __slots__ = ("packet_size", "sndbuf", "target", "max_window", "slow_start", "ssthresh", "ours", "theirs",
                 "last_maxed_out_window", "last_rwin_decay", "reply_micro", "clock_drift", "average_delay",
                 "average_delay_base", "delay_sum", "delay_samples", "average_sample_time")

    def __init__(self, packet_size: int, sndbuf: int, now_ms: int, target: int = TARGET_DELAY) -> None:
        self.packet_size = packet_size
        self.sndbuf = sndbuf
        self.target = target if target > 0 else TARGET_DELAY
        self.max_window = packet_size  # one packet fits when the connection starts
        self.slow_start = True
        self.ssthresh = sndbuf
        self.ours = DelayHistory(now_ms)  # our packets' one-way delay, as the remote reports it
        self.theirs = DelayHistory(now_ms)  # the remote's packets' delay, as we measure it
        self.last_maxed_out_window = 0
        self.last_rwin_decay = now_ms - MAX_WINDOW_DECAY
        self.reply_micro = 0  # the delay we report back in our next packet's timestamp_diff
        self.clock_drift = 0  # us per 5 s
        self.average_delay = 0
        self.average_delay_base = 0
        self.delay_sum = 0
        self.delay_samples = 0
        self.average_sample_time = now_ms + 5000

    # -- measurements --------------------------------------------------------------------------------

    def on_packet(self, timestamp: int, timestamp_diff: int, now_us: int, now_ms: int) -> int:
        """A packet came: measure its delay (for our next reply) and record the delay it reports for
        ours. Returns that reported delay (0 when the remote has none yet)."""
        their_delay = 0 if timestamp == 0 else (now_us - timestamp) & MASK32
        self.reply_micro = their_delay
        prev_base = self.theirs.base
        if their_delay != 0:
            self.theirs.add_sample(their_delay, now_ms)
        # their base went down: our clock runs faster than theirs; move our base up as much
        if prev_base != 0 and wrapping_less(self.theirs.base, prev_base, MASK32):
            skew = (prev_base - self.theirs.base) & MASK32
            if skew <= 10_000:
                self.ours.shift(skew)
        actual = 0 if timestamp_diff == 0x7FFFFFFF else timestamp_diff
        if actual != 0:
            self.ours.add_sample(actual, now_ms)
            self._average(actual, now_ms)
        return actual

    def _average(self, actual: int, now_ms: int) -> None:
        """The average delay over 5 s windows, whose slope estimates the clock drift."""
        if self.average_delay_base == 0:
            self.average_delay_base = actual
        down = (self.average_delay_base - actual) & MASK32
        up = (actual - self.average_delay_base) & MASK32
        self.delay_sum += up if down > up else -down
        self.delay_samples += 1
        if now_ms > self.average_sample_time:
            prev = self.average_delay
            self.average_delay = int(self.delay_sum / self.delay_samples)
            self.average_sample_time += 5000
            self.delay_sum = 0
            self.delay_samples = 0
            lo, hi = min(prev, self.average_delay), max(prev, self.average_delay)
            adjust = -lo if lo > 0 else (-hi if hi < 0 else 0)
            if adjust:
                self.average_delay_base = (self.average_delay_base - adjust) & MASK32
                self.average_delay += adjust
                prev += adjust
            drift = self.average_delay - prev
            self.clock_drift = int((self.clock_drift * 7 + drift) / 8)

    def clamp_to_rtt(self, min_rtt: int) -> None:
        """The delay cannot exceed the round trip: move its base up if it does."""
        value = self.ours.value()
        if value > min_rtt:
            self.ours.shift(value - min_rtt)

    # -- the window ----------------------------------------------------------------------------------

    def on_ack(self, bytes_acked: int, min_rtt: int, now_ms: int) -> None:
        """Grow or shrink the window for ``bytes_acked`` bytes acked (libutp's apply_ccontrol)."""
        our_delay = min(self.ours.value(), min_rtt)
        target = self.target
        if self.clock_drift < -200_000:  # a remote whose clock runs slow to cheat gets a penalty
            our_delay += (-self.clock_drift - 200_000) // 7
        off_target = target - our_delay
        max_window = self.max_window
        window_factor = min(bytes_acked, max_window) / max(max_window, bytes_acked)
        delay_factor = off_target / target
        scaled_gain = MAX_CWND_INCREASE_BYTES_PER_RTT * window_factor * delay_factor
        if scaled_gain > 0 and now_ms - self.last_maxed_out_window > 1000:
            scaled_gain = 0  # not sending at the window's limit: no reason to grow it
        ledbat_cwnd = max(MIN_WINDOW_SIZE, int(max_window + scaled_gain))
        if self.slow_start:
            ss_cwnd = int(max_window + window_factor * self.packet_size)
            if ss_cwnd > self.ssthresh:
                self.slow_start = False
            elif our_delay > target * 0.9:
                self.slow_start = False
                self.ssthresh = max_window
            else:
                max_window = max(ss_cwnd, ledbat_cwnd)
        else:
            max_window = ledbat_cwnd
        self.max_window = min(max(max_window, MIN_WINDOW_SIZE), self.sndbuf)

    def on_loss(self, now_ms: int) -> None:
        """A packet was lost: halve the window, at most once per 100 ms."""
        if now_ms - self.last_rwin_decay >= MAX_WINDOW_DECAY:
            self.max_window = max(int(self.max_window * 0.5), MIN_WINDOW_SIZE)
            self.last_rwin_decay = now_ms
            self.slow_start = False
            self.ssthresh = self.max_window

    def on_timeout(self, idle: bool) -> None:
        """The retransmission timer fired: an idle connection decays its window by a third, one with
        packets in flight restarts from one packet in slow start."""
        if idle and self.max_window > self.packet_size:
            self.max_window = max(self.max_window * 2 // 3, self.packet_size)
        else:
            self.max_window = self.packet_size
            self.slow_start = True
