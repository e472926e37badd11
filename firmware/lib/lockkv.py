# Small named blobs (keys, deny list, settings, clock high-water mark) in files
# on the unit's filesystem (littlefs on the ESP32, a directory in the
# simulator). Each save writes a temporary file and renames it over the old
# one: littlefs renames atomically, so a power cut leaves the old or the new
# blob, never a mix. The flash journal is stored apart from these.
import os


class FileKV:
    def __init__(self, root):
        self.root = root.rstrip("/")
        try:
            os.mkdir(self.root)
        except OSError:
            pass

    def _path(self, name):
        n = name.decode() if isinstance(name, bytes) else name
        if not n or "/" in n or n.startswith("."):
            raise ValueError("name")
        return self.root + "/" + n

    def load(self, name):
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def save(self, name, blob):
        path = self._path(name)
        tmp = path + ".new"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.rename(tmp, path)

    def delete(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass
