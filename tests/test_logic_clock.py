"""The time helper and the lock's clock (firmware/lib/lockclock.py, protocol §2.5, §5.1) under MicroPython."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import mpyhost

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
EPOCH_2000 = 946_684_800
T0 = 1_767_225_600
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["logictest"], paths=[MPY], heapsize="1m") as worker:
        yield worker


class Rtc:
    def __init__(self, w, t):
        self.w, self.name = w, f"rtc{next(_ids)}"
        w.call("logictest.new", self.name, "rtc", {"t": t})

    @property
    def t(self):
        return self.w.call("logictest.get", self.name, "t")

    @t.setter
    def t(self, v):
        self.w.call("logictest.put", self.name, "t", v)

    @property
    def sets(self):
        return self.w.call("logictest.get", self.name, "sets")


class Clock:
    def __init__(self, w, rtc, **kw):
        self.w, self.name = w, f"clk{next(_ids)}"
        w.call("logictest.new", self.name, "clock", dict(kw, source=rtc.name))

    def __getattr__(self, method):
        return lambda *a: self.w.call("logictest.call", self.name, method, *a)

    @property
    def uncertain(self):
        return self.w.call("logictest.get", self.name, "uncertain")


# ---------------------------------------------------------------- the epoch helper

def test_epoch_conversions(w):
    c = w.call("logictest.consts")
    assert c["EPOCH_2000"] == EPOCH_2000 == 946684800
    assert c["DEVICE_EPOCH_YEAR"] == 1970           # the unix port counts from 1970
    assert w.call("logictest.epoch", "unix_from_device", 0, 2000) == EPOCH_2000
    assert w.call("logictest.epoch", "device_from_unix", T0, 2000) == T0 - EPOCH_2000
    assert w.call("logictest.epoch", "unix_from_device", T0, 1970) == T0
    assert w.call("logictest.epoch", "unix_from_device", T0, None) == T0
    assert w.call("logictest.epoch", "device_from_unix", T0, None) == T0
    for t in (0, 1, EPOCH_2000, T0, 2 ** 32 - 1):
        assert w.call("logictest.epoch", "unix_from_device", w.call("logictest.epoch", "device_from_unix", t, 2000),
                      2000) == t
    with pytest.raises(mpyhost.MicroPythonError, match="ValueError"):
        w.call("logictest.epoch", "unix_from_device", 0, 1980)


def test_unix_time_is_unix_seconds(micropython):
    res = micropython(code="import lockclock; print(lockclock.unix_time())")
    assert res.ok, res.stderr
    assert abs(int(res.stdout) - time.time()) < 5


def test_device_epoch_is_read_from_the_port():
    # the same module under CPython (1970) imports and agrees
    import sys
    sys.path.insert(0, str(mpyhost.FIRMWARE_LIB))
    import lockclock
    assert lockclock.DEVICE_EPOCH_YEAR == time.gmtime(0)[0] == 1970
    assert lockclock.unix_from_device(5, 2000) == EPOCH_2000 + 5


# ---------------------------------------------------------------- boot

def test_power_loss_resumes_at_the_mark_and_is_uncertain(w):
    rtc = Rtc(w, EPOCH_2000)                         # an ESP32 RTC after power-on
    c = Clock(w, rtc, hwm=T0, power_lost=True)
    assert c.now() == T0 and c.uncertain and c.time_uncertain()
    assert rtc.sets == [T0]                           # the RTC counts on from the mark
    rtc.t = T0 + 7
    assert c.now() == T0 + 7


def test_power_loss_with_a_kept_rtc_keeps_it_but_is_uncertain(w):
    rtc = Rtc(w, T0 + 100)
    c = Clock(w, rtc, hwm=T0, power_lost=True)
    assert c.now() == T0 + 100 and c.uncertain and rtc.sets == []


def test_soft_reset_keeps_a_certain_clock(w):
    rtc = Rtc(w, T0 + 100)
    c = Clock(w, rtc, hwm=T0, power_lost=False)
    assert c.now() == T0 + 100 and not c.uncertain


def test_soft_reset_of_an_uncertain_clock_stays_uncertain(w):
    c = Clock(w, Rtc(w, T0 + 100), hwm=T0, power_lost=False, uncertain=True)
    assert c.uncertain


def test_rtc_below_the_mark_without_power_loss_is_uncertain(w):
    rtc = Rtc(w, T0 - 50)
    c = Clock(w, rtc, hwm=T0, power_lost=False)
    assert c.now() == T0 and c.uncertain and rtc.sets == [T0]


# ---------------------------------------------------------------- running

def test_never_backwards_even_if_the_rtc_jumps_back(w):
    rtc = Rtc(w, T0)
    c = Clock(w, rtc, hwm=T0, power_lost=False)
    rtc.t = T0 + 30
    assert c.now() == T0 + 30 and not c.uncertain
    rtc.t = T0 - 3600
    assert c.now() == T0 + 30                      # held, and the RTC set forward again
    assert rtc.sets[-1] == T0 + 30 and c.uncertain  # a lower bound from now on
    rtc.t += 5
    assert c.now() == T0 + 35


def test_raise_to_is_a_lower_bound_and_stays_uncertain(w):
    rtc = Rtc(w, EPOCH_2000)
    c = Clock(w, rtc, hwm=T0, power_lost=True)
    c.take_hwm()
    c.raise_to(T0 - 10)
    assert c.now() == T0 and not c.hwm_due(T0)      # lower than now: nothing
    c.raise_to(T0 + 500)
    assert c.now() == T0 + 500 and c.uncertain and rtc.sets[-1] == T0 + 500
    assert c.hwm_due(T0 + 500)


def test_time_token_sets_forward_only_and_clears_uncertainty(w):
    rtc = Rtc(w, EPOCH_2000)
    c = Clock(w, rtc, hwm=T0, power_lost=True)
    assert c.set_time(T0 + 3600) == T0               # returns the previous lock time
    assert c.now() == T0 + 3600 and not c.uncertain and rtc.sets[-1] == T0 + 3600
    c2 = Clock(w, Rtc(w, EPOCH_2000), hwm=T0, power_lost=True)
    assert c2.set_time(T0 - 999) == T0               # an older token: clock stays, flag clears
    assert c2.now() == T0 and not c2.uncertain


def test_mark_is_due_every_period_and_after_each_change(w):
    rtc = Rtc(w, T0)
    c = Clock(w, rtc, hwm=T0, power_lost=False, persist_every_s=600)
    assert not c.hwm_due(T0)
    rtc.t = T0 + 599
    assert not c.hwm_due(c.now())
    rtc.t = T0 + 600
    assert c.hwm_due(c.now())
    assert c.take_hwm() == T0 + 600 and not c.hwm_due(T0 + 600)
    assert w.call("logictest.get", c.name, "hwm") == T0 + 600
    c.set_time(T0 + 601)
    assert c.hwm_due(c.now())
    assert c.take_hwm() == T0 + 601 and not c.hwm_due()


def test_boot_above_the_mark_asks_for_a_save(w):
    c = Clock(w, Rtc(w, T0 + 5000), hwm=T0, power_lost=False)
    assert c.hwm_due(T0 + 5000)
    c2 = Clock(w, Rtc(w, EPOCH_2000), hwm=T0, power_lost=True)
    assert not c2.hwm_due(T0)


# ---------------------------------------------------------------- against a model

class ClockModel(RuleBasedStateMachine):
    """RTC ticks and jumps, raises, tokens, saves and reboots: the firmware clock against §2.5 in a few lines."""

    w = None

    @initialize(start=st.integers(T0 - 10_000, T0 + 10_000), every=st.integers(1, 1000))
    def boot(self, start, every):
        self.every = every
        self.rtc = Rtc(self.w, start)
        self.saved = (0, False)          # (hwm, uncertain) as the owner persisted them
        self._boot(power_lost=True)

    def _boot(self, power_lost):
        hwm, unc = self.saved
        rtc = self.rtc.t
        if hasattr(self, "c"):
            self.w.call("logictest.drop", self.c.name)
        self.c = Clock(self.w, self.rtc, hwm=hwm, power_lost=power_lost, persist_every_s=self.every,
                       uncertain=unc)
        self.uncertain = power_lost or unc or rtc < hwm
        self.last = max(rtc, hwm)
        self.mark = hwm
        self.dirty = self.last > hwm
        self.floor = hwm                 # never below what was persisted

    def _now(self):
        t = self.rtc.t
        if t < self.last:
            t = self.last
            self.uncertain = True
            self.dirty = True
        self.last = t
        return t

    @rule(dt=st.integers(0, 2000))
    def tick(self, dt):
        self.rtc.t = self.rtc.t + dt

    @rule(dt=st.integers(1, 100_000))
    def rtc_jumps_back(self, dt):
        self.rtc.t = self.rtc.t - dt

    @rule()
    def read(self):
        want = self._now()
        assert self.c.now() == want

    @rule(d=st.integers(-5000, 5000))
    def raise_to(self, d):
        t = self.last + d
        want = self._now()
        if t > want:
            self.last = t
            self.dirty = True
        self.c.raise_to(t)

    @rule(d=st.integers(-5000, 5000))
    def time_token(self, d):
        t = self.last + d
        prev = self._now()
        assert self.c.set_time(t) == prev
        self.last = max(prev, t)
        self.uncertain = False
        self.dirty = True

    @rule()
    def persist_if_due(self):
        now = self._now()
        due = self.dirty or now - self.mark >= self.every
        assert self.c.hwm_due(self.c.now()) == due
        if due:
            assert self.c.take_hwm() == now
            self.mark = now
            self.dirty = False
            self.saved = (now, self.uncertain)
            assert not self.c.hwm_due(now)

    @rule(power_lost=st.booleans(), rtc_reset=st.booleans())
    def reboot(self, power_lost, rtc_reset):
        if power_lost and rtc_reset:
            self.rtc.t = EPOCH_2000
        self._boot(power_lost)

    @invariant()
    def agrees(self):
        if not hasattr(self, "c"):
            return
        now = self._now()
        assert self.c.now() == now >= self.floor
        assert self.c.time_uncertain() == self.uncertain


    def teardown(self):
        for o in ("c", "rtc"):
            if hasattr(self, o):
                self.w.call("logictest.drop", getattr(self, o).name)


def test_clock_against_the_model(w):
    ClockModel.w = w
    run_state_machine_as_test(ClockModel, settings=settings(
        max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]))
