# Runs under MicroPython with a small heap: boot a whole simulated door unit,
# provision it, and complete one AUTH+UNLOCK with the motor run to the end.
import struct
import lockhal
import lockhal_sim
import lockapp
import lockcrypto
import lockwire
from lockkeys import RamKV
from lockjournal import RamRecords

NOW = 1767225600
LOCK_ID = b"LK\x00\x00\x00\x00\x00\x01"
MASTER = bytes(range(32))
NONCE_P = b"\x5a" * 16

board = lockhal.load_board("sim", BOARDS)  # noqa: F821 (set by the caller)
world = lockhal_sim.SimWorld(board)
unit = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world)), RamKV(), RamRecords(64))
unit.provision(LOCK_ID, 1, MASTER, NOW)
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
print("UNLOCKED")
