# Runs under MicroPython: one lock's journal on the flash twin, persisted the way
# the unit does it (records in the ring, the journal state in the littlefs
# key-value store after every change), for the hypothesis state machine in
# tests/test_journal_stateful.py. One journal per interpreter at a time.
import lockflash_sim as F
import lockstore
import lockjournal
import lockcrypto
from lockrecord import export_chunk

_LOCK = b"LK\x00\x00\x00\x00\x00\x33"
_KEY = b"journal"


class _J:
    def __init__(self, blocks):
        self.chip = F.SimFlash(blocks)
        self.keys = lockcrypto.LockKeys(bytes(range(64, 96)), _LOCK, 1)
        self.st = None
        self.t = 1000
        self.boot()

    def boot(self):
        if self.st is not None:
            self.st.close()
            self.chip.power_on()
        self.st = lockstore.Storage(F.Port(self.chip), "/jsm")
        self.j = lockjournal.Journal(self.st.records, _LOCK, self.keys.jm, self.st.kv.load(_KEY))
        self._save()

    def _save(self):
        if self.j.dirty:
            self.st.kv.save(_KEY, self.j.state_blob())


_cur = [None]


def new(blocks):
    if _cur[0] is not None:
        _cur[0].st.close()
    _cur[0] = _J(blocks)
    return status()


def status():
    j = _cur[0].j
    return [j.head, j.acked, j.first_seq(), j.store.count(), j.lost]


def append(n, event, user_id):
    # n journal appends -> every record they made (OVERFLOW records included)
    s = _cur[0]
    j = s.j
    h = j.head
    for _ in range(n):
        s.t += 1
        j.append(s.keys.jm, s.t, event, 0, 0, user_id, 0, s.t)
        s._save()
    first = j.first_seq()
    out = []
    for seq in range(max(h + 1, first), j.head + 1):
        out.append(j.store.get(seq - first))
    return [h, out]


def ack(seq, chain):
    s = _cur[0]
    st, acked = s.j.ack(seq, chain)
    s._save()
    return [st, acked]


def export(from_seq, max_count):
    s = _cur[0]
    return export_chunk(s.keys, *s.j.read(from_seq, max_count))


def torn_append(tear):
    # power dies while the next append's record is programmed, `tear` bytes of it
    # landed (1..35: a torn slot); then the unit boots again
    s = _cur[0]
    rec = s.j.store
    need = rec._hb < 0 or rec._hn >= rec.per_block or rec._closed
    s.chip.cut(after=2 if need else 0, tear=tear)
    s.t += 1
    try:
        s.j.append(s.keys.jm, s.t, 3, 0, 0, 0, 0, 0)
        return "no cut"
    except F.PowerCut:
        pass
    s.boot()
    return status()


def reboot():
    _cur[0].boot()
    return status()


def wear():
    c = _cur[0].chip
    return [c.erases, c.programs, max(c.wear)]
