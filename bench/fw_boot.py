# Runs under MicroPython: boot time of a provisioned simulated unit, from
# building the door unit (state loaded, journal BOOT record) to its first
# advertisement payload, against one bare HMAC in the same run.
# usage: micropython fw_boot.py BOARDS_DIR N
import sys
import time
import lockhal
import lockhal_sim
import lockapp
import lockadv
import lockcrypto
from lockkeys import RamKV
from lockjournal import RamRecords

boards, n = sys.argv[1], int(sys.argv[2])
board = lockhal.load_board("sim", boards)
kv, records = RamKV(), RamRecords(512)
world = lockhal_sim.SimWorld(board)
first = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world)), kv, records)
first.provision(b"LK\x00\x00\x00\x00\x00\x01", 1, bytes(32), 1767225600)
t_boot = 0
for _ in range(n):
    world.hard_reset()
    t0 = time.ticks_us()
    unit = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world)), kv, records)
    lock_id, pct, flags = unit.advert()
    lockadv.advertisement(lock_id, pct, flags)
    t_boot += time.ticks_diff(time.ticks_us(), t0)
    records._recs = records._recs[-16:]  # keep the RAM journal small between boots
t0 = time.ticks_us()
for _ in range(n):
    lockcrypto.hmac_sha256(bytes(32), bytes(64))
t_hmac = time.ticks_diff(time.ticks_us(), t0)
print("%d %d %d" % (n, t_hmac, t_boot))
