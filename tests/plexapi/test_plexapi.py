"""End to end with python-plexapi, the reference Plex client (issue 4).

Usage: python test_plexapi.py PATH/TO/hearth
Starts Hearth on 127.0.0.1 with a temporary data folder and a generated media tree (real MP4 and Matroska
files made by ffmpeg), creates libraries through the owner API, then with plexapi: connects with
PlexServer(url, token), lists sections, lists every item of each section, reads metadata (duration, codecs),
downloads parts and compares the bytes, walks show -> season -> episode and artist -> album -> track (MP3,
FLAC and M4A files tagged by ffmpeg, and untagged ones named only by their folders) and photo album -> photo
(one album per folder), and triggers a refresh
that picks up a new file, and keeps the owner's watch state (updateProgress, updateTimeline, markPlayed,
markUnplayed, library and section onDeck). Prints the bytes sent zero-copy vs copied and checks that every downloaded part byte went
zero-copy (plexapi's keep-alive connections start with API requests). Exit status 0 only if every check passed.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from plexapi.server import PlexServer


def listening_port(line):
    """The port in Hearth's "Hearth X is running. Set it up at http://127.0.0.1:PORT/web/" line (as
    firmware/tests/common does): Hearth listens on port 0 and the kernel picks, so no port picked here and released
    before Hearth binds it can be taken by another program meanwhile."""
    m = re.search(r" Set it up at http://127\.0\.0\.1:(\d+)/", line)
    assert m, f"no port in Hearth's line {line!r}"
    return int(m.group(1))


TOKEN = {"value": ""}


def api(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if TOKEN["value"]:
        headers["X-Plex-Token"] = TOKEN["value"]
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def ffmpeg(out, seconds, video, audio):
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=160x120:rate=10",
         "-f", "lavfi", "-i", f"sine=duration={seconds}",
         "-c:v", video, "-c:a", audio, "-shortest", out],
        check=True)


def ffmpeg_audio(out, seconds, codec, tags):
    """An audio file with these tags (ffmpeg writes ID3v2 for MP3, Vorbis comments for FLAC, ilst for M4A)."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    meta = []
    for k, v in tags.items():
        meta += ["-metadata", f"{k}={v}"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=duration={seconds}",
         "-map_metadata", "-1", "-c:a", codec, *meta, out],
        check=True)


def wait_scanned(base, lib, items):
    deadline = time.time() + 30
    while time.time() < deadline:
        libs = api(base, "GET", "/api/v1/libraries")["libraries"]
        l = next(x for x in libs if x["id"] == lib)
        if l["items"] == items and not l["progress"]["running"]:
            return l
        time.sleep(0.1)
    raise AssertionError(f"library {lib} never reached {items} items: {l}")


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="hearth-plexapi-")
    media = os.path.join(work, "media")
    films = os.path.join(media, "films")
    tv = os.path.join(media, "tv")
    os.makedirs(films)
    os.makedirs(os.path.join(tv, "The Show"))
    ffmpeg(os.path.join(films, "Big.Buck.Bunny.2008.mp4"), 3, "libx264", "aac")
    ffmpeg(os.path.join(films, "Metropolis (1927).mkv"), 2, "libx264", "libopus")
    ffmpeg(os.path.join(tv, "The Show", "The.Show.S01E01.mkv"), 1, "libx264", "aac")
    ffmpeg(os.path.join(tv, "The Show", "The.Show.S01E02.mp4"), 1, "libx264", "aac")
    ffmpeg(os.path.join(tv, "The Show", "The Show 2x01.mkv"), 1, "libx264", "aac")
    music = os.path.join(media, "music")
    # Tagged files in a folder that says nothing: artist, album, title and number come from the tags.
    ffmpeg_audio(os.path.join(music, "incoming", "t1.mp3"), 2, "libmp3lame",
                 {"title": "Sour Times", "artist": "Portishead", "album": "Dummy", "track": "2", "date": "1994"})
    ffmpeg_audio(os.path.join(music, "incoming", "t2.flac"), 3, "flac",
                 {"title": "Wandering Star", "artist": "Portishead", "album": "Dummy", "track": "3/11"})
    ffmpeg_audio(os.path.join(music, "incoming", "t3.m4a"), 1, "aac",
                 {"title": "Mysterons", "artist": "Portishead", "album": "Dummy", "track": "1"})
    # Untagged: Artist/Album/NN - Title.
    ffmpeg_audio(os.path.join(music, "The Band", "First Album", "01 - Opening.flac"), 1, "flac", {})
    ffmpeg_audio(os.path.join(music, "The Band", "First Album", "02 - Closing.mp3"), 1, "libmp3lame", {})
    photos = os.path.join(media, "photos")
    for rel in ("2024/Summer/beach.jpg", "2024/Summer/dunes.jpg", "Family/cake.jpg", "loose.jpg"):
        os.makedirs(os.path.dirname(os.path.join(photos, rel)), exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48",
                        "-frames:v", "1", os.path.join(photos, rel)], check=True)

    data = os.path.join(work, "data")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert "is running" in line, line
        base = f"http://127.0.0.1:{listening_port(line)}"
        # Claim the server from the LAN (loopback); the owner's token is what the tools use from then on.
        TOKEN["value"] = api(base, "POST", "/api/v1/claim", {"name": "Owner", "password": "films and shows"})["token"]
        api(base, "POST", "/api/v1/libraries", {"name": "Films", "kind": "movies", "folders": [films]})
        api(base, "POST", "/api/v1/libraries", {"name": "TV", "kind": "shows", "folders": [tv]})
        api(base, "POST", "/api/v1/libraries", {"name": "Music", "kind": "music", "folders": [music]})
        api(base, "POST", "/api/v1/libraries", {"name": "Photos", "kind": "photos", "folders": [photos]})
        wait_scanned(base, 1, 2)
        wait_scanned(base, 2, 3)
        wait_scanned(base, 3, 5)
        wait_scanned(base, 4, 4)

        # A wrong token is refused before anything is listed.
        try:
            PlexServer(base, "not-a-token").library.sections()
            raise AssertionError("a wrong token must be refused")
        except Exception as e:
            assert "401" in str(e) or "nauthorized" in str(e), e
        plex = PlexServer(base, TOKEN["value"])
        ident = json.loads(urllib.request.urlopen(
            urllib.request.Request(base + "/identity", headers={"Accept": "application/json"})).read())
        assert plex.machineIdentifier == ident["MediaContainer"]["machineIdentifier"], plex.machineIdentifier
        sections = {s.title: s for s in plex.library.sections()}
        assert set(sections) == {"Films", "TV", "Music", "Photos"}, sections
        assert sections["Films"].type == "movie" and sections["TV"].type == "show"
        assert sections["Music"].type == "artist"
        assert sections["Films"].locations == [films], sections["Films"].locations

        movies = sections["Films"].all()
        assert sorted(m.title for m in movies) == ["Big Buck Bunny", "Metropolis"], [m.title for m in movies]
        on_disk = {"Big Buck Bunny": "Big.Buck.Bunny.2008.mp4", "Metropolis": "Metropolis (1927).mkv"}
        for m in movies:
            item = plex.fetchItem(m.ratingKey)
            assert item.title == m.title
            assert item.year == {"Big Buck Bunny": 2008, "Metropolis": 1927}[m.title], item.year
            media = item.media[0]
            part = media.parts[0]
            src = os.path.join(films, on_disk[m.title])
            assert part.file == src and part.size == os.path.getsize(src), (part.file, part.size)
            assert media.videoCodec == "h264", media.videoCodec
            assert media.audioCodec == ("aac" if m.title == "Big Buck Bunny" else "opus"), media.audioCodec
            want_ms = 3000 if m.title == "Big Buck Bunny" else 2000
            assert abs(item.duration - want_ms) < 300, (m.title, item.duration)
            out = os.path.join(work, "dl-" + m.ratingKey.__str__())
            os.makedirs(out)
            paths = item.download(savepath=out)
            assert len(paths) == 1, paths
            with open(paths[0], "rb") as a, open(src, "rb") as b:
                assert a.read() == b.read(), f"downloaded bytes differ for {m.title}"

        shows = sections["TV"].all()
        assert [s.title for s in shows] == ["The Show"], [s.title for s in shows]
        show = shows[0]
        seasons = show.seasons()
        assert [s.index for s in seasons] == [1, 2], [s.index for s in seasons]
        eps = seasons[0].episodes()
        assert [(e.seasonNumber, e.index) for e in eps] == [(1, 1), (1, 2)], [(e.parentIndex, e.index) for e in eps]
        assert eps[0].grandparentTitle == "The Show"
        assert len(show.episodes()) == 3
        ep = plex.fetchItem(eps[1].ratingKey)
        out = os.path.join(work, "dl-ep")
        os.makedirs(out)
        p = ep.download(savepath=out)[0]
        with open(p, "rb") as a, open(os.path.join(tv, "The Show", "The.Show.S01E02.mp4"), "rb") as b:
            assert a.read() == b.read(), "episode bytes differ"

        # Music: artist -> album -> track, as plexapi walks it.
        artists = sections["Music"].all()
        assert [a.title for a in artists] == ["Portishead", "The Band"], [a.title for a in artists]
        assert [a.TYPE for a in artists] == ["artist", "artist"]
        dummy = artists[0].albums()
        assert [a.title for a in dummy] == ["Dummy"], [a.title for a in dummy]
        assert dummy[0].parentTitle == "Portishead"
        tracks = dummy[0].tracks()
        got = [(t.index, t.title, t.parentTitle, t.grandparentTitle) for t in tracks]
        assert got == [(1, "Mysterons", "Dummy", "Portishead"), (2, "Sour Times", "Dummy", "Portishead"),
                       (3, "Wandering Star", "Dummy", "Portishead")], got
        codecs = [t.media[0].audioCodec for t in tracks]
        assert codecs == ["aac", "mp3", "flac"], codecs
        for t, secs in zip(tracks, (1, 2, 3)):
            assert t.duration and abs(t.duration - secs * 1000) < 200, (t.title, t.duration)
        assert [t.title for t in artists[1].tracks()] == ["Opening", "Closing"], "allLeaves of an artist"
        band = artists[1].albums()
        assert [(a.title, a.leafCount) for a in band] == [("First Album", 2)], [(a.title, a.leafCount) for a in band]
        all_albums = sections["Music"].albums()
        assert sorted(a.title for a in all_albums) == ["Dummy", "First Album"], [a.title for a in all_albums]
        assert len(sections["Music"].searchTracks()) == 5
        song = plex.fetchItem(tracks[2].ratingKey)
        assert song.album().title == "Dummy" and song.artist().title == "Portishead"
        out = os.path.join(work, "dl-track")
        os.makedirs(out)
        p = song.download(savepath=out)[0]
        with open(p, "rb") as a, open(os.path.join(music, "incoming", "t2.flac"), "rb") as b:
            assert a.read() == b.read(), "track bytes differ"

        # Photos: one album per folder below the library folder.
        albums = sections["Photos"].all()
        assert [a.title for a in albums] == ["2024/Summer", "Family"], [a.title for a in albums]
        assert [p.title for p in albums[0].photos()] == ["beach", "dunes"], [p.title for p in albums[0].photos()]
        assert sorted(p.title for p in sections["Photos"].searchPhotos()) == ["beach", "cake", "dunes", "loose"]
        cake = albums[1].photos()[0]
        assert cake.parentTitle == "Family", cake.parentTitle
        out = os.path.join(work, "dl-photo")
        os.makedirs(out)
        p = plex.fetchItem(cake.ratingKey).download(savepath=out)[0]
        with open(p, "rb") as a, open(os.path.join(photos, "Family", "cake.jpg"), "rb") as b:
            assert a.read() == b.read(), "photo bytes differ"

        # Refresh picks up a new file (the watcher may be faster; either way the item must appear).
        shutil.copy(os.path.join(films, "Big.Buck.Bunny.2008.mp4"), os.path.join(films, "Sintel.2010.mp4"))
        sections["Films"].update()
        deadline = time.time() + 20
        while time.time() < deadline:
            titles = sorted(m.title for m in plex.library.sectionByID(1).all())
            if "Sintel" in titles:
                break
            time.sleep(0.2)
        assert titles == ["Big Buck Bunny", "Metropolis", "Sintel"], titles
        # Ids stay: the old items kept theirs.
        again = {m.title: m.ratingKey for m in plex.library.sectionByID(1).all()}
        assert again["Big Buck Bunny"] == next(m.ratingKey for m in movies if m.title == "Big Buck Bunny")

        # Filters Hearth honours narrow the list; plexapi reads the section's filter Meta to build them.
        assert [m.title for m in sections["Films"].search(title="metro")] == ["Metropolis"]
        assert [t.title for t in sections["Music"].searchTracks(filters={"album.id": dummy[0].ratingKey})] == \
            ["Mysterons", "Sour Times", "Wandering Star"]

        check_search_and_recently_added(plex, sections)

        # What Hearth does not build says so instead of answering wrongly.
        def status_of(call):
            try:
                call()
            except Exception as e:  # plexapi raises BadRequest/NotFound etc. with the status in the text
                return str(e)
            return "no error"
        said = status_of(lambda: plex.query("/library/sections/1/refresh", method=plex._session.delete))
        assert said.startswith("(501)"), "cancel refresh should be 501: " + said
        said = status_of(lambda: plex.query("/library/sections/1/all?year=1927"))
        assert said.startswith("(501)") and "cannot filter" in said, "an unknown filter should be 501: " + said

        # Watch state (issue 20 part 4): the owner's own, through plexapi's calls. Big Buck Bunny is 3 s long.
        bunny = plex.fetchItem(again["Big Buck Bunny"])
        assert not bunny.isPlayed and not bunny.viewOffset, (bunny.viewCount, bunny.viewOffset)
        bunny.updateProgress(1200)
        bunny.reload()
        assert bunny.viewOffset == 1200 and not bunny.isPlayed, (bunny.viewOffset, bunny.viewCount)
        deck = plex.library.onDeck()
        assert [(d.title, d.viewOffset) for d in deck] == [("Big Buck Bunny", 1200)], [(d.title, d.viewOffset) for d in deck]
        bunny.updateTimeline(1500, state="playing", duration=3000)
        bunny.reload()
        assert bunny.viewOffset == 1500, bunny.viewOffset
        bunny.updateTimeline(2800, state="stopped")  # duration = the item's; past 90 %: watched
        bunny.reload()
        assert bunny.isPlayed and bunny.viewCount == 1 and not bunny.viewOffset, (bunny.viewCount, bunny.viewOffset)
        assert bunny.lastViewedAt is not None
        assert plex.library.onDeck() == [], "a watched film leaves the deck"
        bunny.markUnplayed()
        bunny.reload()
        assert not bunny.isPlayed, bunny.viewCount
        eps[0].markPlayed()
        assert plex.fetchItem(eps[0].ratingKey).isPlayed
        deck = plex.library.onDeck()
        assert [d.ratingKey for d in deck] == [eps[1].ratingKey], "the next episode is on deck: %r" % deck
        assert [d.ratingKey for d in sections["TV"].onDeck()] == [eps[1].ratingKey]
        assert sections["Films"].onDeck() == []
        # Plex's newer name for the row (PlexServer.continueWatching, LibrarySection.continueWatching).
        assert [d.ratingKey for d in plex.continueWatching()] == [eps[1].ratingKey]
        assert [d.ratingKey for d in sections["TV"].continueWatching()] == [eps[1].ratingKey]
        assert sections["Films"].continueWatching() == []
        # The home screen's rows (Library.hubs, LibrarySection.hubs): the deck first, then what is new.
        home = plex.library.hubs()
        assert home[0].hubIdentifier == "home.continue", [h.hubIdentifier for h in home]
        assert [i.ratingKey for i in home[0].items()] == [eps[1].ratingKey]
        films_new = [h for h in home if h.hubIdentifier == "home.movie.recent"]
        assert films_new and {i.ratingKey for i in films_new[0].items()} >= {bunny.ratingKey}, [h.hubIdentifier for h in home]
        tv_hubs = {h.hubIdentifier: h for h in sections["TV"].hubs()}
        assert [i.ratingKey for i in tv_hubs["show.inprogress"].items()] == [eps[1].ratingKey], list(tv_hubs)
        assert tv_hubs["show.recentlyadded"].items(), list(tv_hubs)
        show.reload()
        assert show.viewedLeafCount == 1 and not show.isPlayed, show.viewedLeafCount
        show.markPlayed()
        show.reload()
        assert show.isPlayed, (show.viewedLeafCount, show.leafCount)
        print("plexapi: watch state OK (updateProgress, updateTimeline, markPlayed, markUnplayed, onDeck, continueWatching, hubs)")

        stats = api(base, "GET", "/api/v1/streams")
        print(f"plexapi: OK; bytes zero-copy {stats['zeroCopyBytes']}, copied {stats['copiedBytes']}")
        # plexapi's session reuses connections that began with API requests; its part downloads must still
        # go out by sendfile (every byte of the five downloaded parts, none copied).
        downloaded = sum(os.path.getsize(os.path.join(films, f)) for f in on_disk.values()) + \
            os.path.getsize(os.path.join(tv, "The Show", "The.Show.S01E02.mp4")) + \
            os.path.getsize(os.path.join(music, "incoming", "t2.flac")) + \
            os.path.getsize(os.path.join(photos, "Family", "cake.jpg"))
        assert stats["copiedBytes"] == 0, stats
        assert stats["zeroCopyBytes"] == downloaded, (stats, downloaded)
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def check_search_and_recently_added(plex, sections):
    """Search and "Recently added" (issue 20) as python-plexapi calls them: plex.search() reads /hubs/search
    (Hub elements), library.search() reads /library/all, library.recentlyAdded() /library/recentlyAdded. Runs
    after the Films refresh added Sintel, so Sintel is the newest item."""
    from plexapi.library import Hub

    def found(query, **kw):
        return [(type(r).__name__, r.title) for r in plex.search(query, **kw)]

    assert found("METRO") == [("Movie", "Metropolis")], found("METRO")
    assert found("portis") == [("Artist", "Portishead")], found("portis")
    assert found("the show") == [("Show", "The Show")], found("the show")
    assert found("star") == [("Track", "Wandering Star")], found("star")
    dummy = plex.search("dum", mediatype="album")
    assert [(a.title, a.parentTitle) for a in dummy] == [("Dummy", "Portishead")], dummy
    assert found("summer") == [("Photoalbum", "2024/Summer")], found("summer")
    assert found("no such title anywhere") == []
    # One section only (the music section has no film); by hub (artist, album, track), best match first.
    in_music = [r.title for r in sections["Music"].hubSearch("s")]
    assert in_music == ["Portishead", "First Album", "Sour Times", "Wandering Star", "Closing", "Mysterons"], in_music
    # A hub that holds less than it matched says so; its items() fetches the whole list from its key.
    hubs = {h.type: h for h in plex.fetchItems("/hubs/search?query=e&limit=1", cls=Hub)}
    films = hubs["movie"]
    assert films.size == 1 and films.more, (films.size, films.more)
    assert [m.title for m in films.items()] == ["Metropolis", "Sintel"], films.items()

    assert [m.title for m in plex.library.search(title="metro")] == ["Metropolis"]
    assert [t.title for t in plex.library.search(title="STAR", libtype="track")] == ["Wandering Star"]

    recent = plex.library.recentlyAdded()
    got = [(type(r).__name__, r.title) for r in recent]
    assert got[0] == ("Movie", "Sintel"), got
    assert sorted(got) == sorted([
        ("Movie", "Sintel"), ("Movie", "Big Buck Bunny"), ("Movie", "Metropolis"),
        ("Season", "Season 1"), ("Season", "Season 2"), ("Album", "Dummy"), ("Album", "First Album"),
        ("Photoalbum", "2024/Summer"), ("Photoalbum", "Family"), ("Photo", "loose")]), got
    # A section's recentlyAdded() asks its listing for sort=movie.addedAt:desc (checked against the Meta sorts).
    newest = [m.title for m in sections["Films"].recentlyAdded()]
    assert newest[0] == "Sintel" and sorted(newest) == ["Big Buck Bunny", "Metropolis", "Sintel"], newest
    added = [r.addedAt for r in recent]
    assert added == sorted(added, reverse=True), added
    # Paged as plexapi pages: two at a time gives the same list.
    again = plex.fetchItems("/library/recentlyAdded", container_size=2)
    assert [r.title for r in again] == [r.title for r in recent]
    print(f"plexapi search and recently added: OK ({len(recent)} recently added)")


def gdm_scan(binary):
    """GDM (issue 20 part 5): plexapi.gdm.GDM().scan() finds Hearth by multicast on 239.0.0.250:32414, with the
    server's id and HTTP port; not before the claim, and not once the source is outside the LAN networks. Runs in a
    network namespace of its own (unshare -n; needs root): there a veth pair carries the group (loopback has no
    multicast route) and no other program's 32414 (a Plex server, other tests' servers) can answer. Hearth listens
    on every address, as on the box: GDM joins the group on every LAN interface."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        print("plexapi GDM scan: SKIPPED (needs root, unshare and ip for a network namespace)")
        return 0
    return subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--gdm-in-netns", binary]).returncode


def gdm_in_netns(binary):
    from plexapi.gdm import GDM
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "link", "add", "gdm0", "type", "veth", "peer", "name", "gdm1"],
                ["ip", "addr", "add", "10.77.0.1/24", "dev", "gdm0"],
                ["ip", "addr", "add", "10.88.0.1/24", "dev", "gdm1"],
                ["ip", "link", "set", "gdm1", "up"],
                ["ip", "link", "set", "gdm0", "up", "multicast", "on"],
                ["ip", "route", "add", "239.0.0.0/8", "dev", "gdm0"]):
        subprocess.run(cmd, check=True)
    work = tempfile.mkdtemp(prefix="hearth-gdm-")
    proc = subprocess.Popen([binary, "--listen", "0.0.0.0:0", "--data-dir", os.path.join(work, "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r":(\d+)/web/", line)
        assert m, f"no port in Hearth's line {line!r}"
        port = m.group(1)
        base = f"http://127.0.0.1:{port}"
        scan = GDM()
        scan.scan()
        assert scan.entries == [], f"an unclaimed server answered GDM: {scan.entries}"
        TOKEN["value"] = api(base, "POST", "/api/v1/claim", {"name": "Owner", "password": "films and shows"})["token"]
        deadline = time.time() + 10
        while not scan.entries and time.time() < deadline:
            scan.scan()
        assert len(scan.entries) == 1, f"GDM scan after the claim: {scan.entries}"
        found = scan.entries[0]
        ident = json.loads(urllib.request.urlopen(
            urllib.request.Request(base + "/identity", headers={"Accept": "application/json"})).read())
        data = found["data"]
        assert data["Content-Type"] == "plex/media-server", data
        assert data["Resource-Identifier"] == ident["MediaContainer"]["machineIdentifier"], data
        assert data["Port"] == port, data
        assert found["from"] == ("10.77.0.1", 32414), found
        # What a client does next: connect to the address and port the scan found.
        plex = PlexServer(f"http://{found['from'][0]}:{data['Port']}", TOKEN["value"])
        assert plex.machineIdentifier == data["Resource-Identifier"]
        print(f"plexapi GDM scan: found {data['Name']!r} at {found['from'][0]}:{data['Port']}")
        # The owner's LAN networks leave 10.77.0.0/24 out: the same scan finds nothing.
        api(base, "PUT", "/api/v1/settings/network", {"lan_networks": ["192.0.2.0/24"]})
        # (One answer so far: this source has three more before its rate holds it back, so silence is the rule's.)
        scan.scan()
        assert scan.entries == [], f"a source outside the LAN networks was answered: {scan.entries}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # --listen on the other end of the pair: GDM stays on that interface, and the group's searches on gdm0 go
    # unanswered.
    proc = subprocess.Popen([binary, "--listen", "10.88.0.1:0", "--data-dir", os.path.join(work, "data2")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        base = "http://10.88.0.1:" + re.search(r":(\d+)/web/", line).group(1)
        TOKEN["value"] = api(base, "POST", "/api/v1/claim", {"name": "Owner", "password": "films and shows"})["token"]
        # On, there: a unicast search to 10.88.0.1:32414 is answered ...
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.settimeout(0.3)
        deadline, answer = time.time() + 10, b""
        while not answer and time.time() < deadline:
            probe.sendto(b"M-SEARCH * HTTP/1.0", ("10.88.0.1", 32414))
            try:
                answer = probe.recvfrom(1024)[0]
            except socket.timeout:
                pass
        probe.close()
        assert answer.startswith(b"HTTP/1.0 200 OK"), answer
        # ... and the multicast scan, which leaves by gdm0, finds nothing.
        scan.scan()
        scan.scan()
        assert scan.entries == [], f"GDM bound to 10.88.0.1 answered a search on another interface: {scan.entries}"
        print("plexapi GDM scan: OK (nothing before the claim, nothing to a source outside the LAN, "
              "nothing on an interface --listen does not name)")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "--gdm-in-netns":
        sys.exit(gdm_in_netns(sys.argv[2]))
    sys.exit(main() or gdm_scan(sys.argv[1]))
