# Runs under MicroPython (bench/run.py): what battery telemetry costs a unit.
# - time: one idle battery sample (lockhal.Battery.read_mv + Monitor.sample)
#   over one bare read_mv (the ADC through the divider), and one whole idle
#   poll() of a provisioned unit with its sample due over one without;
# - allocation: bytes one monitor sample allocates with the collector off;
# - heap: bytes the monitor module and one Monitor take once loaded.
# Prints one JSON line.
import gc
import sys
import json
import time
import lockhal
import lockhal_sim
import lockapp
from lockkeys import RamKV
from lockjournal import RamRecords

BOARDS = sys.argv[1]
N = int(sys.argv[2])


def us(f, n):
    t = time.ticks_us()
    for _ in range(n):
        f()
    return time.ticks_diff(time.ticks_us(), t) / n


def _pair(f, g, rounds=7):
    # interleaved rounds, the fastest of each: load on the machine hits both alike
    a = b = None
    for _ in range(rounds):
        x = us(f, N)
        y = us(g, N)
        a = x if a is None or x < a else a
        b = y if b is None or y < b else b
    return a, b


def main():
    gc.collect()
    before = gc.mem_alloc()
    import lockbattery
    board = lockhal.load_board("sim", BOARDS)
    mon = lockbattery.Monitor(board["battery"])
    gc.collect()
    heap = gc.mem_alloc() - before
    world = lockhal_sim.SimWorld(board)
    hw = lockhal.wire(board, lockhal_sim.SimHal(world))
    read = hw.battery.read_mv
    mon.sample(read())

    def sample():
        mon.sample(read())

    bare, full = _pair(read, sample)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(100):
        mon.sample(6000)
    alloc = (gc.mem_alloc() - a) / 100
    gc.enable()
    # a whole provisioned unit, idle: poll() with the sample due vs not
    world2 = lockhal_sim.SimWorld(board)
    unit = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world2)), RamKV(), RamRecords(64))
    unit.provision(b"LK\x00\x00\x00\x00\x00\x02", 1, bytes(32), 1767225600)
    unit.poll()

    def poll_due():
        unit._batt_next = 0
        unit.poll()

    idle, due = _pair(unit.poll, poll_due)
    print(json.dumps({"read_us": bare, "sample_us": full, "alloc_per_sample": alloc, "heap_bytes": heap,
                      "poll_us": idle, "poll_sample_us": due}))


main()
