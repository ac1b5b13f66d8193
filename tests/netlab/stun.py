#!/usr/bin/env python3
"""A tiny STUN server for the netlab (RFC 5389 Binding only): answers every Binding request with a
Binding success response carrying XOR-MAPPED-ADDRESS (IPv4). Usage: stun.py ADDR PORT"""
import socket
import struct
import sys

COOKIE = 0x2112A442


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, (ip, sport) = s.recvfrom(2048)
        if len(data) < 20:
            continue
        kind, _length, cookie = struct.unpack("!HHI", data[:8])
        if kind != 0x0001 or cookie != COOKIE:
            continue
        tid = data[8:20]
        xport = sport ^ (COOKIE >> 16)
        xaddr = struct.unpack("!I", socket.inet_aton(ip))[0] ^ COOKIE
        attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, xport, xaddr)
        s.sendto(struct.pack("!HHI", 0x0101, len(attr), COOKIE) + tid + attr, (ip, sport))


if __name__ == "__main__":
    main()
