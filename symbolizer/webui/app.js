/*
 * app.js - the page: query controls, views (flame graph, top functions, diff, missing debug
 * info), keyboard shortcuts, and the URL state.
 *
 * The whole view lives in the URL's fragment (#view=flame&q=...&from=...&search=...&zoom=...),
 * written with history.replaceState on every change and read at load, so a view is shared by
 * copying the address. All requests are relative to the page (api/v1/...), so the UI also works
 * behind a reverse proxy under a sub-path. When window.FLEETSYM_STATIC is set (the demo's
 * offline file), answers come from it and nothing is fetched.
 */
(function () {
	'use strict';

	const { FlameGraph, fmtValue, pct, esc, pathOf } = window.Flame;
	const STATIC = window.FLEETSYM_STATIC || null;
	const $ = (id) => document.getElementById(id);

	const DEFAULTS = {
		view: 'flame', q: '{}', from: 'now-1h', to: 'now', type: '', search: '', zoom: '',
		icicle: '', sort: 'self', bq: '', bfrom: 'prev', bto: '',
	};
	const S = Object.assign({}, DEFAULTS);
	const cache = { flame: null, top: null, missing: null, diff: null, timeline: null };
	let labelNames = [];

	/* ---- URL state ---- */

	function readHash() {
		const p = new URLSearchParams(location.hash.replace(/^#/, ''));
		for (const k of Object.keys(DEFAULTS)) S[k] = p.has(k) ? p.get(k) : DEFAULTS[k];
		if (!['flame', 'top', 'diff', 'missing'].includes(S.view)) S.view = 'flame';
	}

	function writeHash() {
		const p = new URLSearchParams();
		for (const k of Object.keys(DEFAULTS)) if (S[k] !== DEFAULTS[k]) p.set(k, S[k]);
		const h = p.toString();
		const url = location.pathname + location.search + (h ? '#' + h : '');
		if (url !== location.pathname + location.search + location.hash)
			history.replaceState(null, '', url);
	}

	/* ---- time ---- */

	const UNIT_S = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
	const REL_RE = /^now(?:-(\d+)([smhdw]))?$/;

	/* Seconds since the epoch for "now", "now-1h", RFC 3339 or unix seconds. */
	function toEpoch(t) {
		const m = REL_RE.exec(t);
		if (m) return Date.now() / 1000 - (m[1] ? +m[1] * UNIT_S[m[2]] : 0);
		if (/^\d+(\.\d+)?$/.test(t)) return +t;
		const d = Date.parse(t);
		return Number.isNaN(d) ? NaN : d / 1000;
	}

	function relSpan(secs) {
		for (const u of ['w', 'd', 'h', 'm'])
			if (secs % UNIT_S[u] === 0) return secs / UNIT_S[u] + u;
		return Math.round(secs) + 's';
	}

	function relSecs(t) {
		const m = REL_RE.exec(t);
		return m ? (m[1] ? +m[1] * UNIT_S[m[2]] : 0) : null;
	}

	function iso(secs) {
		return new Date(Math.round(secs) * 1000).toISOString().replace('.000Z', 'Z');
	}

	/* datetime-local wants local time without a zone. */
	function toLocalInput(secs) {
		const d = new Date(secs * 1000);
		const z = (n) => String(n).padStart(2, '0');
		return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}T${z(d.getHours())}:${z(d.getMinutes())}:${z(d.getSeconds())}`;
	}

	function fromLocalInput(v) {
		const d = new Date(v);
		return Number.isNaN(d.getTime()) ? null : iso(d.getTime() / 1000);
	}

	/* Unix nanoseconds as local "YYYY-MM-DD HH:MM:SS". */
	function nsTime(ns) {
		return toLocalInput(ns / 1e9).replace('T', ' ');
	}

	/* The base window of the diff: "prev" is the window of the same length just before. */
	function baseWindow() {
		if (S.bfrom !== 'prev') return { from: S.bfrom, to: S.bto || 'now' };
		const rf = relSecs(S.from), rt = relSecs(S.to);
		if (rf !== null && rt !== null)
			return { from: 'now-' + relSpan(2 * rf - rt), to: 'now-' + relSpan(rf) };
		const f = toEpoch(S.from), t = toEpoch(S.to);
		return { from: iso(2 * f - t), to: iso(f) };
	}

	function shiftWindow(dir) {
		let f = toEpoch(S.from), t = toEpoch(S.to);
		if (!(t > f)) return;
		const len = t - f;
		f += dir * len;
		t += dir * len;
		S.from = iso(f);
		S.to = iso(t);
		syncControls();
		run();
	}

	/* ---- selectors ---- */

	const MATCHER_RE = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

	function parseSelector(s) {
		s = s.trim();
		if (s.startsWith('{')) s = s.slice(1);
		if (s.endsWith('}')) s = s.slice(0, -1);
		const out = [];
		MATCHER_RE.lastIndex = 0;
		let m;
		while (MATCHER_RE.lastIndex < s.length && (m = MATCHER_RE.exec(s)))
			out.push({ name: m[1], op: m[2], value: m[3].replace(/\\(.)/g, '$1') });
		return MATCHER_RE.lastIndex >= s.trim().length || !s.trim() ? out : null;
	}

	function formatSelector(ms) {
		const q = (v) => '"' + v.replace(/[\\"]/g, '\\$&') + '"';
		return '{' + ms.map((m) => m.name + m.op + q(m.value)).join(', ') + '}';
	}

	function normSelector(s) {
		s = (s || '').trim();
		if (!s) return '{}';
		return s.startsWith('{') ? s : '{' + s + '}';
	}

	/* ---- requests ---- */

	async function api(path, params) {
		if (STATIC) {
			const k = path.replace(/^api\/v1\//, '').split('?')[0];
			if (k === 'query' && params.format === 'top') return STATIC.top ?? null;
			if (k in STATIC) return STATIC[k];
			throw new Error('not in this offline file: ' + k);
		}
		const u = new URL(path, document.baseURI);
		for (const [k, v] of Object.entries(params || {}))
			if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
		let r;
		/* busy (--max-heavy-queries, the ingest budget): 503 with Retry-After; ask again a
		   few times, as the header says, before showing an error */
		for (let attempt = 0; ; attempt++) {
			r = await fetch(u, { headers: { Accept: 'application/json' } });
			const after = Number(r.headers.get('Retry-After'));
			if (r.status !== 503 || !after || attempt >= 5) break;
			await r.text();
			await new Promise((ok) => setTimeout(ok, Math.min(after, 5) * 1000));
		}
		const text = await r.text();
		let body = null;
		try {
			body = text ? JSON.parse(text) : null;
		} catch (e) {
			body = { text };
		}
		if (!r.ok) {
			const msg = body && body.error ? body.error : `${r.status} ${r.statusText}`;
			const err = new Error(msg);
			err.status = r.status;
			throw err;
		}
		return body;
	}

	/* Flame graphs keep the heaviest frames: more boxes than this add nothing readable. */
	const MAX_NODES = 6000;

	function queryParams(extra) {
		return Object.assign({ query: normSelector(S.q), from: S.from, to: S.to, type: S.type }, extra);
	}

	/* The tree and its metadata, whatever the envelope: {root|tree|flamegraph: {...}, unit,
	 * total, ...} or the root node itself. */
	function unwrapTree(obj) {
		if (!obj || typeof obj !== 'object') return { tree: null, meta: {} };
		const tree = obj.root || obj.tree || obj.flamegraph || (('children' in obj || 'name' in obj) ? obj : null);
		const meta = tree === obj ? {} : obj;
		return { tree, meta };
	}

	function unitOf(meta) {
		return meta.unit || meta.sample_unit || (meta.sample_type && meta.sample_type.unit) ||
			(meta.type && meta.type.unit) || '';
	}

	function listOf(obj, keys) {
		if (Array.isArray(obj)) return obj;
		if (!obj || typeof obj !== 'object') return [];
		for (const k of keys) if (Array.isArray(obj[k])) return obj[k];
		return [];
	}

	/* ---- status ---- */

	let pending = 0;

	function status(msg, kind) {
		const el = $('status');
		el.hidden = !msg;
		el.textContent = msg || '';
		el.className = 'status' + (kind ? ' ' + kind : '');
	}

	async function guarded(what, fn) {
		pending++;
		document.body.classList.add('busy');
		try {
			return await fn();
		} catch (e) {
			status(`${what}: ${e.message}`, 'error');
			return undefined;
		} finally {
			if (--pending === 0) document.body.classList.remove('busy');
		}
	}

	/* ---- flame graph ---- */

	const flame = new FlameGraph($('flame'), {
		tooltip: $('tooltip'),
		onZoom: (n) => {
			S.zoom = pathOf(n).join(';');
			writeHash();
			crumbs(n);
		},
	});

	function crumbs(n) {
		const path = pathOf(n);
		$('crumbs').textContent = path.length ? 'zoomed: ' + path.slice(-3).join(' ▸ ') : '';
		$('resetzoom').disabled = !path.length;
	}

	async function loadFlame() {
		const obj = await api('api/v1/query', queryParams({ format: 'json', max_nodes: MAX_NODES }));
		const { tree, meta } = unwrapTree(obj);
		meta.unit = unitOf(meta);
		cache.flame = { tree, meta };
		cache.top = null;
		flame.setData(tree, { unit: meta.unit });
		flame.setZoomPath(S.zoom ? S.zoom.split(';') : []);
		crumbs(flame.zoom);
		applySearch();
		summary();
	}

	function summary() {
		const f = cache.flame;
		if (!f || !flame.root) {
			$('summary').textContent = '';
			return;
		}
		const m = f.meta, parts = [];
		parts.push('total ' + fmtValue(flame.root.total, m.unit));
		if (m.nprofiles !== undefined || m.profiles !== undefined)
			parts.push((m.nprofiles ?? m.profiles) + ' profiles');
		const t = m.sample_type && typeof m.sample_type === 'string' ? m.sample_type : m.type && typeof m.type === 'string' ? m.type : '';
		if (t) parts.push(t + (m.unit ? ' (' + m.unit + ')' : ''));
		if (m.unknown_locations) parts.push(m.unknown_locations + ' unknown locations');
		$('summary').textContent = parts.join(' · ');
		if (m.partial)
			status('Some debug info was still being fetched: those frames are unknown for now; run the query again in a moment.', 'info');
	}

	function applySearch() {
		const st = flame.setSearch(S.search);
		const el = $('matchinfo');
		if (!S.search) {
			el.textContent = '';
		} else if (!st || !st.count) {
			el.textContent = 'no match';
		} else {
			el.innerHTML = `<b>${pct(st.share)}</b> of the total in ${st.count} frame${st.count === 1 ? '' : 's'} (${esc(fmtValue(st.value, cache.flame ? cache.flame.meta.unit : ''))})`;
		}
	}

	/* ---- timeline: total per step, the line a window is picked from ---- */

	const NICE_STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

	async function loadTimeline() {
		const f = toEpoch(S.from), t = toEpoch(S.to);
		if (!(t > f) || (STATIC && !STATIC.timeline)) {
			$('timeline').hidden = true;
			return;
		}
		const want = (t - f) / 120;
		const step = NICE_STEPS.find((x) => x >= want) || Math.ceil(want / 86400) * 86400;
		const obj = await api('api/v1/timeline', { query: normSelector(S.q), from: S.from, to: S.to, type: S.type, step: step + 's' });
		const pts = listOf(obj, ['points']).filter((p) => Array.isArray(p) && p.length >= 2);
		const from = Number(obj && obj.from !== undefined ? obj.from : f);
		const to = Number(obj && obj.to !== undefined ? obj.to : t);
		cache.timeline = { pts, from: from > 1e12 ? from / 1e9 : from, to: to > 1e12 ? to / 1e9 : to, step: Number(obj.step) || step };
		renderTimeline();
	}

	function renderTimeline() {
		const tl = cache.timeline;
		if (!tl || !tl.pts.length || !tl.pts.some((p) => p[1] > 0)) {
			$('timeline').hidden = true;
			return;
		}
		$('timeline').hidden = false;
		const span = tl.to - tl.from || 1, max = Math.max(...tl.pts.map((p) => p[1]));
		const w = Math.max(0.5, (tl.step / span) * 1000 - 0.6);
		$('tlsvg').innerHTML = tl.pts.map((p, i) => {
			const h = max ? (p[1] / max) * 44 : 0;
			return `<rect class="b" data-i="${i}" x="${(((p[0] - tl.from) / span) * 1000).toFixed(2)}" y="${(48 - h).toFixed(2)}" width="${w.toFixed(2)}" height="${h.toFixed(2)}"></rect>`;
		}).join('') + '<rect class="sel" id="tlsel" x="0" y="0" width="0" height="48" visibility="hidden"></rect>';
		$('tlfrom').textContent = toLocalInput(tl.from).replace('T', ' ');
		$('tlto').textContent = toLocalInput(tl.to).replace('T', ' ');
		$('tlinfo').textContent = '';
	}

	function wireTimeline() {
		const svg = $('tlsvg');
		let x0 = null;
		const frac = (e) => {
			const r = svg.getBoundingClientRect();
			return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
		};
		const sel = (a, b) => {
			const r = $('tlsel');
			if (!r) return;
			r.setAttribute('x', (Math.min(a, b) * 1000).toFixed(2));
			r.setAttribute('width', (Math.abs(b - a) * 1000).toFixed(2));
			r.setAttribute('visibility', 'visible');
		};
		svg.addEventListener('mousedown', (e) => {
			if (STATIC) return;
			x0 = frac(e);
			e.preventDefault();
		});
		svg.addEventListener('mousemove', (e) => {
			const tl = cache.timeline;
			if (!tl) return;
			const x = frac(e);
			if (x0 !== null) sel(x0, x);
			const b = e.target.closest('rect.b');
			$('tlinfo').textContent = b ? `${toLocalInput(tl.pts[+b.dataset.i][0]).replace('T', ' ')}: ${fmtValue(tl.pts[+b.dataset.i][1], cache.flame ? cache.flame.meta.unit : '')}` : '';
		});
		window.addEventListener('mouseup', (e) => {
			if (x0 === null) return;
			const tl = cache.timeline, x1 = frac(e), a = Math.min(x0, x1), b = Math.max(x0, x1);
			x0 = null;
			if (!tl || b - a < 0.005) {
				renderTimeline();
				return;
			}
			const span = tl.to - tl.from;
			S.from = iso(tl.from + a * span);
			S.to = iso(tl.from + b * span);
			syncControls();
			run();
		});
	}

	/* ---- top functions ---- */

	/* A share bar behind a table cell's number. */
	function bar(w) {
		const p = Math.max(0, Math.min(100, w)).toFixed(2);
		return `background:linear-gradient(90deg,#fde2c4 ${p}%,transparent ${p}%)`;
	}

	/*
	 * format=top is pprof -top's text: a header, then "flat flat% sum% cum cum%  function
	 * [file | [build ID x]]". Function names may hold spaces, so the file is split off by the
	 * files the tree knows for that function.
	 */
	function parseTopText(text, known) {
		const rows = [];
		let total = 0;
		for (const line of text.split('\n')) {
			const h = /^Type: .*, total (\d+)/.exec(line);
			if (h) total = +h[1];
			const m = /^\s*(-?\d+)\s+\S+%\s+\S+%\s+(-?\d+)\s+\S+%\s{2}(.*)$/.exec(line);
			if (!m) continue;
			let rest = m[3], file = '', buildId = '';
			const b = / \[build ID ([0-9a-f]+)\]$/.exec(rest);
			if (b) {
				buildId = b[1];
				rest = rest.slice(0, b.index);
			} else {
				const sp = rest.lastIndexOf(' ');
				const f = known.get(rest.slice(0, sp));
				if (sp > 0 && f !== undefined && f === rest.slice(sp + 1)) {
					file = f;
					rest = rest.slice(0, sp);
				}
			}
			rows.push({ name: rest, self: +m[1], total: +m[2], file, line: 0, inlined: false, buildId });
		}
		return { rows, total };
	}

	async function loadTop() {
		if (!cache.flame) await loadFlame();
		if (!flame.root) return;
		const fromTree = window.Flame.topFromTree(flame.root);
		const unit = cache.flame.meta.unit;
		let rows = fromTree, total = flame.root.total;
		/* A pruned tree lumps small frames into "other": then the server's table is exact. */
		if (cache.flame.meta.pruned) {
			const text = await api('api/v1/query', queryParams({ format: 'top' })).catch(() => null);
			const known = new Map(fromTree.map((r) => [r.name, r.file]));
			const t = text && typeof text.text === 'string' ? parseTopText(text.text, known) : null;
			if (t && t.rows.length) {
				const byName = new Map(fromTree.map((r) => [r.name, r]));
				rows = t.rows.map((r) => Object.assign({}, byName.get(r.name) || {}, r,
					{ file: r.file || (byName.get(r.name) || {}).file || '', line: (byName.get(r.name) || {}).line || 0 }));
				total = t.total || total;
			}
		}
		cache.top = { rows, total, unit };
	}

	function renderTop() {
		const tb = $('toptable').tBodies[0];
		if (!cache.top) {
			tb.innerHTML = '';
			return;
		}
		const { rows, total, unit } = cache.top;
		const f = $('topfilter').value.toLowerCase();
		const key = S.sort === 'total' ? 'total' : S.sort === 'name' ? 'name' : 'self';
		const sorted = rows.filter((r) => !f || r.name.toLowerCase().includes(f) || r.file.toLowerCase().includes(f))
			.sort((a, b) => key === 'name' ? a.name.localeCompare(b.name) : b[key] - a[key] || b.total - a.total);
		const html = sorted.slice(0, 500).map((r) => {
			const w = total ? (r.self / total) * 100 : 0;
			return `<tr data-name="${esc(r.name)}"><td class="num">${esc(fmtValue(r.self, unit))}</td>` +
				`<td class="num bar" style="${bar(w)}">${pct(total ? r.self / total : 0)}</td>` +
				`<td class="num">${esc(fmtValue(r.total, unit))}</td><td class="num">${pct(total ? r.total / total : 0)}</td>` +
				`<td class="fn"><a href="#" class="find">${esc(r.name)}</a>${r.inlined ? ' <span class="tag">inlined</span>' : ''}</td>` +
				`<td class="file">${esc(r.file)}${r.line ? ':' + r.line : ''}</td></tr>`;
		});
		tb.innerHTML = html.join('') || '<tr><td colspan="6" class="empty">No samples in this selection.</td></tr>';
		for (const th of $('toptable').tHead.rows[0].cells)
			th.classList.toggle('sorted', th.dataset.sort === key);
	}

	/* ---- diff ---- */

	const diffFlame = new FlameGraph($('diffflame'), { tooltip: $('tooltip'), diff: true });

	/* Merge two trees by call path: the client-side diff, used when the server has no /diff. */
	function mergeTrees(base, cmp) {
		const norm = window.Flame.normalize;
		const conv = (n, side, into) => {
			into[side] = (into[side] || 0) + n.total;
			into[side + 'Self'] = (into[side + 'Self'] || 0) + n.self;
			for (const c of n.children) {
				let k = into.kids.get(c.name);
				if (!k) into.kids.set(c.name, (k = { name: c.name, file: c.file, line: c.line, inlined: c.inlined, build_id: c.buildId, kids: new Map() }));
				conv(c, side, k);
			}
		};
		const top = { name: 'total', kids: new Map() };
		if (base) conv(norm(base), 'b', top);
		if (cmp) conv(norm(cmp), 'c', top);
		const out = (k) => ({
			name: k.name, file: k.file, line: k.line, inlined: k.inlined, build_id: k.build_id,
			total: k.c || 0, self: k.cSelf || 0, base_total: k.b || 0, base_self: k.bSelf || 0,
			children: Array.from(k.kids.values()).map(out),
		});
		return out(top);
	}

	async function loadDiff() {
		const bw = baseWindow();
		const bq = normSelector(S.bq || S.q);
		const params = queryParams({ base: bq, base_from: bw.from, base_to: bw.to, format: 'json', max_nodes: MAX_NODES });
		let obj;
		try {
			obj = await api('api/v1/diff', params);
		} catch (e) {
			if (e.status !== 404) throw e;
			const [b, c] = await Promise.all([
				api('api/v1/query', { query: bq, from: bw.from, to: bw.to, type: S.type, format: 'json' }),
				api('api/v1/query', queryParams({ format: 'json' })),
			]);
			obj = { root: mergeTrees(unwrapTree(b).tree, unwrapTree(c).tree), unit: unitOf(unwrapTree(c).meta) };
		}
		const { tree, meta } = unwrapTree(obj);
		const unit = unitOf(meta) || (cache.flame ? cache.flame.meta.unit : '');
		const root = diffFlame.setData(tree, {
			unit,
			total: Number(meta.total ?? meta.compare_total ?? meta.right_total ?? 0),
			baseTotal: Number(meta.base_total ?? meta.left_total ?? 0),
		});
		cache.diff = { bw, bq, unit, root, meta };
		diffFlame.render();
		legend();
	}

	function legend() {
		const d = cache.diff;
		const el = $('legend');
		if (!d || !d.root) {
			el.innerHTML = '';
			return;
		}
		const T = diffFlame.meta.total || d.root.total, B = diffFlame.meta.baseTotal || d.root.baseTotal;
		const m = (diffFlame.maxDelta * 100).toFixed(2);
		const M = d.meta || {};
		const when = (f, t) => (typeof f === 'number' && typeof t === 'number' ? `${nsTime(f)} → ${nsTime(t)}` : `${f} → ${t}`);
		const bsel = M.base_query ?? d.bq, csel = M.query ?? normSelector(S.q);
		const bwin = M.base_from !== undefined ? when(M.base_from, M.base_to) : when(d.bw.from, d.bw.to);
		const cwin = M.from !== undefined ? when(M.from, M.to) : when(S.from, S.to);
		el.innerHTML =
			`<span class="sw down"></span> shrank &nbsp; <span class="grad"></span> <span class="sw up"></span> grew` +
			` <span class="mut">(share of each side's total; full colour = ±${m} pp; width = compare)</span>` +
			`<span class="grow"></span>` +
			`<span>base <b>${esc(fmtValue(B, d.unit))}</b> <span class="mut">${esc(bsel)} ${esc(bwin)}</span></span>` +
			`<span>compare <b>${esc(fmtValue(T, d.unit))}</b> <span class="mut">${esc(csel)} ${esc(cwin)}</span></span>`;
	}

	/* ---- missing debug info ---- */

	function normMissing(r) {
		const files = r.files || r.filenames || (r.file ? [r.file] : r.filename ? [r.filename] : r.mapping ? [r.mapping] : []);
		return {
			buildId: r.build_id || r.buildid || '',
			files: Array.isArray(files) ? files.map(String) : [String(files)],
			samples: Number(r.samples ?? r.value ?? r.count ?? 0),
			share: r.share !== undefined ? Number(r.share) : null,
			reason: r.reason || '',
			fix: r.fix || r.command || '',
		};
	}

	function shq(s) {
		return /^[A-Za-z0-9_./:@%+-][A-Za-z0-9_./:=@%+-]*$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
	}

	function serverUrl() {
		if (STATIC && STATIC.meta && STATIC.meta.server) return STATIC.meta.server;
		return location.origin + location.pathname.replace(/\/[^/]*$/, '');
	}

	async function loadMissing() {
		const obj = await api('api/v1/missing', queryParams({}));
		const rows = listOf(obj, ['missing', 'build_ids', 'items', 'results']).map(normMissing)
			.sort((a, b) => b.samples - a.samples);
		const meta = obj && !Array.isArray(obj) ? obj : {};
		const total = Number(meta.total ?? 0);
		cache.missing = { rows, total, unit: unitOf(meta), unsym: meta.unsymbolized, unsymShare: meta.unsymbolized_share };
		const badge = $('missingcount');
		badge.hidden = !rows.length;
		badge.textContent = rows.length;
	}

	function renderMissing() {
		const tb = $('missingtable').tBodies[0];
		const m = cache.missing;
		if (!m) {
			tb.innerHTML = '';
			return;
		}
		const srv = serverUrl();
		$('missingsummary').textContent = m.unsymShare !== undefined && m.total ?
			`${pct(m.unsymShare)} of the ${fmtValue(m.total, m.unit)} in this window have at least one unsymbolized frame.` : '';
		tb.innerHTML = m.rows.map((r) => {
			const share = r.share !== null ? r.share : m.total ? r.samples / m.total : NaN;
			const file = r.files[0] || '';
			const cmd = r.fix || `fleetsym-upload --server ${shq(srv)} ${file ? (file[0] === '-' ? '-- ' : '') + shq(file) : '<unstripped file with build ID ' + r.buildId + '>'}`;
			/* [vdso] and friends are made by the kernel: there is no file to upload */
			const fix = file.startsWith('[') ?
				`<span class="mut">nothing to upload: ${esc(file)} is made by the kernel, not read from a file</span>` :
				`<code>${esc(cmd)}</code> <button class="copy" data-cmd="${esc(cmd)}" title="copy">copy</button>`;
			return `<tr data-build-id="${esc(r.buildId)}"><td class="num">${esc(fmtValue(r.samples, m.unit))}</td>` +
				`<td class="num bar" style="${bar(Math.min(1, share || 0) * 100)}">${pct(share)}</td>` +
				`<td><code>${esc(r.buildId)}</code>${r.reason ? `<div class="mut small">${esc(r.reason)}</div>` : ''}</td>` +
				`<td class="file">${r.files.map(esc).join('<br>')}</td>` +
				`<td class="cmd">${fix}</td></tr>`;
		}).join('') || '<tr><td colspan="5" class="empty">Every build ID in this window had debug info.</td></tr>';
	}

	/* ---- labels and types ---- */

	async function loadLabels() {
		const obj = await api('api/v1/labels', {});
		labelNames = listOf(obj, ['labels', 'names', 'data']).map(String).sort();
		const sel = $('labelname');
		sel.innerHTML = '<option value="">+ label</option>' +
			labelNames.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join('');
	}

	async function loadValues(name) {
		const obj = await api('api/v1/labels/' + encodeURIComponent(name) + '/values', {});
		const vals = listOf(obj, ['values', 'data']).map(String).sort();
		const sel = $('labelvalue');
		sel.innerHTML = '<option value="">value…</option>' +
			vals.map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join('');
		$('labelop').hidden = false;
		sel.hidden = false;
		sel.focus();
	}

	async function loadTypes() {
		const obj = await api('api/v1/types', {});
		const types = listOf(obj, ['types', 'data']).map((t) => typeof t === 'string' ? { name: t } : t);
		if (!types.length) return;
		const sel = $('type');
		sel.innerHTML = types.map((t) => {
			const n = t.name || t.type || '';
			return `<option value="${esc(n)}">${esc(n)}${t.unit ? ' (' + esc(t.unit) + ')' : ''}</option>`;
		}).join('');
		if (S.type && !types.some((t) => (t.name || t.type) === S.type))
			sel.insertAdjacentHTML('beforeend', `<option value="${esc(S.type)}">${esc(S.type)}</option>`);
		sel.value = S.type || sel.options[0].value;
	}

	function renderChips() {
		const ms = parseSelector(S.q);
		const el = $('chips');
		if (!ms) {
			el.innerHTML = '<span class="bad">selector not understood</span>';
			return;
		}
		el.innerHTML = ms.map((m, i) =>
			`<span class="chip">${esc(m.name)}${esc(m.op)}${esc(m.value)}<button type="button" data-i="${i}" title="remove">×</button></span>`).join('');
	}

	/* ---- views ---- */

	function showView(v) {
		S.view = v;
		for (const b of document.querySelectorAll('#tabs [data-view]'))
			b.classList.toggle('on', b.dataset.view === v);
		for (const s of document.querySelectorAll('main .view')) s.hidden = s.id !== 'view-' + v;
		writeHash();
		refreshView();
	}

	async function refreshView() {
		const v = S.view;
		if (v === 'flame') {
			if (!cache.flame) await guarded('flame graph', loadFlame);
			else flame.render();
		} else if (v === 'top') {
			if (!cache.top) await guarded('top functions', loadTop);
			renderTop();
		} else if (v === 'diff') {
			if (!cache.diff) await guarded('diff', loadDiff);
			else diffFlame.render();
		} else if (v === 'missing') {
			if (!cache.missing) await guarded('missing debug info', loadMissing);
			renderMissing();
		}
	}

	/* Run the query: drop every cached answer, load the current view and the missing count. */
	function run() {
		status('');
		cache.flame = cache.top = cache.diff = cache.missing = null;
		S.q = normSelector($('q').value);
		$('q').value = S.q;
		renderChips();
		writeHash();
		const p = refreshView();
		if (S.view !== 'missing') guarded('missing debug info', loadMissing);
		guarded('timeline', loadTimeline);
		return p;
	}

	function syncControls() {
		$('q').value = S.q;
		renderChips();
		const presets = Array.from($('preset').options).map((o) => o.value);
		const rel = S.to === 'now' && presets.includes(S.from);
		$('preset').value = rel ? S.from : 'custom';
		$('absolute').hidden = rel;
		if (!rel) {
			const f = toEpoch(S.from), t = toEpoch(S.to);
			if (Number.isFinite(f)) $('from').value = toLocalInput(f);
			if (Number.isFinite(t)) $('to').value = toLocalInput(t);
		}
		$('icicle').checked = !!S.icicle;
		$('search').value = S.search;
		$('bq').value = S.bq;
		const bp = Array.from($('bpreset').options).map((o) => o.value);
		const brel = S.bfrom === 'prev' || (bp.includes(S.bfrom) && (S.bto || 'now') === 'now');
		$('bpreset').value = brel ? S.bfrom : 'custom';
		$('babsolute').hidden = brel;
		if (!brel) {
			const f = toEpoch(S.bfrom), t = toEpoch(S.bto || 'now');
			if (Number.isFinite(f)) $('bfrom').value = toLocalInput(f);
			if (Number.isFinite(t)) $('bto').value = toLocalInput(t);
		}
		if ($('type').value !== S.type && S.type) $('type').value = S.type;
	}

	/* ---- wiring ---- */

	function wire() {
		wireTimeline();
		$('queryform').addEventListener('submit', (e) => {
			e.preventDefault();
			run();
		});
		$('preset').addEventListener('change', () => {
			const v = $('preset').value;
			if (v === 'custom') {
				const f = toEpoch(S.from), t = toEpoch(S.to);
				$('from').value = toLocalInput(f);
				$('to').value = toLocalInput(t);
				S.from = iso(f);
				S.to = iso(t);
				$('absolute').hidden = false;
				writeHash();
				return;
			}
			S.from = v;
			S.to = 'now';
			$('absolute').hidden = true;
			run();
		});
		for (const id of ['from', 'to']) {
			$(id).addEventListener('change', () => {
				const v = fromLocalInput($(id).value);
				if (v) S[id] = v;
				writeHash();
			});
		}
		$('type').addEventListener('change', () => {
			S.type = $('type').value;
			run();
		});
		$('labelname').addEventListener('change', () => {
			const n = $('labelname').value;
			if (n) guarded('label values', () => loadValues(n));
		});
		$('labelvalue').addEventListener('change', () => {
			const name = $('labelname').value, value = $('labelvalue').value;
			if (!name || !value) return;
			const ms = (parseSelector($('q').value) || []).filter((m) => m.name !== name);
			ms.push({ name, op: $('labelop').value, value });
			$('q').value = formatSelector(ms);
			$('labelname').value = '';
			$('labelop').hidden = $('labelvalue').hidden = true;
			run();
		});
		$('chips').addEventListener('click', (e) => {
			const b = e.target.closest('button[data-i]');
			if (!b) return;
			const ms = parseSelector($('q').value) || [];
			ms.splice(+b.dataset.i, 1);
			$('q').value = formatSelector(ms);
			run();
		});
		$('q').addEventListener('input', () => {
			S.q = $('q').value;
			renderChips();
		});
		for (const b of document.querySelectorAll('#tabs [data-view]'))
			b.addEventListener('click', () => showView(b.dataset.view));
		let searchTimer = 0;
		$('search').addEventListener('input', () => {
			clearTimeout(searchTimer);
			searchTimer = setTimeout(() => {
				S.search = $('search').value.trim();
				writeHash();
				applySearch();
			}, 120);
		});
		$('resetzoom').addEventListener('click', () => flame.zoomTo(null));
		$('icicle').addEventListener('change', () => {
			S.icicle = $('icicle').checked ? '1' : '';
			writeHash();
			flame.setIcicle(!!S.icicle);
			diffFlame.setIcicle(!!S.icicle);
		});
		$('topfilter').addEventListener('input', renderTop);
		$('toptable').tHead.addEventListener('click', (e) => {
			const th = e.target.closest('th[data-sort]');
			if (!th) return;
			S.sort = th.dataset.sort;
			writeHash();
			renderTop();
		});
		$('toptable').tBodies[0].addEventListener('click', (e) => {
			const a = e.target.closest('a.find');
			if (!a) return;
			e.preventDefault();
			S.search = a.closest('tr').dataset.name;
			$('search').value = S.search;
			showView('flame');
			applySearch();
			writeHash();
		});
		$('bpreset').addEventListener('change', () => {
			const v = $('bpreset').value;
			if (v === 'custom') {
				const bw = baseWindow();
				$('bfrom').value = toLocalInput(toEpoch(bw.from));
				$('bto').value = toLocalInput(toEpoch(bw.to));
				S.bfrom = iso(toEpoch(bw.from));
				S.bto = iso(toEpoch(bw.to));
				$('babsolute').hidden = false;
			} else {
				S.bfrom = v;
				S.bto = v === 'prev' ? '' : 'now';
				$('babsolute').hidden = true;
			}
			writeHash();
		});
		for (const id of ['bfrom', 'bto']) {
			$(id).addEventListener('change', () => {
				const v = fromLocalInput($(id).value);
				if (v) S[id] = v;
				writeHash();
			});
		}
		$('rundiff').addEventListener('click', () => {
			S.bq = $('bq').value.trim();
			writeHash();
			cache.diff = null;
			refreshView();
		});
		$('missingtable').addEventListener('click', (e) => {
			const b = e.target.closest('button.copy');
			if (!b) return;
			const done = () => { b.textContent = 'copied'; setTimeout(() => { b.textContent = 'copy'; }, 1200); };
			if (navigator.clipboard && window.isSecureContext)
				navigator.clipboard.writeText(b.dataset.cmd).then(done, () => selectText(b.previousElementSibling));
			else
				selectText(b.previousElementSibling);
		});
		$('helpbtn').addEventListener('click', () => { $('help').hidden = !$('help').hidden; });
		$('help').addEventListener('click', () => { $('help').hidden = true; });
		document.addEventListener('keydown', onKey);
		window.addEventListener('hashchange', () => {
			const before = JSON.stringify(S);
			readHash();
			if (JSON.stringify(S) === before) return;
			syncControls();
			run().then(() => showView(S.view));
		});
	}

	function selectText(el) {
		const r = document.createRange();
		r.selectNodeContents(el);
		const s = window.getSelection();
		s.removeAllRanges();
		s.addRange(r);
	}

	function onKey(e) {
		if (e.ctrlKey || e.metaKey || e.altKey) return;
		const t = e.target;
		const typing = t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA');
		if (e.key === 'Escape') {
			if (!$('help').hidden) {
				$('help').hidden = true;
			} else if (t === $('search') || S.search) {
				$('search').value = '';
				S.search = '';
				writeHash();
				applySearch();
				if (typing) t.blur();
			} else if (typing) {
				t.blur();
			} else if (S.view === 'flame') {
				flame.zoomOut();
			}
			return;
		}
		if (typing) return;
		const acts = {
			'/': () => { showView('flame'); $('search').focus(); $('search').select(); },
			f: () => showView('flame'),
			t: () => showView('top'),
			d: () => showView('diff'),
			m: () => showView('missing'),
			i: () => { $('icicle').checked = !$('icicle').checked; $('icicle').dispatchEvent(new Event('change')); },
			z: () => flame.zoomOut(),
			0: () => flame.zoomTo(null),
			r: () => { if (!STATIC) run(); },
			'[': () => { if (!STATIC) shiftWindow(-1); },
			']': () => { if (!STATIC) shiftWindow(1); },
			'?': () => { $('help').hidden = !$('help').hidden; },
		};
		const a = acts[e.key];
		if (a) {
			e.preventDefault();
			a();
		}
	}

	/* ---- start ---- */

	function startStatic() {
		document.body.classList.add('static');
		const m = STATIC.meta || {};
		if (m.q) S.q = m.q;
		if (m.from) S.from = m.from;
		if (m.to) S.to = m.to;
		for (const el of document.querySelectorAll('#queryform input, #queryform select, #queryform button'))
			el.disabled = true;
		if (STATIC.diff) {
			if (m.bq) S.bq = m.bq;
			for (const id of ['bq', 'bpreset', 'bfrom', 'bto', 'rundiff']) $(id).disabled = true;
			$('bpreset').hidden = $('rundiff').hidden = true;
		} else {
			document.querySelector('#tabs [data-view="diff"]').hidden = true;
			if (S.view === 'diff') S.view = 'flame';
		}
		$('q').value = S.q;
		renderChips();
		if (m.title) document.title = m.title;
		const note = $('status');
		note.hidden = false;
		note.className = 'status info';
		note.textContent = m.note || 'Offline snapshot: the data is inlined in this file.';
	}

	async function start() {
		readHash();
		wire();
		if (STATIC) {
			startStatic();
		} else {
			syncControls();
			guarded('labels', loadLabels);
			await guarded('sample types', loadTypes);
		}
		syncControls();
		showView(S.view);
		if (S.view !== 'missing') guarded('missing debug info', loadMissing);
		guarded('timeline', loadTimeline);
		flame.setIcicle(!!S.icicle);
		diffFlame.o.icicle = !!S.icicle;
	}

	start();
})();
