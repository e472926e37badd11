# CPython only: stand-ins for MicroPython modules the firmware uses, so the same
# files import on a desktop (tests, tools). Never imported on the device.


class aes:
    # cryptolib.aes(key, 1): AES-ECB; one object encrypts or decrypts, not both.
    def __init__(self, key, mode):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        if mode != 1:
            raise ValueError("mode")
        self._c = Cipher(algorithms.AES(bytes(key)), modes.ECB())
        self._e = None
        self._d = None

    def encrypt(self, data):
        if self._d is not None:
            raise ValueError("can't encrypt & decrypt")
        if self._e is None:
            self._e = self._c.encryptor()
        return self._e.update(bytes(data))

    def decrypt(self, data):
        if self._e is not None:
            raise ValueError("can't encrypt & decrypt")
        if self._d is None:
            self._d = self._c.decryptor()
        return self._d.update(bytes(data))
