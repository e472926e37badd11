# The lock context: what the protocol session (locksession/lockops) asks of the
# door unit, built from injected parts. No I/O of its own beyond those parts:
#   keystore (lockkeys.KeyStore), clock (lockclock.Clock), guard
#   (lockguard.Guard), deny (lockdeny.DenyList), mech (lockmech.Mechanism),
#   journal (lockjournal.Journal), kv (persistence, load/save), ticks (ms clock),
#   random (bytes source), battery (lockbattery.Monitor or None: pct, mv,
#   flags, unlock_ok, journal_ok; docs/power.md "Low-voltage behaviour").
import struct
from lockwire import encode_state

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_OK = const(0)
_E_NOT_FOUND = const(22)
_E_STORAGE = const(25)
_E_MALFORMED = const(1)
_OP_UNLOCK = const(1)
_EV_DENIED = const(0x04)
_EV_LOCKOUT = const(0x0A)
_EV_UNLOCK = const(0x02)
_EV_LOCK = const(0x03)
_EV_TIME_SET = const(0x0C)
_EV_DENY_UPDATED = const(0x0E)
_EV_REKEYED = const(0x0F)
_EV_CONFIG = const(0x11)
_E_NOT_YET_VALID = const(10)
_E_REVOKED = const(13)
_E_BATTERY_CRITICAL = const(24)
_B_UNLOCKED = const(3)
_EV_JOURNAL_PAUSED = const(0x14)
_F_TIME_UNCERTAIN = const(1)
_F_JOURNAL_BACKLOG = const(8)
_F_FACTORY = const(16)
_F_DOOR_OPEN = const(32)
_F_LOCKED_OUT = const(64)
_F_DENY_STALE = const(128)
_CFG_RELOCK_DELAY = const(1)
_CFG_DOOR_ALARM = const(2)
_CFG_LOCKOUT_THRESHOLD = const(3)
_CFG_LOCKOUT_SECONDS = const(4)
_CFG_POWER_PROFILE = const(5)
_E_BACKLOG = const(31)
_E_INTERNAL = const(29)
_FW_VERSION = (0, 1, 0)  # lockcodes.FW_VERSION

_RF_UNCERTAIN = const(1)
_DENY_STALE_S = const(86400)
_CONFIG_KEY = b"config"
_DENY_KEY = b"deny"
_GUARD_KEY = b"guard"
_JOURNAL_KEY = b"journal"
_DEFAULTS = ((_CFG_RELOCK_DELAY, 5), (_CFG_DOOR_ALARM, 120), (_CFG_LOCKOUT_THRESHOLD, 5),
             (_CFG_LOCKOUT_SECONDS, 60), (_CFG_POWER_PROFILE, 0))
_LIMITS = {_CFG_RELOCK_DELAY: (1, 600), _CFG_DOOR_ALARM: (10, 3600), _CFG_LOCKOUT_THRESHOLD: (1, 50),
           _CFG_LOCKOUT_SECONDS: (10, 3600), _CFG_POWER_PROFILE: (0, 1)}


class LockContext:
    def __init__(self, lock_id, keystore, clock, guard, deny, mech, journal, kv, ticks, random,
                 battery=None, door_open=None):
        self.lock_id = lock_id
        self.fw = _FW_VERSION
        self.keystore = keystore
        self.clock = clock
        self.guard = guard
        self.deny = deny
        self.mech = mech
        self.journal = journal
        self.kv = kv
        self.ticks = ticks
        self._random = random
        self.battery = battery
        self.door_open = door_open  # callable -> bool, or None
        self.wipe = None            # callable -> status: the unit's factory reset (§3.4)
        self.config_values = dict(_DEFAULTS)
        blob = kv.load(_CONFIG_KEY)
        if blob:
            for i in range(0, len(blob) - 4, 5):
                k, v = struct.unpack(">BI", blob[i:i + 5])
                if k in self.config_values:
                    self.config_values[k] = v
        self._apply_config()

    # ---- identity, keys, randomness ----

    @property
    def keys(self):
        return self.keystore.keys

    def random(self, n):
        return self._random(n)

    # ---- journal helper ----

    def log(self, event, arg16=0, user_id=0, ticket_id=0, arg=0, final=False):
        keys = self.keystore.keys
        if keys is None:
            return None
        b = self.battery
        if b is not None:
            # below the battery floor no flash write but the final record
            if not b.journal_ok() and not final:
                b.dropped += 1
                return None
            if b.dropped and b.journal_ok():
                n = b.dropped
                b.dropped = 0
                self.log(_EV_JOURNAL_PAUSED, arg=n)
        flags = _RF_UNCERTAIN if self.clock.time_uncertain() else 0
        rec = self.journal.append(keys.jm, self.clock.now(), event, flags, arg16, user_id, ticket_id, arg)
        self.save_journal_state()
        return rec

    def save_journal_state(self):
        if self.journal.dirty:
            self.kv.save(_JOURNAL_KEY, self.journal.state_blob())

    # ---- clock ----

    def now(self):
        return self.clock.now()

    def time_uncertain(self):
        return self.clock.time_uncertain()

    def raise_clock(self, t):
        self.clock.raise_to(t)

    def set_time(self, t):
        prev = self.clock.set_time(t)
        self.log(_EV_TIME_SET, arg=prev)
        return _E_OK

    # ---- deny list ----

    def is_denied(self, ticket_id, user_id):
        return self.deny.is_denied(ticket_id, user_id, self.clock.now(), not self.clock.time_uncertain())

    def deny_version(self):
        return self.deny.version

    def set_deny(self, version, entries):
        status = self.deny.replace(version, entries, self.clock.now(), not self.clock.time_uncertain())
        if status != _E_OK:
            return status
        try:
            self.kv.save(_DENY_KEY, self.deny.encode())
        except OSError:
            return _E_STORAGE
        self.log(_EV_DENY_UPDATED, arg=version)
        return _E_OK

    # ---- state ----

    def flags(self):
        f = 0
        now = self.clock.now()
        if self.clock.time_uncertain():
            f |= _F_TIME_UNCERTAIN
        if self.keystore.keys is None:
            f |= _F_FACTORY
        if self.door_open is not None and self.door_open():
            f |= _F_DOOR_OPEN
        if self.guard.remaining(now):
            f |= _F_LOCKED_OUT
        if self.journal.backlog() * 4 > self.journal.store.capacity * 3:
            f |= _F_JOURNAL_BACKLOG
        if self.deny.age_s(now) > _DENY_STALE_S:
            f |= _F_DENY_STALE
        if self.battery is not None:
            f |= self.battery.flags()
        return f

    def state_block(self):
        b = self.battery
        return encode_state(self.clock.now(), self.flags(), self.mech.state,
                            b.pct() if b is not None else 255, b.mv() if b is not None else 0,
                            self.journal.head, self.journal.acked, self.deny.version)

    # ---- rate limiting ----

    def lockout_remaining(self):
        return self.guard.remaining(self.clock.now())

    def auth_failed(self, code, ticket):
        # tickets that failed before their MAC verified are claims, marked unverified
        verified = 1 if _E_NOT_YET_VALID <= code <= _E_REVOKED else 0
        uid = ticket.user_id if ticket is not None else 0
        tid = ticket.ticket_id if ticket is not None else 0
        self.log(_EV_DENIED, arg16=code, user_id=uid, ticket_id=tid, arg=verified)
        seconds = self.guard.failed(self.clock.now())
        self._save_guard()
        if seconds:
            self.log(_EV_LOCKOUT, arg=seconds)

    def auth_ok(self, ticket):
        before = self.guard.state()
        self.guard.succeeded()
        if self.guard.state() != before:
            self._save_guard()

    def _save_guard(self):
        # a reboot must neither end a lockout nor reset the doubling
        try:
            self.kv.save(_GUARD_KEY, struct.pack(">III", *self.guard.state()))
        except OSError:
            pass

    # ---- mechanism, config ----

    def actuate(self, op, ticket):
        b = self.battery
        if op == _OP_UNLOCK and b is not None and not b.unlock_ok() and self.mech.state != _B_UNLOCKED:
            # a critical battery keeps its last motor runs for locking: refused, journaled
            b.refused += 1
            self.log(_EV_DENIED, arg16=_E_BATTERY_CRITICAL, user_id=ticket.user_id,
                     ticket_id=ticket.ticket_id, arg=1)
            return _E_BATTERY_CRITICAL, self.mech.state
        status = self.mech.command(op, self.ticks())
        if status == _E_OK:
            self.log(_EV_UNLOCK if op == _OP_UNLOCK else _EV_LOCK, user_id=ticket.user_id,
                     ticket_id=ticket.ticket_id)
        return status, self.mech.state

    def _apply_config(self):
        c = self.config_values
        self.mech.set_config(relock_delay_s=c[_CFG_RELOCK_DELAY], door_alarm_s=c[_CFG_DOOR_ALARM])
        self.guard.threshold = c[_CFG_LOCKOUT_THRESHOLD]
        self.guard.first_s = c[_CFG_LOCKOUT_SECONDS]

    def config(self, key, value, ticket):
        if key not in self.config_values:
            return _E_NOT_FOUND, 0
        if value is not None:
            lo, hi = _LIMITS[key]
            if not lo <= value <= hi:
                return _E_MALFORMED, 0
            self.config_values[key] = value
            blob = b"".join(struct.pack(">BI", k, v) for k, v in self.config_values.items())
            try:
                self.kv.save(_CONFIG_KEY, blob)
            except OSError:
                return _E_STORAGE, 0
            self._apply_config()
            self.log(_EV_CONFIG, arg16=key, user_id=ticket.user_id, arg=value)
        return _E_OK, self.config_values[key]

    # ---- journal ----

    def journal_read(self, from_seq, max_count):
        return self.journal.read(from_seq, max_count)

    def journal_ack(self, seq, chain):
        status, acked = self.journal.ack(seq, chain)
        self.save_journal_state()
        return status, acked

    # ---- keys ----

    def factory_reset(self):
        # §3.4: only with the whole journal acknowledged, so nothing is lost
        if self.journal.backlog() > 0:
            return _E_BACKLOG
        if self.wipe is None:
            return _E_INTERNAL
        return self.wipe()

    def rekey(self, new_epoch, new_master):
        status = self.keystore.install(new_epoch, new_master)
        if status == _E_OK:
            self.log(_EV_REKEYED, arg=new_epoch)  # the first record under the new key
        return status
