"""A FUSE file system of one file, speaking the kernel's /dev/fuse protocol directly (no
libfuse): `fuse_hang.py MNT FILE [HANGFLAG]`. It mounts at MNT a read-only directory holding
"lib.so" with FILE's bytes. To make it hang, stop it (SIGSTOP): every open or read of the file
then waits (killably), as on a dead NFS or FUSE server. Once the path HANGFLAG exists it reads
requests and never answers them, which is worse: callers then wait unkillably. Killing this
process aborts the connection (waiting calls then fail)."""
import ctypes, os, struct, sys

mnt, src = sys.argv[1], sys.argv[2]
hang = sys.argv[3] if len(sys.argv) > 3 else None
data = open(src, "rb").read()
fd = os.open("/dev/fuse", os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
opts = ("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % fd).encode()
if libc.mount(b"fleetsym-hang", mnt.encode(), b"fuse", 6, opts) != 0:  # MS_NOSUID|MS_NODEV
    sys.exit("mount: %s" % os.strerror(ctypes.get_errno()))
print("mounted", flush=True)

def attr(ino):
    if ino == 1:
        mode, size, nlink = 0o40555, 0, 2
    else:
        mode, size, nlink = 0o100555, len(data), 1
    return struct.pack("<QQQQQQIIIIIIIIII", ino, size, (size + 511) // 512, 0, 0, 0, 0, 0, 0,
                       mode, nlink, 0, 0, 0, 4096, 0)

def reply(unique, err=0, body=b""):
    os.write(fd, struct.pack("<IiQ", 16 + len(body), -err, unique) + body)

while True:
    try:
        req = os.read(fd, 1 << 20)
    except OSError:
        break
    length, op, unique, node = struct.unpack_from("<IIQQ", req)
    arg = req[40:]
    if hang and os.path.exists(hang) and op not in (26, 2, 42):
        continue  # never answered
    if op == 26:  # INIT
        reply(unique, 0, struct.pack("<IIIIHHIIHHI7I", 7, 31, 0, 0, 0, 0, 4096, 1, 0, 0, 0,
                                     *([0] * 7)))
    elif op in (2, 42):  # FORGET, BATCH_FORGET: no answer
        pass
    elif op == 1:  # LOOKUP
        if node == 1 and arg.rstrip(b"\0") == b"lib.so":
            reply(unique, 0, struct.pack("<QQQQII", 2, 0, 1, 1, 0, 0) + attr(2))
        else:
            reply(unique, 2)  # ENOENT
    elif op == 3:  # GETATTR
        reply(unique, 0, struct.pack("<QII", 1, 0, 0) + attr(node))
    elif op in (14, 27):  # OPEN, OPENDIR
        reply(unique, 0, struct.pack("<QII", 0, 0, 0))
    elif op == 15:  # READ
        fh, off, size = struct.unpack_from("<QQI", arg)
        reply(unique, 0, data[off:off + size])
    elif op in (18, 25, 29):  # RELEASE, FLUSH, RELEASEDIR
        reply(unique)
    elif op == 28:  # READDIR: empty
        reply(unique)
    else:
        reply(unique, 38)  # ENOSYS
