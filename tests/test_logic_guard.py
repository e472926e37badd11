"""Rate limiting of failed AUTHs (firmware/lib/lockguard.py, protocol §7) under the real MicroPython."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, \
    run_state_machine_as_test

import mpyhost

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["logictest"], paths=[MPY], heapsize="1m") as worker:
        yield worker


class G:
    def __init__(self, w, **kw):
        self.w, self.name = w, f"g{next(_ids)}"
        w.call("logictest.new", self.name, "guard", kw)

    def __getattr__(self, method):
        return lambda *a: self.w.call("logictest.call", self.name, method, *a)

    def close(self):
        self.w.call("logictest.drop", self.name)


def test_five_failures_lock_out_for_a_minute(w):
    g = G(w)
    t = 1000
    for i in range(4):
        assert g.failed(t + i) == 0 and g.remaining(t + i) == 0
    assert g.failed(t + 4) == 60
    assert g.remaining(t + 4) == 60 and g.remaining(t + 33) == 31 and g.remaining(t + 63) == 1
    assert g.remaining(t + 64) == 0 and g.remaining(t + 10_000) == 0


def test_failures_during_a_lockout_do_not_count(w):
    g = G(w, threshold=2)
    assert g.failed(0) == 0 and g.failed(1) == 60
    for t in range(2, 61, 5):
        assert g.failed(t) == 0
    assert g.state() == [0, 61, 60]
    assert g.failed(61) == 0 and g.failed(62) == 120   # counted afresh after the end


def test_lockouts_double_up_to_the_cap_and_a_success_resets(w):
    g = G(w, threshold=3, first_s=60, cap_s=3600)
    t, lengths = 0, []
    for _ in range(9):
        for _ in range(2):
            assert g.failed(t) == 0
        n = g.failed(t)
        lengths.append(n)
        t += n
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    g.failed(t)
    g.succeeded()
    assert g.state() == [0, 0, 0]
    assert [g.failed(t), g.failed(t), g.failed(t)] == [0, 0, 60]


def test_config_changes_apply_to_the_next_lockout(w):
    g = G(w)
    w.call("logictest.put", g.name, "threshold", 2)
    w.call("logictest.put", g.name, "first_s", 10)
    assert [g.failed(0), g.failed(0)] == [0, 10]
    assert [g.failed(10), g.failed(10)] == [0, 20]


def test_state_survives_a_reboot(w):
    g = G(w, threshold=2)
    g.failed(100)
    assert g.failed(100) == 60
    saved = g.state()
    h = G(w, threshold=2)
    h.restore(saved)
    assert h.remaining(130) == 30
    assert [h.failed(160), h.failed(160)] == [0, 120]  # the doubling survived too
    h2 = G(w, threshold=2)
    h2.restore([1, 0, 0])
    assert h2.failed(5) == 60                          # and the count of failures in a row


def test_a_clock_resumed_behind_the_lockout_never_lengthens_it(w):
    # lockout at lock time 10_000, reboot resumes the clock from a mark 500 s older
    g = G(w, threshold=1)
    assert g.failed(10_000) == 60
    h = G(w, threshold=1)
    h.restore(g.state())
    assert h.remaining(9_500) == 60 and h.remaining(10_030) == 30


@pytest.mark.parametrize("bad", [[1, 2], [1, 2, 3, 4], [-1, 0, 0], [0, 2 ** 32, 0], [0, 0, "x"]])
def test_restore_rejects_garbage(w, bad):
    g = G(w)
    with pytest.raises(mpyhost.MicroPythonError, match="ValueError|TypeError"):
        g.restore(bad)


class GuardModel(RuleBasedStateMachine):
    """Lockout by the words of §7 against the firmware's Guard, with reboots (state/restore)."""

    w = None

    @initialize(threshold=st.integers(1, 6), first=st.integers(1, 100), cap=st.integers(1, 1000))
    def boot(self, threshold, first, cap):
        self.kw = dict(threshold=threshold, first_s=first, cap_s=cap)
        self.g = G(self.w, **self.kw)
        self.now = 1_000_000
        self.fails = 0      # failures in a row since the last lockout ended or a success
        self.until = 0      # model: end of the current lockout
        self.next = min(first, cap)
        self.lockouts = 0

    def locked(self):
        return self.now < self.until

    @rule()
    def fail(self):
        got = self.g.failed(self.now)
        if self.locked():
            assert got == 0          # refused before it is looked at: not counted
            return
        self.fails += 1
        if self.fails >= self.kw["threshold"]:
            assert got == self.next
            self.until = self.now + self.next
            self.next = min(2 * self.next, self.kw["cap_s"])
            self.fails = 0
            self.lockouts += 1
        else:
            assert got == 0

    @rule()
    def succeed(self):
        if self.locked():
            return                   # a session cannot succeed while AUTH is refused
        self.g.succeeded()
        self.fails = 0
        self.next = min(self.kw["first_s"], self.kw["cap_s"])

    @rule(dt=st.one_of(st.integers(0, 5), st.integers(0, 4000)))
    def wait(self, dt):
        self.now += dt

    @rule()
    def reboot(self):
        saved = self.g.state()
        assert len(saved) == 3 and all(0 <= v < 2 ** 32 for v in saved)
        self.g.close()
        self.g = G(self.w, **self.kw)
        self.g.restore(saved)

    @invariant()
    def remaining_matches(self):
        if hasattr(self, "g"):
            assert self.g.remaining(self.now) == max(0, self.until - self.now)

    def teardown(self):
        if hasattr(self, "g"):
            self.g.close()


def test_guard_against_the_model(w):
    GuardModel.w = w
    run_state_machine_as_test(GuardModel, settings=settings(
        max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]))
