"""The flash twin (firmware/lib/lockflash_sim.py) under the real MicroPython: NOR
semantics, bounds, the esp32.Partition block-device protocol, persistence to a file,
power cuts with torn writes, and the real littlefs (vfs.VfsLfs2) mounted on it."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

import mpyhost

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
LIB = Path(__file__).resolve().parent.parent / "firmware" / "lib"


@pytest.fixture(scope="module")
def fw_flash():
    with mpyhost.Worker(["flashtest"], paths=[MPY], heapsize="2m") as w:
        yield w


def test_nor_semantics_and_bounds(fw_flash):
    r = fw_flash.call("flashtest.nor", 4)
    assert r["erased"] == b"\xff" * 8
    assert r["prog"] == "ok" and r["after_prog"] == b"\xf0\x0f\x55\xaa" + b"\xff" * 4
    # rewriting the same bits or clearing more is what NOR can do
    assert r["same_again"] == "ok" and r["clear_more"] == "ok"
    # a 1 over a 0 is refused (real NOR would silently keep the 0) and changes nothing
    assert r["one_over_zero"] == "FlashError"
    assert r["kept"] == b"\x00\x0f\x54\xaa" + b"\xff" * 4
    assert r["erase"] == 0 and r["after_erase"] == b"\xff" * 8
    # writeblocks(block, buf) erases first, as esp32.Partition does, and needs whole blocks
    assert r["whole_block"] == "ok" and r["whole_block_data"] == b"\x11" * 16
    assert r["part_block"] == "FlashError"
    for k in ("read_past_end", "read_block_past_end", "read_negative", "write_past_end", "erase_past_end"):
        assert r[k] == "FlashError", k
    assert r["read_across_blocks"] == "ok"  # esp_partition_read is contiguous
    assert r["ioctl"] == [0, 0, 0, 4, 4096, None]
    programs, erases, nbytes = r["counts"]
    assert erases == 2 and programs == 5 and nbytes == 4 + 4 + 4 + 16 + 4096


@pytest.mark.parametrize("tear", [None, 0, 3, 8])
def test_power_cut_stops_at_the_nth_operation_and_tears_it(fw_flash, tear):
    r = fw_flash.call("flashtest.cuts", tear)
    # two operations complete; the third is where power dies; what follows is undone at power_on
    assert r["results"] == ["ok", "ok", "PowerCut", "ok", "ok"]
    assert r["dead"] is True and r["dead_read"] == b"\x00" * 8
    k = 0 if tear is None else tear
    # the erase of block 0 after the cut never happened: the data is still there
    assert r["data"] == b"\x00" * 8 + b"\x01" * 8 + b"\x02" * k + b"\xff" * (8 - k)
    assert r["ops"] == 3  # 1 before arming + 2 completed


@pytest.mark.parametrize("tear", [None, 20, 5000])
def test_torn_erase_leaves_the_rest_of_the_block(fw_flash, tear):
    res, data = fw_flash.call("flashtest.torn_erase", tear)
    assert res == "PowerCut"
    k = 0 if tear is None else min(tear, 64)
    assert data == b"\xff" * k + b"\x00" * (64 - k)


def test_contents_persist_in_a_file_across_processes(tmp_path):
    path = str(tmp_path / "flash.bin")
    with mpyhost.Worker(["flashtest"], paths=[MPY]) as w:
        assert w.call("flashtest.persist", path, 0) is None
    assert (tmp_path / "flash.bin").stat().st_size == 4 * 4096
    with mpyhost.Worker(["flashtest"], paths=[MPY]) as w:
        assert w.call("flashtest.persist", path, 1) == [b"\x12\x34", b"\xab"]


@pytest.mark.parametrize("region", [False, True])
def test_real_littlefs_mounts_and_survives_a_remount(fw_flash, region):
    r = fw_flash.call("flashtest.littlefs", 16, 60, region)
    assert r["names"] == ["g0", "g1", "g2", "g3", "g4"]
    assert r["sizes"] == [50 + i * 7 % 300 for i in (55, 56, 57, 58, 59)]
    assert r["first"] == bytes([55])
    programs, erases = r["ops"]
    assert programs > 60 and erases > 0  # it really wrote through the twin, strictly (no 1 over 0)
    if region:
        assert r["outside_erased"] == 3 * 4096  # a Region never writes outside itself


def test_block_device_surface_is_esp32_partition_s():
    """esp32.Partition: readblocks(block, buf[, offset]), writeblocks(block, buf[, offset]),
    ioctl(op, arg) (ports/esp32/esp32_partition.c); the twin and lockstore.Region match it."""
    sys.path.insert(0, str(LIB))
    try:
        import lockflash_sim
        import lockstore
    finally:
        sys.path.remove(str(LIB))
    for cls in (lockflash_sim.SimFlash, lockflash_sim.Port, lockstore.Region):
        assert list(inspect.signature(cls.readblocks).parameters) == ["self", "block", "buf", "offset"]
        assert inspect.signature(cls.readblocks).parameters["offset"].default == 0
        assert list(inspect.signature(cls.writeblocks).parameters) == ["self", "block", "buf", "offset"]
        assert inspect.signature(cls.writeblocks).parameters["offset"].default is None
        assert list(inspect.signature(cls.ioctl).parameters) == ["self", "op", "arg"]


def test_a_boot_s_port_dies_when_the_next_boot_powers_on(fw_flash):
    dead_read, live, count, size = fw_flash.call("flashtest.port_after_power_on")
    assert dead_read == b"\xff" * 8  # the old boot reads nothing real
    assert live == b"\x01" + b"\xff" * 7  # and its late writes and erase never happened
    assert (count, size) == (2, 4096)


FAKE_ESP32 = """
import lockflash_sim


class Partition:
    TYPE_DATA = 1
    found = []

    @staticmethod
    def find(type=0, subtype=255, label=None):
        Partition.found.append((type, label))
        return [lockflash_sim.SimFlash(BLOCKS)] if label == "lockdata" else []
"""

PROBE = """
import esp32
import lockhal_esp32
import lockstore
p = lockhal_esp32.partition("lockdata", 128)
print(esp32.Partition.found, p.ioctl(4, 0))
st = lockstore.Storage(p, "/dev_path")
print(st.records.capacity)
st.close()
for label, blocks in (("nolabel", 128), ("lockdata", 256)):
    try:
        lockhal_esp32.partition(label, blocks)
    except OSError as e:
        print(e.errno)
"""


def test_device_hal_finds_the_board_partition_and_storage_runs_on_it(tmp_path):
    """lockhal_esp32.partition: esp32.Partition.find(TYPE_DATA, label=...), checked for size;
    lockstore runs on whatever it returns (here a twin behind a stand-in esp32 module)."""
    (tmp_path / "esp32.py").write_text(FAKE_ESP32.replace("BLOCKS", "128"))
    res = mpyhost.run(code=PROBE, paths=[tmp_path], heapsize="2m")
    assert res.ok, res.stderr
    lines = res.stdout.split("\n")
    assert lines[0] == "[(1, 'lockdata')] 128"
    assert lines[1] == str((128 - 16 - 1) * 112)
    assert lines[2:4] == ["19", "28"]  # ENODEV: no such partition; ENOSPC: smaller than the board says


def test_a_bitwise_tear_leaves_bytes_half_programmed_or_half_erased(fw_flash):
    prog, erase = fw_flash.call("flashtest.bitwise_tears")
    # program 0x00 x 8 torn at -3: three bytes whole, the rest only the low nibble cleared
    assert prog == b"\x00" * 3 + b"\xf0" * 5
    # erase of a block of 0x00 torn at -2: two bytes erased, the rest only the low nibble set
    assert erase == b"\xff" * 2 + b"\x0f" * 6
