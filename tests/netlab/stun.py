#!/usr/bin/env python3
"""A tiny STUN server for the netlab (RFC 5389 Binding only): answers every Binding request with a
Binding success response carrying XOR-MAPPED-ADDRESS (IPv4). A request with CHANGE-REQUEST (RFC 5780 §7.2,
RFC 3489 §11.2.4) asking for another IP or port is answered from the alternate port PORT+1, as a real
server answers from its other address: a filtering NAT in front of the client drops that answer, which is how
miniupnpd's STUN probe tells a restrictive (double) NAT from a 1:1 one. Usage: stun.py ADDR PORT"""
import select
import socket
import struct
import sys

COOKIE = 0x2112A442
CHANGE_REQUEST = 0x0003


def wants_change(data):
    """True when the request carries CHANGE-REQUEST with the change-IP (0x04) or change-port (0x02) flag."""
    i = 20
    while i + 4 <= len(data):
        kind, length = struct.unpack("!HH", data[i:i + 4])
        if kind == CHANGE_REQUEST and length == 4 and i + 8 <= len(data):
            return data[i + 7] & 0x06 != 0
        i += 4 + (length + 3) // 4 * 4
    return False


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    alt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    alt.bind((addr, port + 1))
    while True:
        ready, _, _ = select.select([s, alt], [], [])
        for sock in ready:
            data, (ip, sport) = sock.recvfrom(2048)
            if len(data) < 20:
                continue
            kind, _length, cookie = struct.unpack("!HHI", data[:8])
            if kind != 0x0001 or cookie != COOKIE:
                continue
            tid = data[8:20]
            xport = sport ^ (COOKIE >> 16)
            xaddr = struct.unpack("!I", socket.inet_aton(ip))[0] ^ COOKIE
            attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, xport, xaddr)
            out = alt if wants_change(data) else sock
            out.sendto(struct.pack("!HHI", 0x0101, len(attr), COOKIE) + tid + attr, (ip, sport))


if __name__ == "__main__":
    main()
