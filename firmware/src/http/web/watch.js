// Hearth web client: browse and play (docs/web.md "Watch"). Runs after app.js and uses its helpers (h, p, show,
// token, me, screens, Lost, Expired). Everything comes from the Plex-compatible API with Accept: application/json
// and the page's token; media plays in the browser's own <video>/<audio> from the part URL (Range, the fast path).
// Addresses: #watch, #watch/s/<section>, #watch/m/<id>[/play], #watch/q/<search words>.
'use strict';
(() => {
  const W = { player: null, photo: null };
  const PAGE = 120; // cards per chunk: a whole number of rows at 3, 4, 6 and 8 columns (app.css /* watch */)
  const hdrs = () => ({ Accept: 'application/json', 'X-Plex-Token': token.get() || '', 'X-Plex-Client-Identifier': clientId, 'X-Plex-Product': 'Hearth Web' });
  const withTok = u => u + (u.includes('?') ? '&' : '?') + 'X-Plex-Token=' + encodeURIComponent(token.get() || '');

  // One request to the Plex API: its MediaContainer, or an Error carrying the server's own sentence.
  async function plex(path, extra) {
    let r;
    try { r = await fetch(path, { headers: { ...hdrs(), ...extra }, cache: 'no-store' }); } catch (e) { throw new Lost('The connection to the server was lost.'); }
    let d = null; try { d = await r.json(); } catch (e) { d = null; }
    const msg = d && d.error ? d.error.message : 'The server answered ' + r.status + ' to ' + path.split('?')[0] + '.';
    if (r.status === 401) throw new Expired(msg);
    if (!r.ok) throw new Error(msg);
    return (d && d.MediaContainer) || {};
  }

  // ---- formatting ----
  const two = n => String(n).padStart(2, '0');
  const clock = s => { s = Math.max(0, Math.floor(s)); const hh = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60); return (hh ? hh + ':' + two(m) : m) + ':' + two(s % 60); };
  const mins = ms => ms >= 3600000 ? Math.floor(ms / 3600000) + ' h ' + Math.round(ms % 3600000 / 60000) + ' min' : ms >= 60000 ? Math.round(ms / 60000) + ' min' : Math.round(ms / 1000) + ' s';
  const size = b => { const u = ['B', 'KB', 'MB', 'GB', 'TB']; let i = 0; while (b >= 1000 && i < 4) { b /= 1000; i++; } return (i ? b.toFixed(1) : b) + ' ' + u[i]; };
  const partOf = m => ((((m.Media || [])[0] || {}).Part) || [])[0];
  const isGroup = m => /\/children$/.test(m.key || '');
  const sub = m => [m.type === 'episode' ? 'S' + m.parentIndex + 'E' + m.index : m.type === 'track' || m.type === 'album' || m.type === 'season' ? m.parentTitle || m.grandparentTitle : null,
    m.year, m.duration ? mins(m.duration) : null, isGroup(m) && m.leafCount != null ? m.leafCount + (m.leafCount === 1 ? ' item' : ' items') : null].filter(Boolean).join(' \u00b7 ');

  function cover(m, cls) {
    const src = m.thumb ? m.thumb : m.type === 'photo' && !isGroup(m) && partOf(m) ? partOf(m).key : null;
    return src ? h('img', { class: cls, src: withTok(src), alt: '', loading: 'lazy', decoding: 'async' })
      : h('span', { class: cls + ' ph ph-' + (m.type || 'x'), 'aria-hidden': 'true' }, (m.title || '?').slice(0, 1).toUpperCase());
  }
  // A cover with its title and facts; in a row an episode is titled by its show.
  function card(m, inRow) {
    const show = inRow && m.type === 'episode';
    const pic = h('span', { class: 'wimg' }, cover(m, 'wcover'));
    const a = h('a', { class: 'wcard t-' + m.type, href: '#watch/m/' + m.ratingKey, 'data-id': m.ratingKey }, pic,
      h('span', { class: 'wt' }, show ? m.grandparentTitle : m.title), h('span', { class: 'ws' }, show ? 'S' + m.parentIndex + 'E' + m.index + ' \u00b7 ' + m.title : sub(m)));
    if (m.viewOffset && m.duration) {
      const bar = h('span', { class: 'wbar', 'aria-hidden': 'true' }, h('span'));
      bar.firstChild.style.width = Math.min(100, 100 * m.viewOffset / m.duration).toFixed(1) + '%';
      pic.append(bar);
    }
    return a;
  }
  const fail = (msg, retry) => h('div', { class: 'box werr', role: 'alert' }, p(msg, 'err'), retry ? h('button', { type: 'button', class: 'quiet', onclick: retry }, 'Try again') : null);
  const crumbs = (...links) => h('div', { class: 'crumbs', role: 'navigation', 'aria-label': 'Where you are' }, h('a', { href: '#watch' }, 'Watch'), links.filter(Boolean).map(([t, href]) => h('a', { href }, t)));
  const done = view => { $('#main').dataset.view = view; };

  // ---- a list that pages as it scrolls, with the DOM kept to a few chunks ----
  // Chunks of PAGE cards; a chunk far off screen keeps its height and drops its cards, and gets them back when it
  // comes near again. The next page is asked for when the sentinel under the grid comes within 800 px.
  function paged(path, label) {
    const grid = h('div', { class: 'wgrid', id: 'grid', 'aria-label': label }), more = h('div', { class: 'more', id: 'more' });
    const el = h('div', null, grid, more);
    let next = 0, total = Infinity, loading = false;
    const keep = new IntersectionObserver(es => {
      for (const e of es) {
        const c = e.target;
        if (e.isIntersecting && !c.firstChild) { c.style.height = ''; c.append(...c.items.map(m => card(m))); }
        else if (!e.isIntersecting && c.firstChild && c.isConnected && c.offsetHeight) { c.style.height = c.offsetHeight + 'px'; c.replaceChildren(); }
      }
    }, { rootMargin: '2500px 0px' });
    const add = items => { for (let i = 0; i < items.length; i += PAGE) { const c = h('div', { class: 'chunk' }); c.items = items.slice(i, i + PAGE); c.append(...c.items.map(m => card(m))); grid.append(c); keep.observe(c); } };
    async function load(first) {
      if (loading || next >= total || !el.isConnected && next) return;
      loading = true; more.replaceChildren(p('Loading\u2026', 'mut'));
      try {
        const mc = await plex(path, { 'X-Plex-Container-Start': String(next), 'X-Plex-Container-Size': String(PAGE) });
        const items = mc.Metadata || [];
        total = mc.totalSize != null ? +mc.totalSize : next + items.length;
        if (items.length < PAGE && mc.totalSize == null) total = next + items.length;
        next += items.length;
        if (!items.length) total = next;
        add(items);
        more.replaceChildren(next < total ? p(next + ' of ' + total + ' shown', 'mut') : !next ? p('Nothing here yet.', 'box') : '');
        el.dataset.total = total;
      } catch (e) {
        if (first && (e instanceof Lost || e instanceof Expired)) throw e;
        if (!handleFatal(e)) more.replaceChildren(fail(e.message, () => { loading = false; load(); }));
        return;
      } finally { loading = false; }
      // Still in view after a short page: observe again, which reports the sentinel's state at once.
      sentinel.unobserve(more); if (next < total) sentinel.observe(more);
    }
    const sentinel = new IntersectionObserver(es => { if (es.some(e => e.isIntersecting)) load(); }, { rootMargin: '800px 0px' });
    return { el, first: load(true).then(() => { if (next < total) sentinel.observe(more); }) };
  }

  // ---- #watch: libraries, rows, search ----
  function searchBox(q) {
    const input = h('input', { id: 'wsearch', type: 'search', 'aria-label': 'Search titles', placeholder: 'Search titles', maxlength: 200, value: q || '', enterkeyhint: 'search' });
    const f = h('form', { class: 'wsearch', role: 'search' }, input, h('button', { type: 'submit' }, 'Search'));
    f.addEventListener('submit', e => { e.preventDefault(); const v = input.value.trim(); if (v) location.hash = '#watch/q/' + encodeURIComponent(v); });
    return f;
  }
  async function row(title, id, path) {
    try {
      const items = (await plex(path)).Metadata || [];
      return items.length ? [h('h3', null, title), h('div', { class: 'wrow', id }, items.map(m => card(m, true)))] : null;
    } catch (e) { if (e instanceof Lost || e instanceof Expired) throw e; return [h('h3', null, title), fail(e.message)]; }
  }
  async function home() {
    const libs = (await plex('/library/sections')).Directory || [];
    const [deck, recent] = await Promise.all([row('Continue watching', 'deck', '/library/onDeck'),
      row('Recently added', 'recent', '/library/recentlyAdded?X-Plex-Container-Start=0&X-Plex-Container-Size=24')]);
    show('Watch', searchBox(),
      libs.length ? h('ul', { class: 'wlibs' }, libs.map(l => h('li', null, h('a', { href: '#watch/s/' + l.key, class: 'wlib' }, l.title))))
        : p(me.role === 'owner' ? 'No libraries yet: add one under Libraries.' : 'No libraries are shared with you yet. Ask the owner of this server to share one.', 'box'),
      deck, recent);
    done('home');
  }
  async function section(id) {
    const libs = (await plex('/library/sections')).Directory || [];
    const lib = libs.find(l => String(l.key) === id);
    if (!lib) throw new Error('There is no library ' + id + ' that you may see.');
    const list = paged('/library/sections/' + encodeURIComponent(id) + '/all', lib.title);
    await list.first;
    show(lib.title, crumbs(), searchBox(), list.el);
    done('section');
  }
  async function search(q) {
    const mc = await plex('/hubs/search?query=' + encodeURIComponent(q) + '&limit=30');
    const hubs = (mc.Hub || []).filter(x => (x.Metadata || x.Directory || []).length);
    show('Search: ' + q, crumbs(), searchBox(q),
      hubs.length ? hubs.map(x => [h('h3', null, x.title), h('div', { class: 'wgrid one' }, (x.Metadata || x.Directory).map(m => card(m)))])
        : p('Nothing you may see has \u201c' + q + '\u201d in its title.', 'box'));
    done('search');
  }

  // ---- #watch/m/<id>: a group's children, a photo, or an item to play ----
  async function item(id, autoplay) {
    const m = ((await plex('/library/metadata/' + encodeURIComponent(id))).Metadata || [])[0];
    if (!m) throw new Error('The server sent no item for ' + id + '.');
    const up = m.parentRatingKey ? [m.parentTitle || 'Up', '#watch/m/' + m.parentRatingKey] : null;
    const lib = [m.librarySectionTitle || 'Library', '#watch/s/' + m.librarySectionID];
    const top = m.grandparentRatingKey ? [m.grandparentTitle, '#watch/m/' + m.grandparentRatingKey] : null;
    if (isGroup(m)) {
      const list = paged('/library/metadata/' + m.ratingKey + '/children', m.title);
      await list.first;
      show(m.title, crumbs(lib, up), h('p', { class: 'mut' }, sub(m)), list.el);
      return done('group');
    }
    if (m.type === 'photo') return photo(m, crumbs(lib, up));
    const part = partOf(m);
    if (!part) throw new Error('The server lists no file for ' + m.title + '.');
    const slot = h('div', { id: 'wplayer' }), detail = h('div', { class: 'wdetail' });
    const md = (m.Media || [])[0] || {};
    const facts = [m.year, m.duration ? mins(m.duration) : null, size(part.size), [md.container, md.videoCodec, md.audioCodec].filter(Boolean).join(' / ')].filter(Boolean).join(' \u00b7 ');
    const dl = h('a', { href: withTok(part.key + '?download=1'), download: '', class: 'wdl' }, 'Download (' + size(part.size) + ')');
    const go = from => { detail.classList.add('playing'); play(m, part, from, slot); slot.scrollIntoView({ block: 'nearest' }); };
    const start = from => { const why = problems(m, part); why.length ? warn(why, from) : go(from); };
    function warn(why, from) {
      slot.replaceChildren(h('div', { class: 'warnbox', id: 'wwarn', role: 'alert' }, why.map(w => p(w)),
        h('div', { class: 'row' }, h('a', { href: withTok(part.key + '?download=1'), download: '', class: 'wbtn' }, 'Download instead'),
          h('button', { type: 'button', class: 'quiet', onclick: () => go(from) }, 'Try to play anyway'))));
    }
    const off = m.viewOffset || 0;
    detail.append(cover(m, 'wposter'), h('div', null,
        m.type === 'episode' ? p('Season ' + m.parentIndex + ', episode ' + m.index, 'mut') : null, p(facts, 'mut'),
        h('div', { class: 'row wact' },
          off ? h('button', { type: 'button', id: 'wresume', onclick: () => start(off) }, 'Resume from ' + clock(off / 1000)) : null,
          h('button', { type: 'button', id: 'wplay', class: off ? 'quiet' : null, onclick: () => start(0) }, off ? 'Play from the start' : 'Play'), dl)));
    show(m.type === 'episode' ? m.grandparentTitle + ': ' + m.title : m.title, crumbs(lib, top, up), slot, detail);
    done('item');
    if (autoplay) start(off);
  }

  // Before playing: would this browser play the file, and does its bitrate fit the caller's remote stream limit?
  const VIDEO = { mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/mp4', mkv: 'video/x-matroska', webm: 'video/webm', avi: 'video/x-msvideo', ts: 'video/mp2t', mpegts: 'video/mp2t', wmv: 'video/x-ms-wmv', ogv: 'video/ogg' };
  const AUDIO = { mp3: 'audio/mpeg', m4a: 'audio/mp4', mp4: 'audio/mp4', aac: 'audio/aac', flac: 'audio/flac', ogg: 'audio/ogg', oga: 'audio/ogg', opus: 'audio/ogg', wav: 'audio/wav', wma: 'audio/x-ms-wma' };
  const CODEC = { h264: 'avc1.640028', hevc: 'hvc1.1.6.L120.90', vp9: 'vp09.00.40.08', vp8: 'vp8', av1: 'av01.0.08M.08', mpeg4: 'mp4v.20.9', aac: 'mp4a.40.2', ac3: 'ac-3', eac3: 'ec-3', opus: 'opus', vorbis: 'vorbis', flac: 'flac' };
  function problems(m, part) {
    const md = (m.Media || [])[0] || {}, audio = m.type === 'track', out = [];
    const c = String(md.container || part.container || '').toLowerCase();
    const type = (audio ? AUDIO : VIDEO)[c];
    const codecs = [md.videoCodec, md.audioCodec].filter(Boolean).filter(x => !(audio && c === 'mp3' && x === 'mp3')).map(x => CODEC[x] || x);
    const asked = type ? type + (codecs.length ? '; codecs="' + codecs.join(', ') + '"' : '') : '';
    if (!asked || !document.createElement(audio ? 'audio' : 'video').canPlayType(asked)) {
      out.push('This browser is unlikely to play this file (' + [c || 'unknown container', md.videoCodec, md.audioCodec].filter(Boolean).join(', ') + '): it says it cannot play that kind. Download it and play it with an app such as VLC.');
    }
    const kbps = md.bitrate || (part.size && m.duration ? Math.round(part.size * 8 / m.duration) : 0);
    if (me && me.remote && me.stream_limit_kbps && kbps > me.stream_limit_kbps) {
      out.push('This file needs about ' + kbps + ' kbit/s, and streams from outside the home network are limited to ' + me.stream_limit_kbps + ' kbit/s here, so it would keep stopping to load. Downloading it takes longer but plays smoothly.');
    }
    return out;
  }

  // ---- the player ----
  function timeline(s, state, sync) {
    const t = Math.round(s.el.currentTime * 1000), d = Math.round((isFinite(s.el.duration) ? s.el.duration * 1000 : s.m.duration) || 0);
    if (state === 'stopped') s.stopped = true;
    const q = 'ratingKey=' + s.m.ratingKey + '&key=' + encodeURIComponent('/library/metadata/' + s.m.ratingKey) + '&time=' + t + '&duration=' + d + '&state=' + state;
    const sent = fetch('/:/timeline?' + q, { headers: hdrs(), cache: 'no-store', keepalive: !!sync }).then(async r => {
      if (r.ok) { s.note.textContent = ''; return; }
      let d2 = null; try { d2 = await r.json(); } catch (e) { d2 = null; }
      s.note.textContent = 'Your place was not saved: ' + (d2 && d2.error ? d2.error.message : 'the server answered ' + r.status + '.');
    }).catch(() => { s.note.textContent = 'Your place was not saved: the connection to the server was lost.'; });
    return sent;
  }
  function stopPlayer() {
    const s = W.player; W.player = null;
    if (s && !s.stopped && s.began) timeline(s, 'stopped', true);
    if (s) s.el.pause();
  }
  async function play(m, part, from, slot) {
    stopPlayer();
    const audio = m.type === 'track';
    const el = h(audio ? 'audio' : 'video', { id: 'wmedia', controls: true, preload: 'auto', playsinline: true, 'aria-label': m.title });
    const t0 = performance.now();
    const subs = (part.Stream || []).filter(x => +x.streamType === 3 && x.key);
    subs.forEach((x, i) => el.append(h('track', { kind: 'subtitles', src: withTok(x.key + '?format=vtt'), srclang: (x.languageTag || x.languageCode || 'und').slice(0, 8), label: x.displayTitle || 'Subtitles', default: i === 0 })));
    const note = h('p', { class: 'err', id: 'wnote', role: 'status' });
    const nextBtn = h('button', { type: 'button', class: 'quiet', id: 'wnext', hidden: true }, 'Next');
    const s = { m, el, note, stopped: false, began: false };
    W.player = s;
    slot.replaceChildren(h('div', { class: audio ? 'wstage audio' : 'wstage' }, el), h('div', { class: 'row wbar2' },
      h('span', { class: 'mut' }, 'Space: play or pause \u00b7 \u2190 \u2192: 10 s \u00b7 f: full screen'), nextBtn), note);
    el.addEventListener('loadedmetadata', () => { if (from) el.currentTime = from / 1000; el.play().catch(() => { note.textContent = 'Press play to start.'; }); }, { once: true });
    el.addEventListener('playing', () => { s.began = true; if (!el.dataset.firstFrameMs) el.dataset.firstFrameMs = (performance.now() - t0).toFixed(0); if (W.player === s) timeline(s, 'playing'); });
    el.addEventListener('pause', () => { if (W.player === s && !el.ended && s.began) timeline(s, 'paused'); });
    el.addEventListener('error', () => { note.textContent = 'The browser could not play this file' + (el.error && el.error.message ? ' (' + el.error.message + ')' : '') + '. Use Download to play it with an app.'; });
    el.src = withTok(part.key);
    later(() => { if (W.player === s && !el.paused) timeline(s, 'playing'); }, 10000);
    for (const t of el.textTracks) t.mode = t === el.textTracks[0] ? 'showing' : 'disabled';
    // The next episode or track: the one after this in its parent's list.
    let next = null;
    if (m.parentRatingKey) {
      plex('/library/metadata/' + m.parentRatingKey + '/children').then(mc => {
        const kids = mc.Metadata || [], i = kids.findIndex(k => String(k.ratingKey) === String(m.ratingKey));
        next = i >= 0 ? kids[i + 1] : null;
        if (next && W.player === s) { nextBtn.textContent = 'Next: ' + next.title; nextBtn.hidden = false; nextBtn.onclick = () => { stopPlayer(); location.hash = '#watch/m/' + next.ratingKey + '/play'; }; }
      }).catch(() => { /* no next button */ });
    }
    el.addEventListener('ended', () => {
      if (W.player !== s) return;
      timeline(s, 'stopped'); W.player = null;
      if (next) location.hash = '#watch/m/' + next.ratingKey + '/play';
    });
  }

  // ---- photos: one at a time, next/previous with keys, buttons or a swipe ----
  async function photo(m, nav) {
    const img = h('img', { class: 'wphoto', id: 'wphoto', alt: m.title });
    const cap = h('p', { class: 'mut', id: 'wcap' });
    const prev = h('button', { type: 'button', class: 'quiet', id: 'wprev', 'aria-label': 'Previous photo' }, '\u2039');
    const nxt = h('button', { type: 'button', class: 'quiet', id: 'wnextp', 'aria-label': 'Next photo' }, '\u203a');
    let list = [m], i = 0;
    if (m.parentRatingKey) {
      try { list = (await plex('/library/metadata/' + m.parentRatingKey + '/children')).Metadata || [m]; } catch (e) { if (e instanceof Lost || e instanceof Expired) throw e; }
      i = Math.max(0, list.findIndex(x => String(x.ratingKey) === String(m.ratingKey)));
    }
    const go = d => {
      const j = i + d; if (j < 0 || j >= list.length) return;
      i = j; draw(); history.replaceState(null, '', '#watch/m/' + list[i].ratingKey);
    };
    function draw() {
      const x = list[i], part = partOf(x);
      img.src = part ? withTok(part.key) : ''; img.alt = x.title; $('#title').textContent = x.title;
      cap.textContent = (i + 1) + ' of ' + list.length + (part ? ' \u00b7 ' + size(part.size) : '');
      prev.disabled = i === 0; nxt.disabled = i === list.length - 1;
      $('#main').dataset.photo = x.ratingKey;
    }
    prev.onclick = () => go(-1); nxt.onclick = () => go(1);
    let x0 = null;
    img.addEventListener('touchstart', e => { x0 = e.touches[0].clientX; }, { passive: true });
    img.addEventListener('touchend', e => { if (x0 == null) return; const dx = e.changedTouches[0].clientX - x0; x0 = null; if (Math.abs(dx) > 40) go(dx < 0 ? 1 : -1); });
    W.photo = go;
    show(m.title, nav, h('div', { class: 'wviewer' }, prev, img, nxt), cap);
    draw();
    done('photo');
  }

  // ---- keys: space, arrows, f for the player; arrows for photos ----
  document.addEventListener('keydown', e => {
    if (e.target.closest && e.target.closest('input,textarea,select') || e.altKey || e.ctrlKey || e.metaKey) return;
    const s = W.player;
    if (s && s.el.isConnected) {
      const el = s.el;
      if (e.key === ' ' || e.key === 'k') el.paused ? el.play() : el.pause();
      else if (e.key === 'ArrowRight') el.currentTime = Math.min(el.duration || 0, el.currentTime + 10);
      else if (e.key === 'ArrowLeft') el.currentTime = Math.max(0, el.currentTime - 10);
      else if (e.key === 'f' && el.tagName === 'VIDEO') document.fullscreenElement ? document.exitFullscreen() : el.requestFullscreen().catch(() => {});
      else return;
      e.preventDefault();
    } else if (W.photo && $('#wphoto')) {
      if (e.key === 'ArrowRight') W.photo(1); else if (e.key === 'ArrowLeft') W.photo(-1); else return;
      e.preventDefault();
    }
  });
  window.addEventListener('hashchange', () => stopPlayer());
  window.addEventListener('pagehide', () => stopPlayer());

  screens.watch = async function watch() {
    stopPlayer(); W.photo = null;
    delete $('#main').dataset.view; delete $('#main').dataset.photo;
    const [, kind, arg, extra] = location.hash.slice(1).split('/');
    if (kind === 's' && arg) return section(decodeURIComponent(arg));
    if (kind === 'm' && arg) return item(decodeURIComponent(arg), extra === 'play');
    if (kind === 'q' && arg) return search(decodeURIComponent(arg));
    return home();
  };
})();
