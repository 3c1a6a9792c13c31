#!/usr/bin/env python3
"""Set the size of the .text section header of an ELF64 little-endian file in place (a debug
file's .text is SHT_NOBITS: it takes no bytes, so any size fits).

  elf_text_size.py FILE SIZE
"""
import struct
import sys

path, size = sys.argv[1], int(sys.argv[2], 0)
with open(path, "r+b") as f:
    data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    stroff, = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)
    for i in range(shnum):
        sh = shoff + i * shentsize
        name, stype = struct.unpack_from("<II", data, sh)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".text":
            if stype != 8:
                sys.exit(".text is not SHT_NOBITS")
            f.seek(sh + 0x20)
            f.write(struct.pack("<Q", size))
            sys.exit(0)
sys.exit("no .text")
