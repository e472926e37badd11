# Test-only pure-Python AES (FIPS-197) for any key size. MicroPython's cryptolib
# has no AES-192, which RFC 3394 §4.2, §4.4 and §4.5 need; the tests feed this
# block cipher to lockcrypto's key-wrap core to run those vectors under
# MicroPython. Slow and not constant time: never for the device.


def _xt(a):
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = _xt(a)
        b >>= 1
    return r


def _tables():
    # S-box from the multiplicative inverse in GF(2^8) and the affine map.
    inv = [0] * 256
    for a in range(1, 256):
        for b in range(1, 256):
            if _mul(a, b) == 1:
                inv[a] = b
                break
    sbox = [0] * 256
    for a in range(256):
        x = inv[a]
        s = x
        for i in range(1, 5):
            s ^= ((x << i) | (x >> (8 - i))) & 0xFF
        sbox[a] = s ^ 0x63
    isbox = [0] * 256
    for a in range(256):
        isbox[sbox[a]] = a
    return sbox, isbox


class AES:
    def __init__(self, key):
        self.sbox, self.isbox = _tables()
        nk = len(key) // 4
        if len(key) not in (16, 24, 32):
            raise ValueError("key")
        self.nr = nk + 6
        w = [list(key[4 * i:4 * i + 4]) for i in range(nk)]
        rcon = 1
        for i in range(nk, 4 * (self.nr + 1)):
            t = list(w[i - 1])
            if i % nk == 0:
                t = t[1:] + t[:1]
                t = [self.sbox[b] for b in t]
                t[0] ^= rcon
                rcon = _xt(rcon)
            elif nk > 6 and i % nk == 4:
                t = [self.sbox[b] for b in t]
            w.append([w[i - nk][j] ^ t[j] for j in range(4)])
        self.rk = [sum(w[4 * r:4 * r + 4], []) for r in range(self.nr + 1)]

    def _add(self, s, r):
        return [s[i] ^ self.rk[r][i] for i in range(16)]

    def _mix(self, s, m):
        out = [0] * 16
        for c in range(4):
            col = s[4 * c:4 * c + 4]
            for r in range(4):
                v = 0
                for k in range(4):
                    v ^= _mul(col[k], m[(k - r) % 4])
                out[4 * c + r] = v
        return out

    def encrypt_block(self, block):
        s = self._add(list(block), 0)
        for r in range(1, self.nr + 1):
            s = [self.sbox[b] for b in s]
            s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]  # ShiftRows
            if r != self.nr:
                s = self._mix(s, (2, 3, 1, 1))
            s = self._add(s, r)
        return bytes(s)

    def decrypt_block(self, block):
        s = self._add(list(block), self.nr)
        for r in range(self.nr - 1, -1, -1):
            s = [s[(i - 4 * (i % 4)) % 16] for i in range(16)]  # InvShiftRows
            s = [self.isbox[b] for b in s]
            s = self._add(s, r)
            if r != 0:
                s = self._mix(s, (14, 11, 13, 9))
        return bytes(s)
