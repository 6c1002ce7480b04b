// The chiploc dashboard page (docs/DASHBOARD.md, "The page"): a map of the
// landmarks and chips over the imported borders, the open alerts, and one
// chip's page, all read from the JSON API of `chiploc dashboard`.
//
// The page runs under a Content-Security-Policy without 'unsafe-inline' or
// 'unsafe-eval', and serials, operator names, landmark names and alert
// details are chosen by operators: every string from the API reaches the
// document through textContent or setAttribute (data-* attributes and
// '#/chip/...' links only), never through HTML parsing. Leaflet's tooltips
// are given DOM nodes, never strings.
'use strict';

(function () {
  // How often the page reloads what it shows: the dashboard's --refresh-s,
  // which /api/summary carries as refresh_s; 30 s until it is known.
  let refreshMs = 30000;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // One verdict per chip for its colour: never attested (NONE), else the
  // consistency when it is not CONSISTENT, else SITE_EXCLUDED when the
  // measurements exclude the declared site, else the region verdict.
  const VERDICTS = {
    INSIDE: { color: '#1a7f37', fill: '#2da44e', weight: 2,
      text: 'inside the allowed region' },
    OUTSIDE: { color: '#a40e26', fill: '#e5484d', weight: 2,
      text: 'outside the allowed region' },
    SITE_EXCLUDED: { color: '#d1242f', fill: '#ffe2e0', weight: 4,
      text: 'measurements exclude the declared site' },
    UNDETERMINED: { color: '#9a6700', fill: '#f5a623', weight: 2,
      text: 'may be inside or outside' },
    INCONSISTENT: { color: '#6639ba', fill: '#a371f7', weight: 2,
      text: 'measurements contradict each other' },
    INSUFFICIENT: { color: '#57606a', fill: '#8c959f', weight: 2,
      text: 'too few landmarks' },
    UNKNOWN: { color: '#57606a', fill: '#8c959f', weight: 2,
      text: 'no region verdict' },
    NONE: { color: '#8c959f', fill: '#ffffff', weight: 2, text: 'never attested' },
  };
  // The verdict filter: any of a chip's three verdicts, as `chiploc chip
  // list --verdict` filters.
  const VERDICT_FILTER = ['INSIDE', 'OUTSIDE', 'UNDETERMINED', 'SITE_EXCLUDED',
    'SITE_CONSISTENT', 'CONSISTENT', 'INSUFFICIENT', 'INCONSISTENT', 'UNKNOWN', 'NONE'];
  const LANDMARK_STATES = {
    healthy: { color: '#0b3d91', fill: '#3e7bfa' },
    stale: { color: '#7d4e00', fill: '#f5c542' },
    retired: { color: '#57606a', fill: '#d0d7de' },
    revoked: { color: '#000000', fill: '#57606a' },
  };

  function chipVerdict(c) {
    if (!c.consistency) return 'NONE';
    if (c.consistency !== 'CONSISTENT') return VERDICTS[c.consistency] ? c.consistency : 'UNKNOWN';
    if (c.site_verdict === 'SITE_EXCLUDED') return 'SITE_EXCLUDED';
    return VERDICTS[c.region_verdict] ? c.region_verdict : 'UNKNOWN';
  }

  // ---- small DOM helpers: text only --------------------------------------

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number'
        ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const c of children) e.appendChild(c);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function chipHref(serial) { return '#/chip/' + encodeURIComponent(serial); }

  function chipLink(serial) { return el('a', { href: chipHref(serial) }, serial); }

  function isoText(t) { return t ? String(t).replace('T', ' ').replace(/Z$/, '') : '–'; }

  function num(v, digits) {
    return typeof v === 'number' && isFinite(v) ? v.toFixed(digits) : '–';
  }

  function swatch(style, kind) {
    const r = kind === 'landmark' ? 4 : 6;
    return svg('svg', { width: 18, height: 18, viewBox: '0 0 18 18', 'aria-hidden': 'true' },
      svg('circle', { cx: 9, cy: 9, r: r, fill: style.fill, stroke: style.color,
        'stroke-width': Math.min(style.weight || 2, 3) }));
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) {
      const e = new Error(path + ': HTTP ' + r.status);
      e.status = r.status;
      throw e;
    }
    return r.json();
  }

  // ---- the map -----------------------------------------------------------

  const state = {
    map: null,
    borders: null,
    regionLayer: null,
    landmarkLayer: null,
    chipLayer: null,
    chipMarkers: [],
    chips: [],
    landmarks: [],
    alerts: [],
    regions: [],
    fitted: false,
    key: null,
    updated: null,
  };

  function initMap() {
    const map = L.map('map', { worldCopyJump: true, minZoom: 1, preferCanvas: false });
    map.attributionControl.setPrefix('Leaflet');
    map.setView([20, 0], 2);
    state.map = map;
    // The borders are drawn on a canvas: many polygons, none interactive.
    state.borders = L.geoJSON(null, {
      renderer: L.canvas({ padding: 0.5 }),
      interactive: false,
      style: { color: '#8c9aa8', weight: 1, fillColor: '#eef2e6', fillOpacity: 1 },
    }).addTo(map);
    state.regionLayer = L.layerGroup().addTo(map);
    state.landmarkLayer = L.layerGroup().addTo(map);
    state.chipLayer = L.layerGroup().addTo(map);
    map.on('zoomend', spreadChips);
  }

  function escapeHtml(t) {
    return t.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]);
  }

  async function loadBorders() {
    try {
      const fc = await getJSON('/api/borders.geojson');
      state.borders.addData(fc);
      state.borders.bringToBack();
      // Leaflet writes attributions as HTML: escape the server's text.
      if (typeof fc.attribution === 'string' && fc.attribution) {
        state.map.attributionControl.addAttribution(escapeHtml(fc.attribution));
      }
    } catch (e) {
      setUpdated('error', 'Borders could not be loaded: ' + e.message);
    }
  }

  function filters() {
    return {
      operator: $('f-operator').value,
      verdict: $('f-verdict').value,
      country: $('f-country').value,
    };
  }

  function chipMatches(c, f) {
    if (f.operator && c.operator !== f.operator) return false;
    if (f.country && !(Array.isArray(c.allowed) && c.allowed.includes(f.country))) return false;
    if (f.verdict) {
      const vs = c.consistency ? [c.consistency, c.site_verdict, c.region_verdict] : ['NONE'];
      if (!vs.includes(f.verdict) && chipVerdict(c) !== f.verdict) return false;
    }
    return true;
  }

  // Replaces a select's options by values (text and value alike), keeping
  // the selection when the value still exists.
  function setOptions(select, values) {
    const keep = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const v of values) select.appendChild(el('option', null, v)).value = v;
    select.value = values.includes(keep) ? keep : '';
  }

  function chipTooltip(c, verdict) {
    return el('div', { class: 'tip' },
      el('strong', null, c.serial),
      el('div', null, 'operator: ', c.operator || '–'),
      el('div', null, 'verdict: ', verdict, ' (', VERDICTS[verdict].text, ')'),
      c.radius_km !== null && c.radius_km !== undefined
        ? el('div', null, 'radius: ', num(c.radius_km, 1), ' km') : null,
      el('div', null, 'round end: ', isoText(c.round_end)),
      c.open_alerts && c.open_alerts.length
        ? el('div', { class: 'tip-alerts' }, 'open alerts: ', c.open_alerts.join(', ')) : null);
  }

  function landmarkTooltip(l) {
    return el('div', { class: 'tip' },
      el('strong', null, l.name),
      el('div', null, 'landmark, ', l.state),
      el('div', null, 'last measured: ', isoText(l.last_measured)),
      l.open_alerts && l.open_alerts.length
        ? el('div', { class: 'tip-alerts' }, 'open alerts: ', l.open_alerts.join(', ')) : null);
  }

  function drawMap() {
    const f = filters();
    const shown = state.chips.filter((c) => chipMatches(c, f));
    const serials = new Set(shown.map((c) => c.serial));
    const byVerdict = new Map(shown.map((c) => [c.serial, chipVerdict(c)]));

    state.regionLayer.clearLayers();
    for (const feature of state.regions) {
      const serial = feature.properties.serial;
      if (!serials.has(serial)) continue;
      const s = VERDICTS[byVerdict.get(serial)];
      const layer = L.geoJSON(feature, {
        interactive: false,
        style: { color: s.color, weight: 1, fillColor: s.fill, fillOpacity: 0.15,
          className: 'chip-region' },
      });
      state.regionLayer.addLayer(layer);
      layer.eachLayer((p) => {
        const e = p.getElement();
        if (e) e.setAttribute('data-serial', serial);
      });
    }

    state.landmarkLayer.clearLayers();
    for (const l of state.landmarks) {
      if (typeof l.lat !== 'number' || typeof l.lon !== 'number') continue;
      const s = LANDMARK_STATES[l.state] || LANDMARK_STATES.stale;
      const m = L.circleMarker([l.lat, l.lon], {
        radius: 5, color: s.color, fillColor: s.fill, fillOpacity: 1, weight: 2,
        className: 'landmark-marker',
      });
      m.bindTooltip(landmarkTooltip(l));
      state.landmarkLayer.addLayer(m);
      m.getElement().setAttribute('data-name', l.name);
      m.getElement().setAttribute('data-state', l.state);
    }

    state.chipLayer.clearLayers();
    state.chipMarkers = [];
    for (const c of shown) {
      if (typeof c.site_lat !== 'number' || typeof c.site_lon !== 'number') continue;
      const verdict = byVerdict.get(c.serial);
      const s = VERDICTS[verdict];
      const m = L.circleMarker([c.site_lat, c.site_lon], {
        radius: 7, color: s.color, fillColor: s.fill, fillOpacity: 0.95, weight: s.weight,
        dashArray: c.active === false ? '3 3' : null,
        className: 'chip-marker verdict-' + verdict,
      });
      m.bindTooltip(chipTooltip(c, verdict));
      m.on('click', () => { location.hash = chipHref(c.serial); });
      state.chipLayer.addLayer(m);
      state.chipMarkers.push({ marker: m, site: L.latLng(c.site_lat, c.site_lon) });
      const e = m.getElement();
      e.setAttribute('data-serial', c.serial);
      e.setAttribute('data-verdict', verdict);
      e.setAttribute('data-operator', c.operator || '');
    }
    $('map').setAttribute('data-chips', String(shown.length));
    spreadChips();

    drawAlerts(f);
    fitOnce();
  }

  // A datacenter holds many chips: the markers of the chips declared at one
  // site are spread on a ring around it, a fixed number of pixels wide at
  // every zoom, so that each can be seen, hovered and clicked.
  function spreadChips() {
    const groups = new Map();
    for (const cm of state.chipMarkers) {
      const k = cm.site.lat + ',' + cm.site.lng;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(cm);
    }
    for (const g of groups.values()) {
      if (g.length === 1) {
        g[0].marker.setLatLng(g[0].site);
        continue;
      }
      const centre = state.map.latLngToLayerPoint(g[0].site);
      const r = Math.max(14, 3 * g.length);
      g.forEach((cm, i) => {
        const a = 2 * Math.PI * i / g.length - Math.PI / 2;
        cm.marker.setLatLng(state.map.layerPointToLatLng(
          centre.add(L.point(r * Math.cos(a), r * Math.sin(a)))));
      });
    }
  }

  // The first time there is something to show, the view fits it; later
  // refreshes keep the reader's view.
  function fitOnce() {
    if (state.fitted) return;
    const pts = [];
    for (const c of state.chips) {
      if (typeof c.site_lat === 'number') pts.push([c.site_lat, c.site_lon]);
    }
    for (const l of state.landmarks) {
      if (typeof l.lat === 'number') pts.push([l.lat, l.lon]);
    }
    if (pts.length === 0) return;
    state.fitted = true;
    state.map.fitBounds(L.latLngBounds(pts), { padding: [40, 40], maxZoom: 6 });
  }

  // What an alert is about: chip, landmark or verifier.
  function subjectType(a) { return a.subject_type || a.subject_kind || ''; }

  function drawAlerts(f) {
    const list = $('alerts');
    clear(list);
    const hidden = new Set(state.chips.filter((c) => !chipMatches(c, f)).map((c) => c.serial));
    const shown = state.alerts.filter((a) => !(subjectType(a) === 'chip' && hidden.has(a.subject)));
    $('alerts-count').textContent = '(' + shown.length + ')';
    if (shown.length === 0) {
      list.appendChild(el('li', { class: 'empty' }, 'none'));
      return;
    }
    for (const a of shown) {
      const subject = subjectType(a) === 'chip' ? chipLink(a.subject)
        : el('span', null, subjectType(a) + ' ', a.subject);
      list.appendChild(el('li', { class: 'alert', 'data-id': a.id, 'data-kind': a.kind,
        'data-subject': a.subject },
      el('span', { class: 'alert-kind' }, a.kind),
      a.state === 'acked' ? el('span', { class: 'alert-acked' }, ' acked') : null,
      el('div', null, subject),
      el('div', { class: 'alert-time' }, 'raised ', isoText(a.raised_at)),
      a.detail ? el('div', { class: 'alert-detail' }, a.detail) : null));
    }
  }

  function drawSummary(sum) {
    const dl = $('summary');
    clear(dl);
    const add = (k, v) => { dl.appendChild(el('dt', null, k)); dl.appendChild(el('dd', null, v)); };
    const ch = sum.chips || {};
    add('Chips', (ch.active ?? '–') + ' active of ' + (ch.enrolled ?? '–') +
      ', ' + (ch.never_attested ?? '–') + ' never attested');
    const rv = ch.region_verdict || {};
    const parts = Object.keys(rv).sort().map((k) => k + ' ' + rv[k]);
    add('Region verdicts', parts.length ? parts.join(', ') : '–');
    const sv = ch.site_verdict || {};
    if (sv.SITE_EXCLUDED) add('Sites excluded', String(sv.SITE_EXCLUDED));
    const lm = sum.landmarks || {};
    add('Landmarks', ['healthy', 'stale', 'retired', 'revoked']
      .filter((k) => lm[k]).map((k) => k + ' ' + lm[k]).join(', ') || '–');
    const al = sum.alerts || {};
    add('Alerts', (al.open ?? 0) + ' open, ' + (al.acked ?? 0) + ' acknowledged');
    const lr = sum.last_round || {};
    add('Last round', lr.round_end ? isoText(lr.round_end) + ' UTC' : 'none');
  }

  function drawLegend() {
    const ul = $('legend');
    for (const [v, s] of Object.entries(VERDICTS)) {
      ul.appendChild(el('li', null, swatch(s, 'chip'), ' ' + v + ': ' + s.text));
    }
    for (const [k, s] of Object.entries(LANDMARK_STATES)) {
      ul.appendChild(el('li', null, swatch(s, 'landmark'), ' landmark ' + k));
    }
    ul.appendChild(el('li', null, 'Dashed outline: chip deactivated. Chips declared at ' +
      'one site are drawn on a ring around it. Shaded area: the latest feasible region of ' +
      'a CONSISTENT chip (it contains the true region).'));
  }

  function setRefresh(summary) {
    const s = summary.refresh_s;
    if (Number.isInteger(s) && s >= 1 && s <= 3600) refreshMs = s * 1000;
  }

  async function refreshMap() {
    const [chips, geo, landmarks, alerts, summary] = await Promise.all([
      getJSON('/api/chips'), getJSON('/api/chips.geojson'), getJSON('/api/landmarks'),
      getJSON('/api/alerts?state=open'), getJSON('/api/summary')]);
    setRefresh(summary);
    drawSummary(summary);
    // Unchanged data leaves the map alone: an open tooltip stays open.
    const key = JSON.stringify([chips, geo, landmarks, alerts]);
    if (key === state.key) return;
    state.key = key;
    state.chips = chips.chips || [];
    state.regions = (geo.features || []).filter((x) => x && x.geometry && x.properties &&
      x.properties.kind === 'chip_region');
    state.landmarks = landmarks.landmarks || [];
    state.alerts = alerts.alerts || [];
    const ops = [...new Set(state.chips.map((c) => c.operator).filter((o) => o))].sort();
    const codes = [...new Set(state.chips.flatMap((c) => c.allowed || []))].sort();
    setOptions($('f-operator'), ops);
    setOptions($('f-country'), codes);
    drawMap();
  }

  // ---- one chip's page ----------------------------------------------------

  function row(tbody, cells, attrs) {
    tbody.appendChild(el('tr', attrs, ...cells.map((c) => el('td', null, c))));
  }

  function drawTimeline(history) {
    const box = $('chip-timeline');
    clear(box);
    const pts = history.map((h) => ({ t: Date.parse(h.round_end), h: h }))
      .filter((p) => isFinite(p.t)).sort((a, b) => a.t - b.t);
    if (pts.length === 0) {
      box.appendChild(el('p', null, 'No attestation yet.'));
      return;
    }
    const W = 720, H = 110, left = 48, right = 12, top = 8, plotH = 56, stripY = 72, stripH = 12;
    let t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    if (t1 === t0) { t0 -= 3600e3; t1 += 3600e3; }
    const x = (t) => left + (W - left - right) * (t - t0) / (t1 - t0);
    const radii = pts.map((p) => p.h.radius_km).filter((r) => typeof r === 'number');
    const rmax = radii.length ? Math.max(...radii) * 1.1 || 1 : 1;
    const y = (r) => top + plotH - plotH * r / rmax;
    const g = svg('svg', { id: 'chip-timeline-svg', width: W, height: H,
      viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Verdicts and radius over time' });
    g.appendChild(svg('line', { x1: left, y1: top + plotH, x2: W - right, y2: top + plotH,
      class: 'axis' }));
    g.appendChild(svg('line', { x1: left, y1: top, x2: left, y2: top + plotH, class: 'axis' }));
    const label = (xx, yy, text, anchor) => {
      const t = svg('text', { x: xx, y: yy, 'text-anchor': anchor || 'start', class: 'tl-label' });
      t.textContent = text;
      g.appendChild(t);
    };
    label(left - 4, top + 8, num(rmax, 0) + ' km', 'end');
    label(left - 4, top + plotH, '0', 'end');
    label(left, H - 4, isoText(new Date(t0).toISOString().replace(/\.\d+Z$/, 'Z')));
    label(W - right, H - 4, isoText(new Date(t1).toISOString().replace(/\.\d+Z$/, 'Z')), 'end');
    let line = '';
    pts.forEach((p, i) => {
      const v = chipVerdict(p.h);
      const s = VERDICTS[v];
      const xe = i + 1 < pts.length ? x(pts[i + 1].t) : W - right;
      const rect = svg('rect', { x: x(p.t), y: stripY, width: Math.max(xe - x(p.t), 2),
        height: stripH, fill: s.fill, stroke: s.color, 'stroke-width': 0.5, 'data-verdict': v });
      const title = svg('title');
      title.textContent = isoText(p.h.round_end) + ' UTC: ' + v;
      rect.appendChild(title);
      g.appendChild(rect);
      if (typeof p.h.radius_km === 'number') {
        line += (line ? ' L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.h.radius_km).toFixed(1);
        const dot = svg('circle', { cx: x(p.t), cy: y(p.h.radius_km), r: 3, fill: s.fill,
          stroke: s.color });
        const t2 = svg('title');
        t2.textContent = isoText(p.h.round_end) + ' UTC: radius ' + num(p.h.radius_km, 1) + ' km';
        dot.appendChild(t2);
        g.appendChild(dot);
      }
    });
    if (line) g.insertBefore(svg('path', { d: line, class: 'tl-radius' }), g.firstChild);
    box.appendChild(g);
  }

  function drawChip(d) {
    const c = d.chip;
    const verdict = chipVerdict(c);
    const facts = $('chip-facts');
    clear(facts);
    const add = (k, v, id) => {
      facts.appendChild(el('dt', null, k));
      facts.appendChild(el('dd', null, id ? el('span', { id: id }, v) : v));
    };
    add('Verdict', verdict, 'chip-verdict');
    $('chip-verdict').setAttribute('data-verdict', verdict);
    $('chip-verdict').className = 'verdict verdict-' + verdict;
    add('Meaning', VERDICTS[verdict].text);
    add('Consistency / site / region', [c.consistency, c.site_verdict, c.region_verdict]
      .map((v) => v || '–').join(' / '));
    add('Operator', c.operator || '–');
    add('Active', c.active === false ? 'no' : 'yes');
    add('Declared site', num(c.site_lat, 4) + ', ' + num(c.site_lon, 4));
    add('Feasible region', typeof c.radius_km === 'number'
      ? num(c.radius_km, 1) + ' km around ' + num(c.centre_lat, 4) + ', ' + num(c.centre_lon, 4)
      : '–');
    add('Allowed regions', (c.allowed || []).join(', ') || '–');
    add('Landmarks used', c.landmarks_used ?? '–');
    add('Latest round end', isoText(c.round_end) + (c.round_end ? ' UTC' : ''));

    const hist = $('chip-history').tBodies[0];
    clear(hist);
    for (const h of d.history || []) {
      row(hist, [isoText(h.round_end), h.consistency || '–', h.site_verdict || '–',
        h.region_verdict || '–', num(h.radius_km, 1),
        typeof h.centre_lat === 'number' ? num(h.centre_lat, 3) + ', ' + num(h.centre_lon, 3) : '–',
        h.landmarks_used ?? '–', h.verifier || '–'], { 'data-verdict': chipVerdict(h) });
    }
    drawTimeline(d.history || []);

    const lms = $('chip-landmarks').tBodies[0];
    clear(lms);
    for (const l of d.landmarks || []) {
      const us = typeof l.min_rtt_us === 'number' ? l.min_rtt_us
        : typeof l.min_rtt_ns === 'number' ? l.min_rtt_ns / 1000 : null;
      const km = typeof l.bound_km === 'number' ? l.bound_km
        : typeof l.min_bound_m === 'number' ? l.min_bound_m / 1000 : null;
      row(lms, [l.landmark, l.records ?? '–', us === null ? '–' : num(us / 1000, 3),
        num(km, 1), l.used ? 'yes' : 'no', isoText(l.last_measured)],
      { 'data-landmark': l.landmark });
    }
    if (!d.landmarks || d.landmarks.length === 0) {
      row(lms, ['no measurement in the window', '', '', '', '', '']);
    }

    const chain = d.chain || {};
    const p = $('chip-chain');
    let chainState;
    if (!chain.records) {
      chainState = 'empty';
      p.textContent = 'No attestation yet.';
    } else if (chain.first_bad) {
      chainState = 'broken';
      p.textContent = 'Broken: ' + chain.verified + ' of ' + chain.records +
        ' records of verifier ' + chain.verifier + ' verify; the first that does not is ' +
        isoText(chain.first_bad.round_end) + ' UTC: ' + chain.first_bad.problem + '.';
    } else {
      chainState = 'ok';
      p.textContent = 'All ' + chain.records + ' records of verifier ' + chain.verifier +
        ' verify: every signature, every link to the record before.';
    }
    p.setAttribute('data-state', chainState);

    const al = $('chip-alerts').tBodies[0];
    clear(al);
    for (const a of d.alerts || []) {
      row(al, [isoText(a.raised_at), a.kind, a.state, isoText(a.cleared_at),
        a.acked_by ? a.acked_by + (a.ack_reason ? ': ' + a.ack_reason : '') : '–',
        a.detail || ''], { class: 'alert', 'data-kind': a.kind, 'data-state': a.state });
    }
    if (!d.alerts || d.alerts.length === 0) row(al, ['none', '', '', '', '', '']);
  }

  async function refreshChip(serial) {
    $('chip-serial').textContent = serial;
    document.title = 'chiploc: chip ' + serial;
    try {
      const [d, summary] = await Promise.all([
        getJSON('/api/chip/' + encodeURIComponent(serial)), getJSON('/api/summary')]);
      setRefresh(summary);
      $('chip-missing').hidden = true;
      $('chip-body').hidden = false;
      drawChip(d);
    } catch (e) {
      if (e.status !== 404) throw e;
      $('chip-body').hidden = true;
      $('chip-missing').hidden = false;
      $('chip-missing').textContent = 'No chip has this serial.';
    }
    $('chip-page').setAttribute('data-serial', serial);
  }

  // ---- routing and refresh ------------------------------------------------

  // '#/chip/SERIAL' (URL-encoded) is a chip's page; anything else the map.
  function route() {
    const m = /^#\/chip\/(.*)$/.exec(location.hash);
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]);
    } catch (e) {
      return null;
    }
  }

  function setUpdated(kind, text) {
    const u = $('updated');
    u.setAttribute('data-state', kind);
    u.textContent = text;
  }

  let timer = null;
  let running = false;
  let again = false;

  // One refresh at a time; a route change meanwhile runs another after it.
  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    clearTimeout(timer);
    const serial = route();
    $('map-view').hidden = serial !== null;
    $('chip-page').hidden = serial === null;
    document.body.setAttribute('data-view', serial === null ? 'map' : 'chip');
    try {
      if (serial === null) {
        document.title = 'chiploc dashboard';
        state.map.invalidateSize();
        await refreshMap();
      } else {
        await refreshChip(serial);
      }
      state.updated = new Date();
      setUpdated('ok', 'Updated ' + isoText(state.updated.toISOString().replace(/\.\d+Z$/, 'Z')) +
        ' UTC; refreshes every ' + refreshMs / 1000 + ' s');
    } catch (e) {
      setUpdated('error', 'Update failed: ' + e.message + (state.updated
        ? '; showing the data of ' + isoText(state.updated.toISOString()) : ''));
    } finally {
      running = false;
      timer = setTimeout(refresh, again ? 0 : refreshMs);
    }
  }

  function start() {
    initMap();
    drawLegend();
    const vs = $('f-verdict');
    for (const v of VERDICT_FILTER) vs.appendChild(el('option', null, v)).value = v;
    for (const id of ['f-operator', 'f-verdict', 'f-country']) {
      $(id).addEventListener('change', drawMap);
    }
    window.addEventListener('hashchange', refresh);
    loadBorders();
    refresh();
  }

  start();
}());
