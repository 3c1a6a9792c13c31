#!/usr/bin/env python3
"""Write a hostile but well-formed DWARF 4 .debug_info/.debug_abbrev pair: one compile unit
over [LO, LO+SIZE) holding N subprograms, each a few bytes of DWARF and each a real function
range inside the unit, so a reader that indexes every function does N units of work and keeps
N records. A debug file made of it (objcopy --update-section) is small on disk and large in
the reader's memory and CPU time.

  dwarf_bomb.py N LO SIZE OUT_INFO OUT_ABBREV
"""
import struct
import sys

from mkpprof import varint as uleb  # the same base-128 encoding


def main():
    n, lo, size = int(sys.argv[1]), int(sys.argv[2], 0), int(sys.argv[3], 0)
    DW_TAG_compile_unit, DW_TAG_subprogram = 0x11, 0x2E
    DW_AT_name, DW_AT_low_pc, DW_AT_high_pc = 0x03, 0x11, 0x12
    DW_FORM_addr, DW_FORM_data4, DW_FORM_string = 0x01, 0x06, 0x08
    abbrev = bytearray()
    abbrev += uleb(1) + uleb(DW_TAG_compile_unit) + b"\x01"
    abbrev += uleb(DW_AT_name) + uleb(DW_FORM_string)
    abbrev += uleb(DW_AT_low_pc) + uleb(DW_FORM_addr)
    abbrev += uleb(DW_AT_high_pc) + uleb(DW_FORM_data4) + b"\x00\x00"
    abbrev += uleb(2) + uleb(DW_TAG_subprogram) + b"\x00"
    abbrev += uleb(DW_AT_name) + uleb(DW_FORM_string)
    abbrev += uleb(DW_AT_low_pc) + uleb(DW_FORM_addr)
    abbrev += uleb(DW_AT_high_pc) + uleb(DW_FORM_data4) + b"\x00\x00"
    abbrev += b"\x00"
    body = bytearray()
    body += uleb(1) + b"bomb.c\x00" + struct.pack("<QI", lo, size)
    for i in range(n):
        name = b"f%x\x00" % i
        off = (i * 64) % max(size - 16, 1)
        body += uleb(2) + name + struct.pack("<QI", lo + off, 1 + i % 13)
    body += b"\x00"
    hdr = struct.pack("<HIB", 4, 0, 8)
    info = struct.pack("<I", len(hdr) + len(body)) + hdr + body
    open(sys.argv[4], "wb").write(info)
    open(sys.argv[5], "wb").write(abbrev)


main()
