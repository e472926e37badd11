# Runs under MicroPython: an in-memory lock context for LockSession (the ctx of
# firmware/lib/locksession.py). Records everything the session asks for, so a
# test can prove that no failing path moved the bolt.
import os
import struct
import lockcodes as C
from lockcrypto import LockKeys, compare_digest
from lockrecord import pack_body, seal, chain_genesis
from lockwire import encode_state


class FakeLock:
    def __init__(self, master, lock_id, epoch=1, now=1700000000, uncertain=False, nonces=None,
                 deny_version=0, deny=None, lockout=0):
        self.lock_id = bytes(lock_id)
        self.keys = LockKeys(master, self.lock_id, epoch)
        self.fw = C.FW_VERSION
        self.clock = now
        self.uncertain = uncertain
        self.nonces = list(nonces or [])
        self.dversion = deny_version
        self.deny = [tuple(e) for e in (deny or [])]
        # rate limiting (§7)
        self.fail_count = 0
        self.lockout_threshold = 5
        self.lockout_seconds = 60
        self.locked_until = now + lockout if lockout else 0
        # mechanism
        self.bolt = C.B_LOCKED
        self.jam = False
        self.actuations = []   # (op, ticket_id)
        # observations
        self.failures = []     # (code, ticket_id or 0)
        self.oks = []          # ticket_id
        self.raised = []       # raise_clock arguments
        self.time_sets = []    # set_time arguments
        self.rekeys = []       # new epochs
        self.boom = []         # names of methods that raise (fault injection)
        self.config_values = {C.CFG_RELOCK_DELAY: 5, C.CFG_DOOR_ALARM: 120,
                               C.CFG_LOCKOUT_THRESHOLD: 5, C.CFG_LOCKOUT_SECONDS: 60,
                               C.CFG_POWER_PROFILE: 0}
        # journal: sealed records base_seq+1 .. head, base_chain = chain before them
        self.journal = []
        self.head = 0
        self.acked = 0
        self.base_chain = chain_genesis(self.keys.jm, self.lock_id)
        self.chain = self.base_chain
        self.append(C.EV_PROVISIONED)

    def _boom(self, name):
        if name in self.boom:
            raise RuntimeError("injected fault in " + name)

    # ---- identity, randomness, clock ----

    def random(self, n):
        if n == 16 and self.nonces:
            return self.nonces.pop(0)
        return os.urandom(n)

    def now(self):
        self._boom("now")
        return self.clock

    def advance(self, seconds):
        self.clock += seconds

    def time_uncertain(self):
        return self.uncertain

    def raise_clock(self, t):
        self.raised.append(t)
        if t > self.clock:
            self.clock = t

    def set_time(self, t):
        prev = self.clock
        self.time_sets.append(t)
        self.clock = max(self.clock, t)
        self.uncertain = False
        self.append(C.EV_TIME_SET, arg=prev)
        return C.E_OK

    # ---- deny list ----

    def is_denied(self, ticket_id, user_id):
        self._boom("is_denied")
        for kind, ident, expires in self.deny:
            if not self.uncertain and expires <= self.clock:
                continue
            if (kind == C.DK_TICKET and ident == ticket_id) or (kind == C.DK_USER and ident == user_id):
                return True
        return False

    def deny_version(self):
        return self.dversion

    def set_deny(self, version, entries):
        self._boom("set_deny")
        if len(entries) > C.DENY_CAPACITY:
            return C.E_CAPACITY
        self.dversion = version
        self.deny = [e for e in entries if self.uncertain or e[2] > self.clock]
        self.append(C.EV_DENY_UPDATED, arg=version)
        return C.E_OK

    # ---- state ----

    def flags(self):
        f = 0
        if self.uncertain:
            f |= C.F_TIME_UNCERTAIN
        if self.lockout_remaining():
            f |= C.F_LOCKED_OUT
        return f

    def state_block(self):
        self._boom("state_block")
        return encode_state(self.clock, self.flags(), self.bolt, 80, 3000, self.head, self.acked,
                            self.dversion)

    # ---- rate limiting (§7) ----

    def lockout_remaining(self):
        return max(0, self.locked_until - self.clock)

    def auth_failed(self, code, ticket):
        tid = ticket.ticket_id if ticket is not None else 0
        uid = ticket.user_id if ticket is not None else 0
        self.failures.append((code, tid))
        verified = 1 if C.E_NOT_YET_VALID <= code <= C.E_REVOKED else 0
        self.append(C.EV_DENIED, user_id=uid, ticket_id=tid, arg16=code, arg=verified)
        self.fail_count += 1
        if self.fail_count >= self.lockout_threshold:
            self.locked_until = self.clock + self.lockout_seconds
            self.append(C.EV_LOCKOUT, arg=self.lockout_seconds)
            self.lockout_seconds = min(self.lockout_seconds * 2, 3600)
            self.fail_count = 0

    def auth_ok(self, ticket):
        self.oks.append(ticket.ticket_id)
        self.fail_count = 0
        self.lockout_seconds = 60

    # ---- mechanism, config ----

    def actuate(self, op, ticket):
        self._boom("actuate")
        self.actuations.append((op, ticket.ticket_id))
        if self.jam:
            self.bolt = C.B_JAMMED
            self.append(C.EV_JAM, arg16=self.bolt)
            return C.E_MECHANISM, self.bolt
        if op == C.OP_UNLOCK:
            self.bolt = C.B_UNLOCKED
            self.append(C.EV_UNLOCK, user_id=ticket.user_id, ticket_id=ticket.ticket_id)
        else:
            self.bolt = C.B_LOCKED
            self.append(C.EV_LOCK, user_id=ticket.user_id, ticket_id=ticket.ticket_id)
        return C.E_OK, self.bolt

    def config(self, key, value, ticket):
        if key not in self.config_values:
            return C.E_NOT_FOUND, 0
        if value is not None:
            self.config_values[key] = value
            self.append(C.EV_CONFIG, user_id=ticket.user_id, arg16=key, arg=value)
        return C.E_OK, self.config_values[key]

    # ---- journal (§6) ----

    def append(self, event, user_id=0, ticket_id=0, arg16=0, arg=0):
        seq = self.head + 1
        flags = C.RF_TIME_UNCERTAIN if self.uncertain else 0
        body = pack_body(seq, self.clock, event, flags, arg16, user_id, ticket_id, arg)
        rec = seal(self.keys.jm, self.chain, body)
        self.journal.append(rec)
        self.chain = rec[24:]
        self.head = seq
        return rec

    def _seq(self, rec):
        return struct.unpack(">I", rec[:4])[0]

    def journal_read(self, from_seq, max_count):
        self._boom("journal_read")
        out = []
        first = None
        prev = self.base_chain
        for rec in self.journal:
            s = self._seq(rec)
            if s < from_seq:
                prev = rec[24:]
                continue
            if first is None:
                first = s
            if len(out) < max_count:
                out.append(rec)
        if first is None:
            return self.head + 1, [], self.head, self.chain
        return first, out, self.head, prev

    def journal_ack(self, seq, chain):
        if seq <= self.acked:
            return C.E_OK, self.acked
        for i in range(len(self.journal)):
            rec = self.journal[i]
            if self._seq(rec) == seq:
                if not compare_digest(rec[24:], chain):
                    return C.E_BAD_MAC, self.acked
                self.base_chain = rec[24:]
                self.journal = self.journal[i + 1:]
                self.acked = seq
                return C.E_OK, self.acked
        return C.E_NOT_FOUND, self.acked

    # ---- keys ----

    def rekey(self, new_epoch, new_master):
        self._boom("rekey")
        self.keys = LockKeys(new_master, self.lock_id, new_epoch)
        self.rekeys.append(new_epoch)
        self.append(C.EV_REKEYED, arg=new_epoch)
        return C.E_OK
