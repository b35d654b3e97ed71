"""A Redis restore stream carries only what the backup writes (`redis_stream`): RESP arrays of bulk strings,
`RESTORE key ttl payload [REPLACE|ABSTTL|IDLETIME n|FREQ n]` and `SELECT n`. Each command is re-encoded as
read, so the server gets exactly what was checked; a payload streams through (memory stays bounded).
"""

from __future__ import annotations

from stashplan.errors import TransferError

_SMALL = 1024  # longest command name, SELECT index or RESTORE option accepted
_LINE = 32  # longest `*n` / `$n` header line
_OPTIONS = {b"REPLACE": 0, b"ABSTTL": 0, b"IDLETIME": 1, b"FREQ": 1}


def _options_ok(options: list[bytes]) -> bool:
    """RESTORE's arguments after the payload: REPLACE, ABSTTL, IDLETIME n, FREQ n."""
    k = 0
    while k < len(options):
        takes = _OPTIONS.get(options[k].upper())
        if takes is None or (takes and (k + 1 >= len(options) or not options[k + 1].isdigit())):
            return False
        k += 1 + (takes or 0)
    return True


class RedisConfine:
    """Checks a restore stream command by command. With a `target` database index, the dump's one database
    (its first `SELECT`, if any, before any key) is rewritten to the target; a second database is refused."""

    def __init__(self, target: str = "") -> None:
        self.target = target
        self._buf = b""
        self._pos = 0  # start of the unread part of _buf (only `_whole` moves it)
        self._argc = 0  # arguments left in the current command (0: expecting `*n`)
        self._args: list[bytes] = []  # the small arguments read so far
        self._bulk = -1  # bytes left of a streamed argument (-1: none)
        self._pending_crlf = False
        self._keys = False  # a RESTORE has been seen
        self._source: bytes | None = None

    def _refuse(self, what: str) -> TransferError:
        where = f"restore into redis database {self.target}" if self.target else "redis restore"
        return TransferError(f"{where}: {what}")

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            if self._argc == 0 and self._bulk < 0 and not self._pending_crlf and self._whole(out):
                continue
            if self._pos:
                self._buf, self._pos = self._buf[self._pos:], 0
            if not self._step(out):
                return bytes(out)

    def _whole(self, out: bytearray) -> bool:
        """The common case at speed: a whole `RESTORE` command in the buffer, exactly as the backup encodes it,
        goes out as it came. False leaves it (and anything unusual) to `_step`."""
        buf, p = self._buf, self._pos
        e = buf.find(b"\r\n", p, p + _LINE)
        if e < 0 or buf[p:p + 1] != b"*" or not buf[p + 1:e].isdigit() or not 4 <= int(buf[p + 1:e]) <= 10:
            return False
        args: list[bytes] = []
        q = e + 2
        for k in range(int(buf[p + 1:e])):
            e = buf.find(b"\r\n", q, q + _LINE)
            if e < 0 or buf[q:q + 1] != b"$" or not buf[q + 1:e].isdigit():
                return False
            start = e + 2
            q = start + int(buf[q + 1:e])
            if buf[q:q + 2] != b"\r\n":
                return False
            args.append(buf[start:q] if k == 0 or k > 3 else b"")
            q += 2
        if args[0] != b"RESTORE" or not _options_ok(args[4:]):
            return False
        out += buf[p:q]
        self._pos, self._keys = q, True
        return True

    def flush(self) -> bytes:
        out = self.feed(b"")
        if self._buf or self._argc or self._bulk >= 0 or self._pending_crlf:
            raise self._refuse("the stream ends inside a command")
        return out

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n", 0, _LINE)
        if end < 0:
            if len(self._buf) >= _LINE:
                raise self._refuse(f"not a command the backup writes (a RESP header): {self._buf[:20]!r}")
            return None
        line, self._buf = self._buf[:end], self._buf[end + 2:]
        return line

    def _step(self, out: bytearray) -> bool:
        """One piece of the stream: a header, a small argument, or part of a streamed one. False: need more."""
        if self._bulk >= 0:  # streaming an argument's bytes through
            part = self._buf[:self._bulk]
            out += part
            self._buf, self._bulk = self._buf[len(part):], self._bulk - len(part)
            if self._bulk:
                return False
            self._bulk, self._pending_crlf = -1, True
        if self._pending_crlf:
            if len(self._buf) < 2:
                return False
            if self._buf[:2] != b"\r\n":
                raise self._refuse("an argument does not end with CRLF")
            out += b"\r\n"
            self._buf, self._pending_crlf = self._buf[2:], False
            if self._argc == 0:
                self._end(out)
            return True
        if not self._buf:
            return False
        if self._argc == 0:
            if self._buf[:1] != b"*":
                raise self._refuse(f"not a command the backup writes (an inline command): {self._buf[:20]!r}")
            line = self._line()
            if line is None:
                return False
            if not line[1:].isdigit() or not 1 <= int(line[1:]) <= 10:
                raise self._refuse(f"not a command the backup writes ({line[:20]!r})")
            self._argc, self._args = int(line[1:]), []
            return True
        if self._buf[:1] != b"$":
            raise self._refuse("an argument is not a bulk string")
        end = self._buf.find(b"\r\n", 0, _LINE)
        if end < 0:
            if len(self._buf) >= _LINE:
                raise self._refuse("an argument header is too long")
            return False
        size = self._buf[1:end]
        if not size.isdigit():
            raise self._refuse(f"an argument has the length {size[:20]!r}")
        n = int(size)
        stream = len(self._args) in (1, 2, 3) and self._args[0] == b"RESTORE"  # key, ttl, payload
        if not stream:
            if n > _SMALL:
                raise self._refuse("a command name, SELECT index or RESTORE option is too long")
            if len(self._buf) < end + 2 + n + 2:
                return False
            arg = self._buf[end + 2:end + 2 + n]
            if self._buf[end + 2 + n:end + 4 + n] != b"\r\n":
                raise self._refuse("an argument does not end with CRLF")
            self._buf = self._buf[end + 4 + n:]
            self._args.append(arg.upper() if not self._args else arg)
            self._argc -= 1
            if len(self._args) == 1 and self._args[0] == b"RESTORE":
                out += b"*%d\r\n$7\r\nRESTORE\r\n" % (self._argc + 1)
            elif len(self._args) == 1 and self._args[0] != b"SELECT":
                raise self._refuse(f"the stream runs {arg[:40].decode(errors='replace')!r}; a restore replays only "
                                   "the RESTORE and SELECT commands a backup writes")
            elif self._args[0] == b"RESTORE":
                self._option(arg, out)
            if self._argc == 0:
                self._end(out)
            return True
        out += b"$%d\r\n" % n
        self._buf, self._bulk, self._argc = self._buf[end + 2:], n, self._argc - 1
        self._args.append(b"")  # a streamed argument: its place only
        return True

    def _option(self, arg: bytes, out: bytearray) -> None:
        """A RESTORE argument after the payload: an option name, or the number an option takes."""
        prev = self._args[-2].upper()
        if len(self._args) > 5 and _OPTIONS.get(prev) == 1 and arg.isdigit():
            self._args[-1] = b""  # a value, not an option name
        elif arg.upper() not in _OPTIONS:
            raise self._refuse(f"RESTORE has the option {arg[:40].decode(errors='replace')!r}")
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)

    def _end(self, out: bytearray) -> None:
        """A whole command has been read: RESTORE went out as it streamed, SELECT is checked here."""
        if self._args[0] == b"RESTORE":
            if len(self._args) < 4:
                raise self._refuse("RESTORE lacks its key, ttl or payload")
            self._keys = True
            return
        if len(self._args) != 2 or not self._args[1].isdigit():
            raise self._refuse("SELECT takes one database number")
        db = self._args[1]
        if self.target:
            if self._source is None and self._keys:
                raise self._refuse(f"the dump switches to database {db.decode()} after writing keys; restore it "
                                   "into an AppBinding that names no database number")
            if self._source is not None and db != self._source:
                raise self._refuse(f"the dump holds more than one database ({self._source.decode()}, {db.decode()}); "
                                   "restore it into an AppBinding that names no database number, or back up one")
            self._source, db = db, self.target.encode()
        out += b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(db), db)
