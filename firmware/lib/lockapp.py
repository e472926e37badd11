# One door unit: builds the lock from its hardware (lockhal.Hardware) and its
# durable state (a key-value store and a journal record store), and runs it.
# `poll()` is one synchronous step of the unit's housekeeping (sensors ->
# mechanism -> motor, journal, feedback, clock persistence, watchdog); the
# asyncio tasks of `run()` only call it and the transports. Tests and the
# simulator call poll() directly with simulated time.
import struct
import lockcrypto
from lockkeys import KeyStore
from lockjournal import Journal
from lockctx import LockContext
from lockclock import Clock
from lockguard import Guard
from lockdeny import DenyList
from lockmech import Mechanism
import lockbattery
import locksession

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_EV_BOOT = const(0x01)
_EV_PROVISIONED = const(0x13)
_EV_TIME_UNCERTAIN = const(0x0D)
_E_OK = const(0)
_E_PROVISIONED = const(30)
_EV_REKEYED = const(0x0F)
_EV_BATTERY = const(0x0B)
_BR_DAILY = const(0)
_BR_FLOOR = const(5)
_EV_DENIED = const(0x04)
_E_BATTERY_CRITICAL = const(24)
_B_LOCKED = const(1)
_B_LOCKING = const(4)
_B_UNLOCKED = const(3)
_B_UNLOCKING = const(2)

_POLL_MS = const(20)
_ID_KEY = b"identity"
_HWM_KEY = b"hwm"
_GUARD_KEY = b"guard"
_DENY_KEY = b"deny"
_JOURNAL_KEY = b"journal"
_BATT_KEY = b"battday"
_BATT_IDLE_MS = const(60000)  # idle battery sample period
_BATT_REST_MS = const(2000)   # cells recover this long after a motor run before an idle sample
_SIG_DENIED = const(3)        # lockhal SIG_DENIED / SIG_LOW_BATTERY
_SIG_LOW_BATTERY = const(5)
_POS_UNLOCKED = const(2)      # lockhal.POS_UNLOCKED
_RESET_DEEPSLEEP = const(4)   # lockhal.RESET_DEEPSLEEP
_WOKE_INSIDE = const(1)       # lockhal.WOKE_INSIDE / WOKE_OUTSIDE
_WOKE_OUTSIDE = const(2)
_EV_WAKE_MUTED = const(0x15)
_CFG_POWER_PROFILE = const(5)  # lockcodes.CFG_POWER_PROFILE
# reset causes after which the RTC still holds the time (lockhal.RESET_*)
_RTC_KEPT = (3, 4, 5)  # watchdog, deep-sleep wake, soft reset


class DoorUnit:
    def __init__(self, hw, kv, records, random=lockcrypto.random_bytes):
        self.hw = hw
        self.kv = kv
        self._ms = 0              # monotonic milliseconds since boot
        self._last = hw.ticks_ms()
        ident = kv.load(_ID_KEY)
        self.lock_id = ident if ident is not None and len(ident) == 8 else b"\x00" * 8
        self.keystore = KeyStore(kv, self.lock_id)
        self.guard = Guard()
        g = kv.load(_GUARD_KEY)
        if g:
            try:
                self.guard.restore(tuple(struct.unpack(">III", g)))
            except (ValueError, TypeError):
                pass
        blob = kv.load(_DENY_KEY)
        self.deny = DenyList()
        if blob:
            try:
                self.deny = DenyList.decode(blob)
            except ValueError:
                pass  # damaged: an empty list; phones push the current one (version > 0)
        self.mech = Mechanism(motor_timeout_ms=hw.motor_timeout_ms)
        keys = self.keystore.keys
        self.journal = Journal(records, self.lock_id, keys.jm if keys else b"\x00" * 32, kv.load(_JOURNAL_KEY))
        # the clock never goes back past its persisted mark nor the newest record
        # (a blob of u32 mark + u8 uncertain flag; 4-byte blobs from older units)
        blob = kv.load(_HWM_KEY)
        hwm = struct.unpack(">I", blob[:4])[0] if blob and len(blob) >= 4 else 0
        was_uncertain = bool(blob and len(blob) >= 5 and blob[4])
        hwm = max(hwm, self.journal.last_time())
        cause = hw.reset_cause()
        self.clock = Clock(hw.clock, hwm, power_lost=cause not in _RTC_KEPT, uncertain=was_uncertain)
        self.batt = lockbattery.Monitor(hw.board["battery"])
        self.batt.boot_record = cause not in _RTC_KEPT  # new cells mean a power-on reset
        self.batt.sample(hw.battery.read_mv())  # the level is known before the first command
        self._batt_next = 0
        self._batt_run = False
        d = kv.load(_BATT_KEY)
        self._batt_day = struct.unpack(">I", d)[0] if d and len(d) == 4 else -1
        self.ctx = LockContext(self.lock_id, self.keystore, self.clock, self.guard, self.deny, self.mech,
                               self.journal, kv, self.ms, random, battery=self.batt, door_open=self._door_open)
        self.ctx.wipe = self._wipe
        # the deep-sleep profile (docs/power.md): the board's default, or config key 5 = 1
        self._sleeper = None
        self._wake_press = False
        quiet = False  # a wake by the outside source or the timer: no BOOT record (flash wear)
        if hw.power_profile == "deep_sleep" or self.ctx.config_values[_CFG_POWER_PROFILE] == 1:
            import locksleep
            sl = self._sleeper = locksleep.Sleeper(rtc=hw.clock)
            src = hw.wake_source()
            # the inside button's wake is its press; an outside wake never moves the bolt
            self._wake_press = src == _WOKE_INSIDE
            quiet = cause == _RESET_DEEPSLEEP and src != _WOKE_INSIDE
            if src == _WOKE_OUTSIDE:
                sl.woke_outside(self._ms)
        self._quiet = quiet
        self.restart_due = None   # ms: restart into factory mode after a factory reset
        if self.keystore.keys is not None and not self.journal.tail_ok:
            # power died between a re-key and its REKEYED record: that record
            # comes first, as the first one under the new key (docs/storage.md)
            self.ctx.log(_EV_REKEYED, arg=self.keystore.keys.epoch)
        fw = self.ctx.fw
        if not quiet:
            self.ctx.log(_EV_BOOT, arg16=cause, arg=(fw[0] << 16) | (fw[1] << 8) | fw[2])
        if self.clock.time_uncertain() and not quiet:
            self.ctx.log(_EV_TIME_UNCERTAIN)
            if not was_uncertain:
                self._save_clock()  # a later reset that keeps the RTC must not make it certain

    def provision_request(self, nonce_l, msg):
        # the serial link's PROVISION (§3.4)
        import lockprov
        return lockprov.provision_request(self, nonce_l, msg)

    def _wipe(self):
        # the session's FACTORY_RESET, after the journal was found acknowledged
        import lockprov
        return lockprov.wipe(self)

    def _save_clock(self):
        mark = self.clock.take_hwm()
        self.kv.save(_HWM_KEY, struct.pack(">IB", mark, 1 if self.clock.time_uncertain() else 0))

    def ms(self):
        return self._ms

    def _door_open(self):
        return not self.hw.door.is_closed()

    @property
    def provisioned(self):
        return self.keystore.keys is not None

    def provision(self, lock_id, epoch, master, now):
        # factory mode only (the serial provisioning path calls this)
        if self.provisioned:
            return _E_PROVISIONED
        # first: no record of an earlier life may go on under the new key
        self.journal.store.clear()
        self.kv.save(_ID_KEY, lock_id)
        self.lock_id = lock_id
        self.keystore.lock_id = lock_id
        self.keystore.provision(epoch, master)
        self.ctx.lock_id = lock_id
        self.journal.__init__(self.journal.store, lock_id, self.keystore.keys.jm)
        self.clock.set_time(now)
        self.ctx.log(_EV_PROVISIONED)
        return _E_OK

    def session(self):
        s = locksession.LockSession(self.ctx)
        sl = self._sleeper
        if sl is not None:
            # the deep-sleep profile holds the unit awake while a session may go on;
            # the transport's close() (the phone hung up) ends the hold
            sl.opened(self._ms)
            close = s.close
            done = []

            def closed():
                close()
                if not done:
                    done.append(1)
                    sl.closed(self._ms)
            s.close = closed
        return s

    def advert(self):
        # (lock id, battery %, flags) for the advertisement
        return self.lock_id, self.batt.pct(), self.ctx.flags()

    def _battery(self):
        # sample idle every _BATT_IDLE_MS and on every poll of a motor run;
        # journal level changes and one record per day of lock time
        hw = self.hw
        b = self.batt
        if hw.motor.direction:
            b.sample(hw.battery.read_mv(), True)
            self._batt_run = True
        else:
            if self._batt_run:
                self._batt_run = False
                b.run_end()
                self._batt_next = self._ms + _BATT_REST_MS
            if self._ms >= self._batt_next:
                b.sample(hw.battery.read_mv(), False)
                self._batt_next = self._ms + _BATT_IDLE_MS
        ev = b.ev
        b.ev = []
        for reason in ev:
            self.ctx.log(_EV_BATTERY, arg16=b.mv(), arg=b.record_arg(reason), final=reason == _BR_FLOOR)
        day = self.clock.now() // 86400
        if b.mv() and b.journal_ok() and day != self._batt_day and self.provisioned:
            if self._batt_day >= 0:
                self.ctx.log(_EV_BATTERY, arg16=b.mv(), arg=b.record_arg(_BR_DAILY))
            self._batt_day = day
            self.kv.save(_BATT_KEY, struct.pack(">I", day))
        if b.refused:
            b.refused = 0
            hw.buzzer.signal(_SIG_DENIED)
            hw.led.signal(_SIG_LOW_BATTERY)

    def poll(self):
        hw = self.hw
        now = hw.ticks_ms()
        self._ms += max(0, hw.ticks_diff(now, self._last))
        self._last = now
        if self.restart_due is not None and self._ms >= self.restart_due:
            hw.reset()  # after a factory reset: boot again in factory mode (REPL back)
        mech = self.mech
        pos = hw.bolt.position()
        press = hw.button.take() or self._wake_press
        self._wake_press = False
        st = mech.state
        # the press would unlock (lockmech: it toggles; from JAMMED or UNKNOWN it
        # unlocks unless the bolt reads unlocked) on a critical battery: refused,
        # the motor would brown out; egress by the thumb-turn
        if (press and not self.batt.unlock_ok() and st != _B_UNLOCKED and st != _B_UNLOCKING
                and (st == _B_LOCKED or st == _B_LOCKING or pos != _POS_UNLOCKED)):
            press = False
            self.batt.refused += 1
            self.ctx.log(_EV_DENIED, arg16=_E_BATTERY_CRITICAL, arg=2)
        mech.update(self._ms, pos, hw.door.is_closed(), press)
        hw.motor.drive(mech.motor)
        for event, arg16, arg in mech.events():
            self.ctx.log(event, arg16=arg16, arg=arg)
        fb = mech.take_feedback()
        if fb:
            hw.buzzer.signal(fb)
            if self.batt.flags():
                hw.led.signal(_SIG_LOW_BATTERY)  # every action warns while the battery is low
        self._battery()
        hw.buzzer.poll()
        hw.led.poll()
        self.ctx.save_journal_state()
        if self.clock.hwm_due(self.clock.now()) and self.batt.journal_ok():
            self._save_clock()
        hw.wdt.feed()
        s = self._sleeper
        # a factory unit stays awake for its provisioning cable
        if (s is not None and s.due(self._ms, mech.state, mech.motor, hw.door.is_closed(), self.journal.head)
                and self.provisioned):
            t = hw.clock.time()
            n = s.count(t)
            if n:  # outside wakes nobody used: the pad is muted a while (one record)
                self.ctx.log(_EV_WAKE_MUTED, arg16=n, arg=s.mute_left(t))
            self.ctx.save_journal_state()
            if self.batt.journal_ok() and not (self._quiet and not s.sessions):
                self._save_clock()  # not after a wake nobody used: no flash write per touch
            s.sleep(hw, t)  # never returns; a wake source boots the unit again

    async def run(self, links=()):
        # links: transports with `async run()` (BLE, serial); poll() is the heartbeat
        import asyncio
        hw = self.hw
        hw.wdt.start()
        ended = []  # (link, error or None): a transport's end, kept here so asyncio never
                    # prints an unretrieved error onto the console (the serial link)

        async def guard(link):
            try:
                await link.run()
                ended.append(None)
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # the simulator's resets and power cuts too
                ended.append(e)

        tasks = [asyncio.create_task(guard(link)) for link in links]
        try:
            while True:
                self.poll()
                if ended:
                    if ended[0] is not None:
                        raise ended[0]  # a transport failed: re-raise its error (serve() resets)
                    raise RuntimeError("link ended")
                await asyncio.sleep_ms(_POLL_MS)
        finally:
            hw.motor.drive(0)
            for link, t in zip(links, tasks):
                stop = getattr(link, "stop", None)
                if stop is not None:
                    stop()  # a flag the link honours even if a cancel is lost
                t.cancel()


def serve(unit, links=(), reset=None):
    # Runs the unit until it stops. In production (provisioned) any unhandled
    # error resets the unit instead of ending at a REPL prompt; the motor is
    # switched off first (DoorUnit.run's finally). Returns only in factory mode.
    import asyncio
    try:
        asyncio.run(unit.run(links))
    except BaseException:
        unit.hw.motor.drive(0)
        if unit.provisioned and reset is not None:
            reset()
            return
        raise


def boot(hw, mount="/lock", random=lockcrypto.random_bytes):
    # A unit on its board's flash partition (docs/storage.md): littlefs for the
    # key-value blobs mounted at `mount`, the journal ring beside it.
    # unit.storage.close() unmounts it (the simulator, before a reboot).
    import lockstore
    st = lockstore.Storage(hw.partition(), mount)
    unit = DoorUnit(hw, st.kv, st.records, random)
    unit.storage = st
    return unit


def main(board_dir=None, kv_root="/lock"):
    # The device entry point (firmware/main.py). A board with a "sim" part is a
    # simulated unit on the unix port: the same code on the simulator twin.
    import gc
    import sys
    import lockhal
    # every module is loaded by now: the imports' garbage goes before the unit's
    # long-lived state is allocated, which keeps the heap from fragmenting
    gc.collect()
    if board_dir is None:
        # the unit's filesystem root: "/" on a unit, the simulated unit's flash
        # directory (the working directory) on the unix port
        board_dir = "." if sys.platform in ("linux", "darwin") else "/"
    board = lockhal.load_board("board", board_dir)
    if "sim" in board:
        import lockunit_sim
        return lockunit_sim.main(board, run_unit, kv_root)
    import lockhal_esp32
    hw = lockhal.wire(board, lockhal_esp32)
    run_unit(hw, kv_root)


def run_unit(hw, kv_root="/lock", extra_links=(), ble=True):
    # boot the unit on its flash and serve it: the serial maintenance link on the
    # USB console (PROVISION in factory mode, §3.4) and BLE when aioble is there
    import sys
    import lockserial
    unit = boot(hw, kv_root)
    links = [lockserial.SerialLink(lockserial.StdioStream(sys.stdin.buffer, sys.stdout.buffer), unit.session,
                                   provision=unit.provision_request)]
    links.extend(extra_links)
    if ble:
        try:
            import aioble
            import lockble
            links.append(lockble.BleLink(aioble, unit.session, unit.advert))
        except ImportError:
            pass  # no BLE stack installed: serial maintenance only
    try:
        serve(unit, links, hw.reset)
    finally:
        unit.storage.close()
