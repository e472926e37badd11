# Runs under MicroPython: the fleet host's radio hub. The fake aioble Radio
# (simulator/sim_aioble) with what a district's air adds: range (a phone hears
# and reaches only locks within range_m of where it stands), loss (a write or a
# notification vanishes), connection drops (a link goes down mid-exchange) and
# a latency per hop. Before a phone's connection reaches a lock the host
# catches that lock's world up to the host's clock (on_connect).
import random
import aioble


class HubRadio(aioble.Radio):
    def __init__(self, latency_ms=0, loss=0.0, drop=0.0, range_m=30.0, seed=None, on_connect=None):
        aioble.Radio.__init__(self, latency_ms=latency_ms, hook=self._air)
        self.loss = loss          # probability a write or notification is lost
        self.drop = drop          # probability a write or notification drops the link
        self.range_m = range_m
        self.where = {}           # stack address -> (x, y) of its lock, metres
        self._grid = {}           # (x // range_m, y // range_m) -> addresses: scans look nearby only
        self._cell = max(1.0, self.range_m)
        self.on_connect = on_connect
        self.lost = 0
        self.dropped_links = 0
        if seed is not None:
            random.seed(seed)

    def place(self, addr, x, y):
        addr = bytes(addr)
        old = self.where.get(addr)
        if old is not None:
            self._grid.get(self._key(old[0], old[1]), set()).discard(addr)
        self.where[addr] = (x, y)
        self._grid.setdefault(self._key(x, y), set()).add(addr)

    def _key(self, x, y):
        return (int(x // self._cell), int(y // self._cell))

    def _regrid(self):
        # range_m changed: rebuild the grid for the new cell size
        self._cell = max(1.0, self.range_m)
        pts = self.where
        self.where = {}
        self._grid = {}
        for a in pts:
            self.place(a, pts[a][0], pts[a][1])

    def near(self, phone, addr):
        p = self.where.get(bytes(addr))
        if p is None:
            return False
        dx = p[0] - getattr(phone, "x", 0.0)
        dy = p[1] - getattr(phone, "y", 0.0)
        return dx * dx + dy * dy <= self.range_m * self.range_m

    def distance(self, phone, addr):
        p = self.where.get(bytes(addr))
        dx = p[0] - getattr(phone, "x", 0.0)
        dy = p[1] - getattr(phone, "y", 0.0)
        return (dx * dx + dy * dy) ** 0.5

    def scan_for(self, phone):
        # what an active scan by this phone hears now (locks in the 3 x 3 grid cells
        # around it, then by distance)
        if self._cell != max(1.0, self.range_m):
            self._regrid()
        kx, ky = self._key(getattr(phone, "x", 0.0), getattr(phone, "y", 0.0))
        out = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for addr in self._grid.get((kx + dx, ky + dy), ()):
                    st = self._stacks.get(addr)
                    if st is None or st._adv is None or not self.near(phone, addr):
                        continue
                    a = st._adv
                    out.append(aioble.Advert(addr, a[0], a[1], a[2]))
        return out

    def _connect(self, phone, addr):
        if not self.near(phone, addr):
            return None
        st = self._stacks.get(bytes(addr))
        if st is None or st._adv is None:
            return None
        if self.on_connect is not None:
            self.on_connect(bytes(addr))
        return aioble.Radio._connect(self, phone, addr)

    def _air(self, kind, link, data):
        if self.drop and random.random() < self.drop:
            self.dropped_links += 1
            link.close()
            return "drop"
        if self.loss and random.random() < self.loss:
            self.lost += 1
            return "drop"
        return None
