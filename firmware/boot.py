# Runs first at every boot. A provisioned unit (it holds a key slot) is in
# production mode: Ctrl-C is disabled, so bytes on the serial port cannot stop
# the firmware and reach the REPL. A factory unit keeps the REPL for flashing
# and provisioning (flash.py, mpremote).
import micropython
import os

try:
    os.stat("/lock/keyA")
    micropython.kbd_intr(-1)
except OSError:
    pass
