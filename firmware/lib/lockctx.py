# The lock context: what the protocol session (locksession/lockops) asks of the
# door unit, built from injected parts. No I/O of its own beyond those parts:
#   keystore (lockkeys.KeyStore), clock (lockclock.Clock), guard
#   (lockguard.Guard), deny (lockdeny.DenyList), mech (lockmech.Mechanism),
#   journal (lockjournal.Journal), kv (persistence, load/save), ticks (ms clock),
#   random (bytes source), battery (lockbattery.Monitor or None: pct, mv,
#   flags, unlock_ok, journal_ok; docs/power.md "Low-voltage behaviour").
import struct
from lockcodes import (
    E_OK, E_NOT_FOUND, E_STORAGE, E_MALFORMED, OP_UNLOCK,
    EV_DENIED, EV_LOCKOUT, EV_UNLOCK, EV_LOCK, EV_TIME_SET, EV_DENY_UPDATED, EV_REKEYED, EV_CONFIG,
    E_NOT_YET_VALID, E_REVOKED, E_BATTERY_CRITICAL, B_UNLOCKED, EV_JOURNAL_PAUSED,
    F_TIME_UNCERTAIN, F_JOURNAL_BACKLOG, F_FACTORY, F_DOOR_OPEN, F_LOCKED_OUT, F_DENY_STALE,
    CFG_RELOCK_DELAY, CFG_DOOR_ALARM, CFG_LOCKOUT_THRESHOLD, CFG_LOCKOUT_SECONDS, CFG_POWER_PROFILE,
    FW_VERSION, E_BACKLOG, E_INTERNAL,
)
from lockwire import encode_state

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_RF_UNCERTAIN = const(1)
_DENY_STALE_S = const(86400)
_CONFIG_KEY = b"config"
_DENY_KEY = b"deny"
_GUARD_KEY = b"guard"
_JOURNAL_KEY = b"journal"
_DEFAULTS = ((CFG_RELOCK_DELAY, 5), (CFG_DOOR_ALARM, 120), (CFG_LOCKOUT_THRESHOLD, 5),
             (CFG_LOCKOUT_SECONDS, 60), (CFG_POWER_PROFILE, 0))
_LIMITS = {CFG_RELOCK_DELAY: (1, 600), CFG_DOOR_ALARM: (10, 3600), CFG_LOCKOUT_THRESHOLD: (1, 50),
           CFG_LOCKOUT_SECONDS: (10, 3600), CFG_POWER_PROFILE: (0, 1)}


class LockContext:
    def __init__(self, lock_id, keystore, clock, guard, deny, mech, journal, kv, ticks, random,
                 battery=None, door_open=None):
        self.lock_id = lock_id
        self.fw = FW_VERSION
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
                self.log(EV_JOURNAL_PAUSED, arg=n)
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
        self.log(EV_TIME_SET, arg=prev)
        return E_OK

    # ---- deny list ----

    def is_denied(self, ticket_id, user_id):
        return self.deny.is_denied(ticket_id, user_id, self.clock.now(), not self.clock.time_uncertain())

    def deny_version(self):
        return self.deny.version

    def set_deny(self, version, entries):
        status = self.deny.replace(version, entries, self.clock.now(), not self.clock.time_uncertain())
        if status != E_OK:
            return status
        try:
            self.kv.save(_DENY_KEY, self.deny.encode())
        except OSError:
            return E_STORAGE
        self.log(EV_DENY_UPDATED, arg=version)
        return E_OK

    # ---- state ----

    def flags(self):
        f = 0
        now = self.clock.now()
        if self.clock.time_uncertain():
            f |= F_TIME_UNCERTAIN
        if self.keystore.keys is None:
            f |= F_FACTORY
        if self.door_open is not None and self.door_open():
            f |= F_DOOR_OPEN
        if self.guard.remaining(now):
            f |= F_LOCKED_OUT
        if self.journal.backlog() * 4 > self.journal.store.capacity * 3:
            f |= F_JOURNAL_BACKLOG
        if self.deny.age_s(now) > _DENY_STALE_S:
            f |= F_DENY_STALE
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
        verified = 1 if E_NOT_YET_VALID <= code <= E_REVOKED else 0
        uid = ticket.user_id if ticket is not None else 0
        tid = ticket.ticket_id if ticket is not None else 0
        self.log(EV_DENIED, arg16=code, user_id=uid, ticket_id=tid, arg=verified)
        seconds = self.guard.failed(self.clock.now())
        self._save_guard()
        if seconds:
            self.log(EV_LOCKOUT, arg=seconds)

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
        if op == OP_UNLOCK and b is not None and not b.unlock_ok() and self.mech.state != B_UNLOCKED:
            # a critical battery keeps its last motor runs for locking: refused, journaled
            b.refused += 1
            self.log(EV_DENIED, arg16=E_BATTERY_CRITICAL, user_id=ticket.user_id,
                     ticket_id=ticket.ticket_id, arg=1)
            return E_BATTERY_CRITICAL, self.mech.state
        status = self.mech.command(op, self.ticks())
        if status == E_OK:
            self.log(EV_UNLOCK if op == OP_UNLOCK else EV_LOCK, user_id=ticket.user_id,
                     ticket_id=ticket.ticket_id)
        return status, self.mech.state

    def _apply_config(self):
        c = self.config_values
        self.mech.set_config(relock_delay_s=c[CFG_RELOCK_DELAY], door_alarm_s=c[CFG_DOOR_ALARM])
        self.guard.threshold = c[CFG_LOCKOUT_THRESHOLD]
        self.guard.first_s = c[CFG_LOCKOUT_SECONDS]

    def config(self, key, value, ticket):
        if key not in self.config_values:
            return E_NOT_FOUND, 0
        if value is not None:
            lo, hi = _LIMITS[key]
            if not lo <= value <= hi:
                return E_MALFORMED, 0
            self.config_values[key] = value
            blob = b"".join(struct.pack(">BI", k, v) for k, v in self.config_values.items())
            try:
                self.kv.save(_CONFIG_KEY, blob)
            except OSError:
                return E_STORAGE, 0
            self._apply_config()
            self.log(EV_CONFIG, arg16=key, user_id=ticket.user_id, arg=value)
        return E_OK, self.config_values[key]

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
            return E_BACKLOG
        if self.wipe is None:
            return E_INTERNAL
        return self.wipe()

    def rekey(self, new_epoch, new_master):
        status = self.keystore.install(new_epoch, new_master)
        if status == E_OK:
            self.log(EV_REKEYED, arg=new_epoch)  # the first record under the new key
        return status
