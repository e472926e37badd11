# A fake of micropython-lib's aioble (peripheral + GATT server roles) for the
# simulator and tests, on MicroPython's unix port. Put simulator/sim_aioble on
# the path and `import aioble` finds this package (and `import bluetooth` the
# stand-in next to it).
#
# No module-level stack: there is no `aioble.advertise` here. Each simulated
# lock gets its own stack bound to a shared radio hub:
#
#     radio = aioble.Radio(latency_ms=0)
#     ble = aioble.bind(radio)            # module-like: ble.Service, ble.advertise, ...
#     link = lockble.BleLink(ble, ...)    # the firmware adapter takes it as `aioble`
#     phone = aioble.SimPhone(radio, mtu=185)
#
# API taken from aioble's documentation and source (Service, Characteristic,
# BufferedCharacteristic, register_services, advertise, config, connection.mtu,
# exchange_mtu, timeout, disconnect, disconnected, written, notify) and
# deliberately stricter where cheap: see stack.py.
from .core import GattError, DeviceDisconnectedError, Device, ADDR_PUBLIC, ADDR_RANDOM
from .stack import Service, Characteristic, BufferedCharacteristic, Stack
from .radio import Radio, SimPhone, Advert


def bind(radio, addr=None):
    # a fresh stack (one lock's controller) on `radio`; addr: 6 bytes or None (assigned)
    return Stack(radio, addr)
