# Runs first at every boot. A provisioned unit (it holds a key slot in the
# key-value store on its flash data partition, docs/storage.md) is in
# production mode: Ctrl-C is disabled, so bytes on the serial port cannot stop
# the firmware and reach the REPL. A factory unit keeps the REPL for flashing
# and provisioning (flash.py, mpremote).
import micropython

_BOARD_DIR = "/"

try:
    import esp32
    import lockhal
    import lockstore
    _st = lockhal.load_board("board", _BOARD_DIR)["storage"]
    _part = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=_st["partition"])
    if _part and lockstore.provisioned(_part[0]):
        micropython.kbd_intr(-1)
    del _st, _part
except (ImportError, OSError, ValueError, KeyError):
    pass  # no board file or partition yet: a factory unit
