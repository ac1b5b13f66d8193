#!/usr/bin/env python3
"""GENA eventing checks for tests/dlna/run (run on the TV host, as root): UDA 1.1 §4 against Hearth.

  gena.py check LOCATION MEDIA_DIR SAMPLE   the checks below; prints PASS/FAIL lines, exit 1 on any FAIL
  gena.py listen PORT                       (in another namespace) print 'listening', then one line per
                                            connection received ('got <first line>'), until killed

check:
  1. async-upnp-client subscribes to ContentDirectory and gets the initial event (SystemUpdateID).
  2. A file copied into MEDIA_DIR makes an event with a larger SystemUpdateID arrive (the wait is printed).
  3. After UNSUBSCRIBE, a second change reaches a control subscription but not the cancelled one.
  4. CallStranger: CALLBACKs naming the WAN host (a listener runs there), another LAN host, multicast or
     loopback are 412 and the WAN listener records nothing; bad headers get the spec's status.
  5. Flood: 10 source addresses x 5 SUBSCRIBEs: exactly 32 held (4 per source), the rest 503; a 503 keeps
     nothing (one cancelled makes room for exactly one).
Environment: HEARTH_PID (the server's PID: RSS printed before and with 32 subscribers), GENA_BURST=N (copy N
files at once and print the events that arrive: the moderation figure; 0 or unset skips it).
"""
import asyncio, os, re, shutil, subprocess, sys, time

import aiohttp
from async_upnp_client.aiohttp import AiohttpNotifyServer, AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory

CDS = "urn:schemas-upnp-org:service:ContentDirectory:1"
TV = "10.77.0.2"
WAN = "10.78.0.2"
fails = 0


def check(what, good):
    global fails
    print(("PASS  " if good else "FAIL  ") + what, flush=True)
    if not good:
        fails += 1


def rss(pid):
    if not pid:
        return "unknown"
    with open(f"/proc/{pid}/status") as f:
        return next((l.split(":", 1)[1].strip() for l in f if l.startswith("VmRSS")), "unknown")


class Sink:
    """A NOTIFY listener on this host: records (time, SID, SEQ, body) per message, answers 200."""

    def __init__(self):
        self.got = []

    async def start(self, port):
        async def on(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            h = dict(l.split(":", 1) for l in head.decode("latin-1").split("\r\n")[1:] if ":" in l)
            h = {k.strip().upper(): v.strip() for k, v in h.items()}
            body = await reader.readexactly(int(h.get("CONTENT-LENGTH", "0")))
            self.got.append((time.monotonic(), h.get("SID"), int(h.get("SEQ", "-1")), body.decode()))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
        self.server = await asyncio.start_server(on, "0.0.0.0", port)

    def of(self, sid):
        return [g for g in self.got if g[1] == sid]


async def raw(method, url, headers, local=None):
    """One request with exactly these fields (and Host, which aiohttp adds); (status, headers)."""
    conn = aiohttp.TCPConnector(local_addr=(local, 0)) if local else None
    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.request(method, url, headers=headers, skip_auto_headers=["User-Agent"]) as r:
            await r.read()
            return r.status, r.headers


async def wait_for(pred, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.1)
    return pred()


def update_id(body):
    m = re.search(r"<SystemUpdateID>(\d+)</SystemUpdateID>", body)
    return int(m.group(1)) if m else None


async def subscribe_and_change(location, media, sample):
    """1-3: a real control point subscribes, sees a change, unsubscribes."""
    requester = AiohttpRequester(timeout=10)
    device = await UpnpFactory(requester).async_create_device(location)
    svc = device.service(CDS)
    server = AiohttpNotifyServer(requester, source=(TV, 0))
    await server.async_start_server()
    seen = []
    svc.on_event = lambda service, variables: seen.append((time.monotonic(), {v.name: v.value for v in variables}))
    sid, timeout = await server.event_handler.async_subscribe(svc, timeout=__import__("datetime").timedelta(seconds=600))
    check(f"async-upnp-client subscribes to ContentDirectory ({sid}, {timeout})", sid.startswith("uuid:"))
    await wait_for(lambda: seen, 5)
    first = seen[0][1].get("SystemUpdateID") if seen else None
    check(f"  ... and receives the initial event (SystemUpdateID={first})", first is not None)
    # A control subscription (raw) that stays, to know when the server has evented the next change.
    control = Sink()
    await control.start(4100)
    base = location.rsplit("/", 1)[0]
    st, h = await raw("SUBSCRIBE", f"{base}/event/cds", {"NT": "upnp:event", "CALLBACK": f"<http://{TV}:4100/c>"})
    control_sid = h.get("SID")
    await wait_for(lambda: control.of(control_sid), 5)
    t0 = time.monotonic()
    shutil.copy(sample, os.path.join(media, "GENA added (2025).mp4"))
    changed = await wait_for(lambda: any(int(v.get("SystemUpdateID") or 0) > int(first or 0) for _, v in seen[1:]), 20)
    took = next((t - t0 for t, v in seen[1:] if int(v.get("SystemUpdateID") or 0) > int(first or 0)), None)
    check(f"a file added to the library makes a SystemUpdateID event arrive (after {took and round(took, 2)} s: "
          f"inotify, rescan, the 0.5 s view tick, moderation)", changed)
    # The control subscription has been told of the addition too; then cancel, and change again.
    added = max(int(v.get("SystemUpdateID") or 0) for _, v in seen)
    told = lambda above: any((update_id(g[3]) or 0) >= above for g in control.of(control_sid)[1:])
    await wait_for(lambda: told(added), 10)
    await server.event_handler.async_unsubscribe(svc)
    before = len(seen)
    os.remove(os.path.join(media, "GENA added (2025).mp4"))
    reached = await wait_for(lambda: told(added + 1), 20)
    # The cancelled subscription's moderation wait ended before the control's: it would have had its event.
    await asyncio.sleep(0.5)
    check(f"after UNSUBSCRIBE the next change reaches the control subscription ({reached}) and not the cancelled one "
          f"({len(seen) - before} events)", reached and len(seen) == before)
    st, _ = await raw("SUBSCRIBE", f"{base}/event/cds", {"SID": sid, "TIMEOUT": "Second-600"})
    check(f"renewing the cancelled SID is 412 (got {st})", st == 412)
    st, h = await raw("SUBSCRIBE", f"{base}/event/cds", {"SID": control_sid, "TIMEOUT": "Second-99999"})
    check(f"renewing a live SID is 200 with the TIMEOUT clamped ({st}, {h.get('TIMEOUT')})", st == 200 and h.get("TIMEOUT") == "Second-1800")
    st, _ = await raw("UNSUBSCRIBE", f"{base}/event/cds", {"SID": control_sid})
    check(f"UNSUBSCRIBE of the control subscription is 200 (got {st})", st == 200)
    seqs = [g[2] for g in control.got]
    check(f"SEQ starts at 0 and counts up by one ({seqs})", seqs == list(range(len(seqs))) and len(seqs) >= 3)
    await server.async_stop_server()
    control.server.close()


async def callstranger(base, me):
    """4: nothing is sent anywhere but the subscriber's own address; bad headers are refused."""
    listener = subprocess.Popen(["ip", "netns", "exec", "hearth-dl-wan", sys.executable, me, "listen", "4200"],
                                stdout=subprocess.PIPE, text=True)
    try:
        check("a listener runs on the WAN host", listener.stdout.readline().strip() == "listening")
        url = f"{base}/event/cds"
        for cb in [f"http://{WAN}:4200/x", "http://10.77.0.254:4200/x", "http://239.255.255.250:1900/x",
                   "http://127.0.0.1:4200/x", f"http://{TV}:4200/a><http://{WAN}:4200/b", "http://router.lan:4200/x"]:
            st, h = await raw("SUBSCRIBE", url, {"NT": "upnp:event", "CALLBACK": f"<{cb}>"})
            check(f"CALLBACK <{cb}> is 412 with no SID (got {st})", st == 412 and "SID" not in h)
        bad = [({"CALLBACK": f"<http://{TV}:4200/>"}, 412), ({"NT": "upnp:event"}, 412),
               ({"NT": "upnp:event", "CALLBACK": f"<http://{TV}:4200/>", "SID": "uuid:x"}, 400),
               ({"NT": "upnp:event", "CALLBACK": f"<http://{TV}:4200/>", "TIMEOUT": "Second-soon"}, 400),
               ({"SID": "uuid:00000000-0000-4000-8000-000000000000"}, 412)]
        for headers, want in bad:
            st, _ = await raw("SUBSCRIBE", url, headers)
            check(f"SUBSCRIBE {headers} is {want} (got {st})", st == want)
        async with aiohttp.ClientSession() as s:
            async with s.request("SUBSCRIBE", url, data=b"x" * 100, headers={"NT": "upnp:event", "CALLBACK": f"<http://{TV}:4200/>"}) as r:
                check(f"SUBSCRIBE with a body is 400 (got {r.status})", r.status == 400)
        st, _ = await raw("SUBSCRIBE", f"{base}/event/nothing", {"NT": "upnp:event", "CALLBACK": f"<http://{TV}:4200/>"})
        check(f"SUBSCRIBE to an URL that publishes nothing is 404 (got {st})", st == 404)
        await asyncio.sleep(3)
    finally:
        listener.kill()
        out, _ = listener.communicate()
    check(f"the WAN listener recorded nothing ({out.strip()!r})", out.strip() == "")


async def flood(base, pid):
    """5: the table stays bounded: 4 per source, 32 in all."""
    sources = [TV] + [f"10.77.0.{100 + i}" for i in range(9)]
    for ip in sources[1:]:
        subprocess.run(["ip", "addr", "add", f"{ip}/24", "dev", "eth0"], check=True)
    sink = Sink()
    await sink.start(4300)
    url = f"{base}/event/cds"
    print(f"hearth RSS before the flood: {rss(pid)}", flush=True)
    try:
        asks = [raw("SUBSCRIBE", url, {"NT": "upnp:event", "CALLBACK": f"<http://{ip}:4300/f>", "TIMEOUT": "Second-300"}, local=ip)
                for ip in sources for _ in range(5)]
        answers = await asyncio.gather(*asks)
        held = [(a[1].get("SID"), ip) for a, ip in zip(answers, [ip for ip in sources for _ in range(5)]) if a[0] == 200]
        codes = sorted({a[0] for a in answers})
        per = max(sum(1 for _, ip in held if ip == s) for s in sources)
        check(f"a flood of 50 SUBSCRIBEs from 10 addresses holds exactly 32 (held {len(held)}, at most {per} per "
              f"address, answers {codes})", len(held) == 32 and per == 4 and codes == [200, 503])
        await wait_for(lambda: len({g[1] for g in sink.got}) >= 32, 10)
        print(f"hearth RSS with 32 subscribers: {rss(pid)}; initial events received: {len(sink.got)}", flush=True)
        free = next(ip for ip in sources if sum(1 for _, h in held if h == ip) < 4)
        st, _ = await raw("SUBSCRIBE", url, {"NT": "upnp:event", "CALLBACK": f"<http://{free}:4300/f>"}, local=free)
        check(f"one more is 503 and nothing is kept (got {st})", st == 503)
        sid, ip = held[0]
        st, _ = await raw("UNSUBSCRIBE", url, {"SID": sid}, local=ip)
        room = [await raw("SUBSCRIBE", url, {"NT": "upnp:event", "CALLBACK": f"<http://{free}:4300/f>"}, local=free) for _ in range(2)]
        check(f"one cancelled makes room for exactly one (answers {[r[0] for r in room]})", st == 200 and [r[0] for r in room] == [200, 503])
        for sid, ip in held[1:] + [(room[0][1].get("SID"), free)]:
            await raw("UNSUBSCRIBE", url, {"SID": sid}, local=ip)
    finally:
        sink.server.close()
        for ip in sources[1:]:
            subprocess.run(["ip", "addr", "del", f"{ip}/24", "dev", "eth0"], check=False)


async def burst(location, media, sample, n):
    """The moderation figure: N files at once, the events one subscriber gets."""
    base = location.rsplit("/", 1)[0]
    sink = Sink()
    await sink.start(4400)
    st, h = await raw("SUBSCRIBE", f"{base}/event/cds", {"NT": "upnp:event", "CALLBACK": f"<http://{TV}:4400/b>"})
    sid = h.get("SID")
    await wait_for(lambda: sink.of(sid), 5)
    folder = os.path.join(media, "burst")
    os.makedirs(folder, exist_ok=True)
    t0 = time.monotonic()
    for i in range(n):
        shutil.copy(sample, os.path.join(folder, f"Burst {i:04d} (2025).mp4"))
    copied = time.monotonic() - t0
    # Until no event came for 10 s.
    while True:
        count = len(sink.of(sid))
        await asyncio.sleep(10)
        if len(sink.of(sid)) == count:
            break
    events = sink.of(sid)[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import client  # the DLNA suite's control point: count what a TV now browses
    shown, _ = await client.browse_big(location, n)
    gaps = [round(b[0] - a[0], 2) for a, b in zip(events, events[1:])]
    span = round(events[-1][0] - t0, 1) if events else 0
    print(f"burst of {n} files (copied in {copied:.1f} s; a container now shows {shown}): {len(events)} change events over {span} s; "
          f"smallest gap {min(gaps) if gaps else '-'} s; last SystemUpdateID {update_id(events[-1][3]) if events else '-'}", flush=True)
    await raw("UNSUBSCRIBE", f"{base}/event/cds", {"SID": sid})
    shutil.rmtree(folder)
    sink.server.close()


async def main_check(location, media, sample):
    base = location.rsplit("/", 1)[0]
    t0 = time.monotonic()
    await subscribe_and_change(location, media, sample)
    await callstranger(base, os.path.abspath(__file__))
    await flood(base, os.environ.get("HEARTH_PID"))
    print(f"GENA checks took {time.monotonic() - t0:.1f} s", flush=True)
    n = int(os.environ.get("GENA_BURST", "0") or 0)
    if n > 0:
        await burst(location, media, sample, n)


async def listen(port):
    async def on(reader, writer):
        try:
            line = await asyncio.wait_for(reader.readline(), 2)
        except Exception:
            line = b""
        print("got " + line.decode("latin-1").strip(), flush=True)
        writer.close()
    server = await asyncio.start_server(on, "0.0.0.0", port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        asyncio.run(listen(int(sys.argv[2])))
    else:
        asyncio.run(main_check(*sys.argv[2:5]))
        sys.exit(1 if fails else 0)
