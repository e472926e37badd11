# Runs under MicroPython: executes JSON-line calls from the host (mpyhost.Worker).
import sys
import json
import binascii


def _enc(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b": binascii.hexlify(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {"d": [[_enc(k), _enc(x)] for k, x in v.items()]}
    return v


def _dec(v):
    if isinstance(v, dict):
        if "b" in v:
            return binascii.unhexlify(v["b"])
        if "d" in v:
            return {_dec(k): _dec(x) for k, x in v["d"]}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


def main():
    mods = {}
    for name in sys.argv[1:]:
        mods[name] = __import__(name)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        req = json.loads(line)
        mod, _, fn = req["f"].rpartition(".")
        try:
            if mod not in mods:
                mods[mod] = __import__(mod)
            res = getattr(mods[mod], fn)(*_dec(req["a"]))
            out = {"r": _enc(res)}
        except Exception as e:
            out = {"e": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


main()
