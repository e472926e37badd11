# Runs under MicroPython with a small heap: a whole simulated door unit booted
# as the sim board boots it (lockunit_sim, lockapp.run_unit: the flash twin in
# the world, littlefs and the journal ring on it through lockapp.boot), then
# provisioned, advertising, one AUTH+UNLOCK through the session a BLE link
# serves (unit.session, the BleLink's session factory), the motor run to the end.
# The caller sets BOARDS (boards/) and may set FLASH (the flash file, as the sim
# board's lockdata.bin; unset: the twin in RAM only) and FREE: then every module
# the run loads is loaded first and the heap is filled until FREE bytes are left,
# so the unit's own data (not its code, which a device keeps frozen in flash)
# must fit in FREE, in whatever holes the loaded code left.
import gc
import struct
import lockhal
import lockhal_sim
import lockapp
import lockcrypto
import lockwire
import lockadv

gc.collect()  # as lockapp.main() does once every module is loaded

try:
    FREE  # noqa: B018
except NameError:
    FREE = None
if FREE is not None:
    import lockflash_sim, lockkv, lockring, lockstore  # noqa: E401,F401 (loaded later by the run)
    gc.collect()
    ballast = []
    chunk = gc.mem_free()
    while gc.mem_free() - FREE > 256 and chunk >= 256:
        try:
            ballast.append(bytearray(min(chunk, gc.mem_free() - FREE - 128)))
        except MemoryError:
            chunk //= 2
    gc.collect()
    print("free", gc.mem_free())

NOW = 1767225600
LOCK_ID = b"LK\x00\x00\x00\x00\x00\x01"
NONCE_P = b"\x5a" * 16

try:
    FLASH  # noqa: B018
except NameError:
    FLASH = None
board = lockhal.load_board("sim", BOARDS)  # noqa: F821 (set by the caller)
world = lockhal_sim.SimWorld(board)
world.flash_path = FLASH
unit = lockapp.boot(lockhal.wire(board, lockhal_sim.SimHal(world)), "/lock")
assert not unit.provisioned
unit.provision(LOCK_ID, 1, bytes(range(32)), NOW)
adv = lockadv.advertisement(*unit.advert())
assert LOCK_ID in bytes(adv), adv
s = unit.session()
hello = s.hello()
ticket = struct.pack(">B8sIIIIIIBHHBh", 1, LOCK_ID, 1, 7, 5, NOW - 60, NOW + 3600, NOW - 60, 1, 0, 0, 0, 0)
ks = lockcrypto.session_key(lockcrypto.ticket_key(unit.keystore.keys.tk, ticket), hello[15:31], NONCE_P)
body = lockwire.encode_auth_body(1, ticket, NONCE_P, 1)
resp = s.handle(body + lockcrypto.fmac(ks, 0x50, 0, lockcrypto.sha256(hello) + body))
assert resp[6] == 0, resp
for _ in range(100):
    world.advance(20)
    unit.poll()
assert unit.mech.state == 3 and world.bolt == 100, (unit.mech.state, world.bolt)
s.close()
# the journal on the ring: PROVISIONED, UNLOCK and the first battery record
assert unit.journal.head == 3, unit.journal.head
unit.storage.close()
print("UNLOCKED")
