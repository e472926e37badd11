# Runs under MicroPython: boot time of a provisioned simulated unit on the sim
# board's own storage (the flash twin in the world, littlefs and the journal
# ring on it: lockapp.boot, as lockunit_sim boots it), from mounting the
# storage and building the door unit (state loaded, journal BOOT record) to its
# first advertisement payload, against one bare HMAC in the same run.
# usage: micropython fw_boot.py BOARDS_DIR N [heap]
#   prints "N hmac_us_total boot_us_total"; with "heap", also the live heap
#   (bytes, after a collection) once the unit advertises and the bytes one
#   AUTH+UNLOCK allocates (collector off): the unlock's peak is at most their sum
import gc
import struct
import sys
import time
import lockhal
import lockhal_sim
import lockapp
import lockadv
import lockcrypto
import lockwire

gc.collect()  # as lockapp.main() does once every module is loaded
boards, n = sys.argv[1], int(sys.argv[2])
board = lockhal.load_board("sim", boards)
world = lockhal_sim.SimWorld(board)
NOW = 1767225600
LOCK_ID = b"LK\x00\x00\x00\x00\x00\x01"
first = lockapp.boot(lockhal.wire(board, lockhal_sim.SimHal(world)), "/lock")
first.provision(LOCK_ID, 1, bytes(32), NOW)
first.storage.close()
first = None
t_boot = 0
for _ in range(n):
    world.hard_reset()
    t0 = time.ticks_us()
    unit = lockapp.boot(lockhal.wire(board, lockhal_sim.SimHal(world)), "/lock")
    lock_id, pct, flags = unit.advert()
    lockadv.advertisement(lock_id, pct, flags)
    t_boot += time.ticks_diff(time.ticks_us(), t0)
    unit.storage.close()
t0 = time.ticks_us()
for _ in range(n):
    lockcrypto.hmac_sha256(bytes(32), bytes(64))
t_hmac = time.ticks_diff(time.ticks_us(), t0)
out = "%d %d %d" % (n, t_hmac, t_boot)
if sys.argv[3:] == ["heap"]:
    unit = None
    gc.collect()
    world.hard_reset()
    unit = lockapp.boot(lockhal.wire(board, lockhal_sim.SimHal(world)), "/lock")
    lockadv.advertisement(*unit.advert())
    gc.collect()
    live = gc.mem_alloc()
    nonce_p = b"\x5a" * 16
    ticket = struct.pack(">B8sIIIIIIBHHBh", 1, LOCK_ID, 1, 7, 5, NOW - 60, NOW + 3600, NOW - 60, 1, 0, 0, 0, 0)
    tk = lockcrypto.ticket_key(unit.keystore.keys.tk, ticket)
    body = lockwire.encode_auth_body(1, ticket, nonce_p, 1)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    s = unit.session()
    hello = s.hello()
    ks = lockcrypto.session_key(tk, hello[15:31], nonce_p)  # the phone's part, counted too
    resp = s.handle(body + lockcrypto.fmac(ks, 0x50, 0, lockcrypto.sha256(hello) + body))
    alloc = gc.mem_alloc() - a0
    gc.enable()
    assert resp[6] == 0, resp
    out += " %d %d" % (live, alloc)
    unit.storage.close()
print(out)
