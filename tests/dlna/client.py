#!/usr/bin/env python3
"""A real UPnP control point (async-upnp-client) for the DLNA tests and the benchmark.

  client.py listen SECONDS                     count NOTIFY alive/byebye seen on the group
  client.py discover [--timeout S] [--target IP]  print LOCATION of each MediaServer found by M-SEARCH; exit 1 if none
  client.py fetch LOCATION SHA256 OUT [DUR]    description -> Browse down to the first item -> HEAD, Range, GET;
                                               compare bytes with SHA256; exit 1 on any mismatch
  client.py first-url LOCATION                 print the res URL of the first item found
  client.py root LOCATION                      print the titles of the root's children (the libraries)
  client.py walk LOCATION                      browse the whole tree (pages of 100); print items and seconds
  client.py bench [--timeout S]                discover + walk the first server found; print JSON timings
  client.py samsung LOCATION CUE ART_SHA256    as a Samsung TV: X_GetFeatureList (its views exist), then the first
                                               video with a subtitle: CaptionInfo.sec on its stream, the subtitle
                                               (must hold CUE) and its albumArtURI (bytes must match ART_SHA256)

Samsung-shaped requests are quoted from these sources: the User-Agent from xupnpd's Samsung-AllShare profile
("SEC_HHP_[TV]UE32ES6757/1.0 DLNADOC/1.50"); the stream request's fields (Range, getcontentFeatures.dlna.org: 1,
getCaptionInfo.sec: 1, transferMode.dlna.org: Streaming) from a capture of a Samsung TV in MicroDLNA's protocol
notes and Gerbera's quirks.h ("we should check for getCaptionInfo.sec: 1 request header"); the X_GetFeatureList
call as MiniDLNA's upnpsoap.c and MediaPortal's UPnP server answer it (ContentDirectory:1 namespace, no arguments).
"""
import asyncio, hashlib, json, sys, time, xml.etree.ElementTree as ET

import aiohttp
from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.search import async_search

MS = "urn:schemas-upnp-org:device:MediaServer:1"
CDS = "urn:schemas-upnp-org:service:ContentDirectory:1"
NS = {"d": "urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/", "dc": "http://purl.org/dc/elements/1.1/",
      "upnp": "urn:schemas-upnp-org:metadata-1-0/upnp/"}


FIRST = {}


async def discover(timeout, target=None):
    found = {}
    t = time.monotonic()

    async def on(headers):
        if headers.get("ST") == MS:
            FIRST.setdefault("s", time.monotonic() - t)
            found[headers.get("USN")] = headers.get("LOCATION")

    if target:
        # A unicast M-SEARCH straight to the server (how a host outside the LAN would have to ask).
        await async_search(on, timeout=timeout, search_target=MS, target=(target, 1900))
    else:
        await async_search(on, timeout=timeout, search_target=MS)
    return sorted(set(found.values()))


def listen(seconds):
    """Count SSDP NOTIFYs on the group for SECONDS: prints 'alive N byebye M'."""
    import socket, struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", 1900))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton("0.0.0.0")))
    s.settimeout(0.2)
    alive = bye = 0
    end = time.monotonic() + seconds
    print("listening", flush=True)
    while time.monotonic() < end:
        try:
            data = s.recv(4096).decode("latin-1")
        except socket.timeout:
            continue
        if data.startswith("NOTIFY"):
            if "ssdp:byebye" in data:
                bye += 1
            elif "ssdp:alive" in data:
                alive += 1
    print(f"alive {alive} byebye {bye}")


async def cds(location):
    factory = UpnpFactory(AiohttpRequester(timeout=10))
    device = await factory.async_create_device(location)
    return device, device.service(CDS)


async def browse(svc, oid, start=0, count=100):
    r = await svc.action("Browse").async_call(ObjectID=oid, BrowseFlag="BrowseDirectChildren", Filter="*",
                                              StartingIndex=start, RequestedCount=count, SortCriteria="")
    return ET.fromstring(r["Result"]), int(r["NumberReturned"]), int(r["TotalMatches"])


async def children(svc, oid):
    start = 0
    while True:
        didl, n, total = await browse(svc, oid, start)
        for el in didl:
            yield el
        start += n
        if n == 0 or start >= total:
            return


async def first_item(svc, oid="0", depth=0):
    async for el in children(svc, oid):
        if el.tag.endswith("item"):
            return el
        if depth < 8:
            found = await first_item(svc, el.get("id"), depth + 1)
            if found is not None:
                return found
    return None


async def fetch(location, sha, out, duration=None):
    device, svc = await cds(location)
    print(f"description: {device.friendly_name!r} udn={device.udn} manufacturer={device.manufacturer!r}")
    item = await first_item(svc)
    if item is None:
        print("no item found"); return 1
    res = item.find("d:res", NS)
    url, pinfo, size = res.text, res.get("protocolInfo"), int(res.get("size"))
    print(f"item: {item.find('dc:title', NS).text!r} class={item.find('upnp:class', NS).text} size={size}")
    print(f"protocolInfo: {pinfo} duration={res.get('duration')}")
    if duration is not None and res.get("duration") != duration:
        print(f"the res duration is {res.get('duration')!r}, not {duration!r}"); return 1
    async with aiohttp.ClientSession() as s:
        # Many TVs send HEAD first, asking for the DLNA content features.
        async with s.head(url, headers={"getcontentFeatures.dlna.org": "1", "transferMode.dlna.org": "Streaming"}) as r:
            cf = r.headers.get("contentFeatures.dlna.org", "")
            print(f"HEAD {r.status} length={r.headers.get('Content-Length')} features={cf} mode={r.headers.get('transferMode.dlna.org')}")
            if r.status != 200 or int(r.headers["Content-Length"]) != size or "DLNA.ORG_OP=01" not in cf:
                return 1
        async with s.get(url, headers={"Range": "bytes=10-19"}) as r:
            part = await r.read()
            print(f"GET Range bytes=10-19 -> {r.status} {r.headers.get('Content-Range')} {len(part)} bytes")
            if r.status != 206 or len(part) != 10:
                return 1
        async with s.get(url, headers={"transferMode.dlna.org": "Streaming"}) as r:
            body = await r.read()
    got = hashlib.sha256(body).hexdigest()
    open(out, "wb").write(body)
    print(f"GET {len(body)} bytes sha256 {got[:16]}... {'matches' if got == sha else 'DIFFERS from ' + sha[:16]}")
    if part != body[10:20]:
        print("the range bytes differ from the whole file"); return 1
    return 0 if got == sha else 1


SAMSUNG_UA = "SEC_HHP_[TV]UE32ES6757/1.0 DLNADOC/1.50"
FEATURE_LIST_BODY = ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
                     's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
                     '<u:X_GetFeatureList xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"></u:X_GetFeatureList>'
                     '</s:Body></s:Envelope>')


async def first_captioned(svc, oid="0", depth=0):
    """The first item (depth first) with a text/srt res."""
    async for el in children(svc, oid):
        if el.tag.endswith("item"):
            if any(r.get("protocolInfo", "").startswith("http-get:*:text/srt:") for r in el.findall("d:res", NS)):
                return el
        elif depth < 8:
            found = await first_captioned(svc, el.get("id"), depth + 1)
            if found is not None:
                return found
    return None


async def samsung(location, cue, art_sha):
    device, svc = await cds(location)
    control = svc.control_url
    async with aiohttp.ClientSession(headers={"User-Agent": SAMSUNG_UA}) as s:
        headers = {"SOAPACTION": f'"{CDS}#X_GetFeatureList"', "Content-Type": 'text/xml; charset="utf-8"'}
        async with s.post(control, data=FEATURE_LIST_BODY, headers=headers) as r:
            text = await r.text()
            print(f"X_GetFeatureList -> {r.status}")
            if r.status != 200:
                print(text); return 1
        body = ET.fromstring(text).find(".//FeatureList")
        features = ET.fromstring(body.text.encode())
        av = "{urn:schemas-upnp-org:av:avs}"
        basic = [f for f in features.findall(av + "Feature") if f.get("name") == "samsung.com_BASICVIEW"]
        views = {c.get("type"): c.get("id") for c in basic[0].findall(av + "container")} if basic else {}
        print(f"samsung.com_BASICVIEW views: {views}")
        if set(views) != {"object.item.videoItem", "object.item.audioItem", "object.item.imageItem"}:
            return 1
        for cid in set(views.values()):
            r = await svc.action("Browse").async_call(ObjectID=cid, BrowseFlag="BrowseMetadata", Filter="*",
                                                      StartingIndex=0, RequestedCount=0, SortCriteria="")
            if int(r["NumberReturned"]) != 1:
                print(f"the view container {cid} does not exist"); return 1
        item = await first_captioned(svc)
        if item is None:
            print("no item lists a text/srt res"); return 1
        res = [r for r in item.findall("d:res", NS)]
        media, srt = res[0].text, [r.text for r in res if r.get("protocolInfo", "").startswith("http-get:*:text/srt:")][0]
        ex = item.find("{http://www.sec.co.kr/}CaptionInfoEx")
        print(f"item {item.find('dc:title', NS).text!r}: subtitle res {srt} CaptionInfoEx {ex is not None and ex.text}")
        if ex is None or ex.text != srt:
            return 1
        asked = {"Range": "bytes=0-1048575", "getcontentFeatures.dlna.org": "1", "getCaptionInfo.sec": "1",
                 "transferMode.dlna.org": "Streaming"}
        async with s.get(media, headers=asked) as r:
            await r.read()
            caption = r.headers.get("CaptionInfo.sec")
            print(f"GET {media} -> {r.status} CaptionInfo.sec: {caption}")
            if r.status != 206 or caption != srt:
                return 1
        async with s.get(caption) as r:
            sub = await r.text()
            print(f"GET subtitle -> {r.status} {r.headers.get('Content-Type')} {len(sub)} chars")
            if r.status != 200 or cue not in sub:
                return 1
        art = item.find("upnp:albumArtURI", NS)
        if art is None:
            print("no albumArtURI"); return 1
        async with s.get(art.text) as r:
            got = hashlib.sha256(await r.read()).hexdigest()
            print(f"GET albumArtURI ({art.get('{urn:schemas-dlna-org:metadata-1-0/}profileID')}) -> {r.status} "
                  f"{r.headers.get('Content-Type')} sha256 {got[:16]}...")
            if r.status != 200 or got != art_sha:
                return 1
    return 0


async def walk(location):
    t = time.monotonic()
    _, svc = await cds(location)
    items = containers = 0
    stack = ["0"]
    while stack:
        oid = stack.pop()
        async for el in children(svc, oid):
            if el.tag.endswith("item"):
                items += 1
            else:
                containers += 1
                stack.append(el.get("id"))
    return items, containers, time.monotonic() - t


async def browse_big(location, want):
    """From the description, go down (breadth first) to the first container with at least WANT children, then
    page through all of them (100 per Browse, as TVs do). Returns (items, seconds)."""
    t = time.monotonic()
    _, svc = await cds(location)
    queue = ["0"]
    while queue:
        oid = queue.pop(0)
        didl, _, _ = await browse(svc, oid, 0, 0)
        for el in didl:
            if el.tag.endswith("container"):
                if int(el.get("childCount") or 0) >= want:
                    n = 0
                    async for child in children(svc, el.get("id")):
                        n += child.tag.endswith("item")
                    return n, time.monotonic() - t
                queue.append(el.get("id"))
    return 0, time.monotonic() - t


async def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    timeout = int(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 3
    if cmd == "listen":
        listen(float(argv[2]))
        return 0
    if cmd == "discover":
        locs = await discover(timeout, argv[argv.index("--target") + 1] if "--target" in argv else None)
        for l in locs:
            print(l)
        return 0 if locs else 1
    if cmd == "fetch":
        return await fetch(argv[2], argv[3], argv[4], argv[5] if len(argv) > 5 else None)
    if cmd == "first-url":
        _, svc = await cds(argv[2])
        item = await first_item(svc)
        print(item.find("d:res", NS).text if item is not None else "")
        return 0
    if cmd == "root":
        _, svc = await cds(argv[2])
        didl, _, _ = await browse(svc, "0")
        print(",".join(el.find("dc:title", NS).text for el in didl))
        return 0
    if cmd == "samsung":
        return await samsung(argv[2], argv[3], argv[4])
    if cmd == "walk":
        items, containers, secs = await walk(argv[2])
        print(f"{items} items in {containers} containers, {secs:.3f} s")
        return 0
    if cmd == "bench":
        want = int(argv[argv.index("--items") + 1]) if "--items" in argv else 1000
        locs = await discover(timeout)
        if not locs:
            print(json.dumps({"error": "nothing found"})); return 1
        items, secs = await browse_big(locs[0], want)
        # Time to discover = until the first answer to the M-SEARCH (the search itself waits MX seconds).
        print(json.dumps({"location": locs[0], "items": items,
                          "discover_s": round(FIRST["s"], 3), "browse_s": round(secs, 3),
                          "total_s": round(FIRST["s"] + secs, 3)}))
        return 0
    print(__doc__); return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
