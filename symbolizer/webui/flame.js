/*
 * flame.js - the flame graph: a call tree drawn as absolutely positioned boxes, one per frame
 * at least MIN_PX wide, so that the browser does the text layout and every frame is a DOM
 * element a test (or a screen reader) can find by name.
 *
 * The tree comes from /api/v1/query?format=json (or /api/v1/diff) and is normalised once into
 * nodes {name, self, total, file, line, inlined, buildId, kernel, unknown, children, parent,
 * depth}; widths are node.total / zoom.total. Children sit left-aligned under their parent in
 * name order (the classic flamegraph.pl layout), so the same code paths keep their place from
 * one query to the next; the gap at a frame's right end is its self time.
 */
(function (global) {
	'use strict';

	const ROW = 18;
	const MIN_PX = 0.6;
	const LABEL_PX = 28;

	function esc(s) {
		return String(s).replace(/[&<>"']/g, (c) => ({
			'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
		})[c]);
	}

	function hash(s) {
		let h = 2166136261;
		for (let i = 0; i < s.length; i++) {
			h ^= s.charCodeAt(i);
			h = Math.imul(h, 16777619);
		}
		return h >>> 0;
	}

	function num(v) {
		const n = Number(v);
		return Number.isFinite(n) ? n : 0;
	}

	/* Values in the unit of the sample type: nanoseconds as time, anything else as a count. */
	function fmtValue(v, unit) {
		const a = Math.abs(v);
		if (unit === 'nanoseconds') {
			if (a >= 3600e9) return (v / 3600e9).toFixed(2) + ' h';
			if (a >= 60e9) return (v / 60e9).toFixed(2) + ' min';
			if (a >= 1e9) return (v / 1e9).toFixed(2) + ' s';
			if (a >= 1e6) return (v / 1e6).toFixed(1) + ' ms';
			if (a >= 1e3) return (v / 1e3).toFixed(1) + ' µs';
			return v + ' ns';
		}
		if (unit === 'bytes') {
			if (a >= 2 ** 30) return (v / 2 ** 30).toFixed(2) + ' GiB';
			if (a >= 2 ** 20) return (v / 2 ** 20).toFixed(2) + ' MiB';
			if (a >= 2 ** 10) return (v / 2 ** 10).toFixed(1) + ' KiB';
			return v + ' B';
		}
		return Math.round(v).toLocaleString('en-US');
	}

	function pct(x) {
		if (!Number.isFinite(x)) return '–';
		const a = Math.abs(x * 100);
		return (x * 100).toFixed(a >= 10 || a === 0 ? 1 : a >= 0.1 ? 2 : 3) + '%';
	}

	/* "libfoo.so+0x1234" and friends: frames nothing could name. */
	const UNKNOWN_RE = /\+0x[0-9a-f]+$/i;

	/*
	 * One raw JSON node into a normalised node. Field names follow docs/api.md; a few aliases
	 * are taken so that a pprof-style or speedscope-style tree also renders.
	 */
	function normNode(r, parent, depth, st) {
		const n = {
			name: String(r.name ?? r.function ?? r.func ?? '?'),
			self: num(r.self ?? r.flat),
			total: num(r.total ?? r.value ?? r.cum),
			file: r.file || r.filename || '',
			line: num(r.line),
			inlined: !!r.inlined,
			buildId: r.build_id || r.buildid || '',
			module: r.module || r.mapping || '',
			kernel: !!r.kernel,
			unknown: !!(r.unresolved || r.unknown),
			other: !!r.other,
			pruned: num(r.pruned),
			parent: parent,
			depth: depth,
			children: [],
			id: st.next++,
		};
		const b = r.base && typeof r.base === 'object' ? r.base : null;
		n.baseSelf = num(b ? b.self : (r.base_self ?? r.left_self));
		n.baseTotal = num(b ? b.total : (r.base_total ?? r.base ?? r.left ?? r.left_total));
		if (!n.unknown && !n.file && UNKNOWN_RE.test(n.name)) n.unknown = true;
		const kids = Array.isArray(r.children) ? r.children : [];
		let sum = 0, bsum = 0;
		for (const k of kids) {
			if (!k || typeof k !== 'object') continue;
			const c = normNode(k, n, depth + 1, st);
			n.children.push(c);
			sum += c.total;
			bsum += c.baseTotal;
		}
		if (!('total' in r) && !('value' in r) && !('cum' in r)) n.total = n.self + sum;
		if (!('self' in r) && !('flat' in r)) n.self = Math.max(0, n.total - sum);
		if (!b && !('base_self' in r) && !('left_self' in r))
			n.baseSelf = Math.max(0, n.baseTotal - bsum);
		n.children.sort((a, c) => (a.name < c.name ? -1 : a.name > c.name ? 1 : 0));
		if (depth > st.maxDepth) st.maxDepth = depth;
		return n;
	}

	function normalize(raw) {
		const st = { next: 0, maxDepth: 0 };
		const root = normNode(raw, null, 0, st);
		root.isRoot = true;
		return root;
	}

	function walk(n, fn) {
		const stack = [n];
		while (stack.length) {
			const x = stack.pop();
			fn(x);
			for (let i = x.children.length - 1; i >= 0; i--) stack.push(x.children[i]);
		}
	}

	/* The path of names from below the root to N, the zoom as it goes into the URL. */
	function pathOf(n) {
		const p = [];
		for (; n && n.parent; n = n.parent) p.push(n.name);
		return p.reverse();
	}

	function findPath(root, names) {
		let n = root;
		for (const name of names) {
			const c = n.children.find((k) => k.name === name);
			if (!c) break;
			n = c;
		}
		return n;
	}

	/* Matches: a string is a case-insensitive substring of the name or file; /re/ a regex. */
	function matcher(q) {
		if (!q) return null;
		const m = /^\/(.*)\/([i]*)$/.exec(q);
		if (m) {
			try {
				const re = new RegExp(m[1], m[2]);
				return (n) => re.test(n.name) || re.test(n.file);
			} catch (e) {
				return null;
			}
		}
		const s = q.toLowerCase();
		return (n) => n.name.toLowerCase().includes(s) || n.file.toLowerCase().includes(s);
	}

	function colorOf(n) {
		if (n.isRoot) return 'hsl(220, 8%, 78%)';
		if (n.other) return 'hsl(220, 6%, 86%)';
		if (n.unknown) return 'hsl(0, 0%, 72%)';
		const h = hash(n.name);
		if (n.kernel) return `hsl(${190 + (h % 25)}, 55%, ${62 + ((h >> 8) % 12)}%)`;
		const hue = h % 50;
		const light = 55 + ((h >> 8) % 13) + (n.inlined ? 10 : 0);
		return `hsl(${hue}, ${n.inlined ? 70 : 85}%, ${light}%)`;
	}

	/* Diff colour: red = its share of the total grew, blue = shrank; T in [-1, 1]. */
	function diffColor(t, isNew) {
		if (isNew) return 'hsl(0, 85%, 55%)';
		const a = Math.min(1, Math.abs(t));
		if (a < 0.02) return 'hsl(220, 5%, 88%)';
		return t > 0 ? `hsl(0, 85%, ${92 - 40 * a}%)` : `hsl(215, 85%, ${92 - 40 * a}%)`;
	}

	class FlameGraph {
		/*
		 * EL: the container; OPTS: {tooltip: element, onZoom(node), unit, diff: bool,
		 * icicle: bool}.
		 */
		constructor(el, opts) {
			this.el = el;
			this.o = Object.assign({ unit: '', diff: false, icicle: false }, opts || {});
			this.root = null;
			this.zoom = null;
			this.match = null;
			this.items = [];
			this.hover = null;
			el.classList.add('flamegraph');
			el.addEventListener('click', (e) => this.onClick(e));
			el.addEventListener('mousemove', (e) => this.onMove(e));
			el.addEventListener('mouseleave', () => this.hideTip());
			this.ro = null;
			if (global.ResizeObserver) {
				let w = 0;
				this.ro = new ResizeObserver(() => {
					if (this.el.clientWidth !== w && this.root) {
						w = this.el.clientWidth;
						this.render();
					}
				});
				this.ro.observe(el);
			}
		}

		/* RAW: the JSON tree; META: {unit, total, baseTotal} (diff: the two sums). */
		setData(raw, meta) {
			this.root = raw ? normalize(raw) : null;
			this.meta = meta || {};
			if (this.meta.unit !== undefined) this.o.unit = this.meta.unit;
			this.zoom = this.root;
			if (this.root && this.o.diff) this.prepareDiff();
			return this.root;
		}

		prepareDiff() {
			const T = this.meta.total || this.root.total || 1;
			const B = this.meta.baseTotal || this.root.baseTotal || 1;
			let max = 0;
			walk(this.root, (n) => {
				n.delta = n.total / T - n.baseTotal / B;
				n.isNew = n.baseTotal === 0 && n.total > 0 && !n.isRoot;
				if (!n.isRoot && !n.isNew) max = Math.max(max, Math.abs(n.delta));
			});
			this.maxDelta = Math.max(max, 0.001);
		}

		setIcicle(on) {
			this.o.icicle = !!on;
			this.render();
		}

		setZoomPath(names) {
			if (!this.root) return;
			this.zoom = names && names.length ? findPath(this.root, names) : this.root;
			this.render();
		}

		zoomTo(n) {
			this.zoom = n || this.root;
			this.render();
			if (this.o.onZoom) this.o.onZoom(this.zoom);
		}

		zoomOut() {
			if (this.zoom && this.zoom.parent) this.zoomTo(this.zoom.parent);
		}

		/* Highlight matches of Q; returns {value, share, count} over the whole tree. */
		setSearch(q) {
			this.match = matcher(q);
			this.render();
			return this.matchStats();
		}

		matchStats() {
			if (!this.root || !this.match) return null;
			let value = 0, count = 0;
			const m = this.match;
			const visit = (n, inside) => {
				const hit = !n.isRoot && m(n);
				if (hit) count++;
				if (hit && !inside) value += n.total;
				for (const c of n.children) visit(c, inside || hit);
			};
			visit(this.root, false);
			return { value, count, share: this.root.total ? value / this.root.total : 0 };
		}

		layout() {
			const items = [];
			const z = this.zoom || this.root;
			const W = Math.max(1, this.el.clientWidth);
			const minFrac = MIN_PX / W;
			const anc = [];
			for (let a = z.parent; a; a = a.parent) anc.push(a);
			for (const a of anc.reverse()) items.push({ n: a, x: 0, w: 1, anc: true });
			const total = z.total || 1;
			const place = (n, x, w) => {
				items.push({ n, x, w, anc: false });
				let cx = x;
				for (const c of n.children) {
					const cw = c.total / total;
					if (cw >= minFrac) place(c, cx, cw);
					cx += cw;
				}
			};
			place(z, 0, 1);
			return { items, W };
		}

		render() {
			const el = this.el;
			this.hideTip();
			if (!this.root || !this.root.total) {
				el.innerHTML = '<div class="empty">No samples in this selection.</div>';
				el.style.height = '';
				this.items = [];
				return;
			}
			const { items, W } = this.layout();
			let maxDepth = 0;
			for (const it of items) if (it.n.depth > maxDepth) maxDepth = it.n.depth;
			const html = [];
			const m = this.match;
			for (let i = 0; i < items.length; i++) {
				const it = items[i], n = it.n;
				const y = this.o.icicle ? n.depth * ROW : (maxDepth - n.depth) * ROW;
				let cls = 'fr';
				if (it.anc) cls += ' anc';
				if (n.inlined) cls += ' inl';
				if (m) cls += !n.isRoot && m(n) ? ' hit' : ' dim';
				const bg = this.o.diff && !n.isRoot ? diffColor(n.delta / this.maxDelta, n.isNew)
								    : colorOf(n);
				const text = n.isRoot ? 'all · ' + fmtValue(n.total, this.o.unit) : (n.inlined ? '▸ ' : '') + n.name;
				const label = it.w * W >= LABEL_PX ? esc(text) : '';
				html.push(`<div class="${cls}" data-i="${i}" data-name="${esc(n.name)}" ` +
					  `style="left:${(it.x * 100).toFixed(4)}%;width:${(it.w * 100).toFixed(4)}%;` +
					  `top:${y}px;background:${bg}">${label}</div>`);
			}
			el.style.height = (maxDepth + 1) * ROW + 'px';
			el.innerHTML = html.join('');
			this.items = items;
		}

		itemAt(e) {
			const t = e.target.closest ? e.target.closest('.fr') : null;
			if (!t || !this.el.contains(t)) return null;
			return this.items[+t.dataset.i] || null;
		}

		onClick(e) {
			const it = this.itemAt(e);
			if (!it) return;
			if (it.n !== this.zoom) this.zoomTo(it.n);
		}

		onMove(e) {
			const it = this.itemAt(e);
			const tip = this.o.tooltip;
			if (!tip) return;
			if (!it) return this.hideTip();
			if (this.hover !== it.n) {
				this.hover = it.n;
				tip.innerHTML = this.o.diff ? this.diffTip(it.n) : this.tip(it.n);
			}
			tip.hidden = false;
			const pad = 14, r = tip.getBoundingClientRect();
			let x = e.clientX + pad, y = e.clientY + pad;
			if (x + r.width > global.innerWidth - 4) x = Math.max(4, e.clientX - r.width - pad);
			if (y + r.height > global.innerHeight - 4) y = Math.max(4, e.clientY - r.height - pad);
			tip.style.left = x + 'px';
			tip.style.top = y + 'px';
		}

		hideTip() {
			this.hover = null;
			if (this.o.tooltip) this.o.tooltip.hidden = true;
		}

		where(n) {
			const rows = [];
			if (n.file) rows.push(['source', esc(n.file) + (n.line ? ':' + n.line : '')]);
			if (n.inlined) rows.push(['inlined', 'yes — inlined into its caller']);
			if (n.kernel) rows.push(['kernel', 'yes']);
			if (n.buildId) rows.push(['build ID', `<code>${esc(n.buildId)}</code>`]);
			if (n.module) rows.push(['module', esc(n.module)]);
			if (n.unknown) rows.push(['', 'no debug info for this address (see Missing debug info)']);
			if (n.other) rows.push(['', `${n.pruned} smaller frames here, summed (the tree was pruned)`]);
			return rows;
		}

		tip(n) {
			const u = this.o.unit, T = this.root.total || 1, Z = (this.zoom || this.root).total || 1;
			const rows = [
				['self', `${fmtValue(n.self, u)} <span class="mut">${pct(n.self / T)}</span>`],
				['total', `${fmtValue(n.total, u)} <span class="mut">${pct(n.total / T)}</span>`],
			];
			if (this.zoom && this.zoom !== this.root) rows.push(['of zoomed', pct(n.total / Z)]);
			return this.tipHtml(n, rows.concat(this.where(n)));
		}

		diffTip(n) {
			const u = this.o.unit;
			const T = this.meta.total || this.root.total || 1;
			const B = this.meta.baseTotal || this.root.baseTotal || 1;
			const d = n.delta || 0;
			const rows = [
				['base', `${fmtValue(n.baseTotal, u)} <span class="mut">${pct(n.baseTotal / B)} total, ${pct(n.baseSelf / B)} self</span>`],
				['compare', `${fmtValue(n.total, u)} <span class="mut">${pct(n.total / T)} total, ${pct(n.self / T)} self</span>`],
				['change', `<b class="${d > 0 ? 'up' : d < 0 ? 'down' : ''}">${d > 0 ? '+' : ''}${(d * 100).toFixed(2)} pp</b> of the total` + (n.isNew ? ' (new)' : '')],
			];
			return this.tipHtml(n, rows.concat(this.where(n)));
		}

		tipHtml(n, rows) {
			return `<div class="tname">${esc(n.name)}${n.inlined ? ' <span class="tag">inlined</span>' : ''}</div>` +
				'<table>' + rows.map((r) => `<tr><th>${r[0]}</th><td>${r[1]}</td></tr>`).join('') +
				'</table>';
		}
	}

	/*
	 * Flat per-function rows from the tree: self sums every frame of the function; total
	 * counts a frame only when no caller frame of the same function is above it (recursion).
	 */
	function topFromTree(root) {
		const by = new Map();
		const visit = (n, onPath) => {
			let r = null;
			if (n.other) return;
			if (!n.isRoot) {
				r = by.get(n.name);
				if (!r) {
					r = { name: n.name, self: 0, total: 0, file: n.file, line: n.line,
					      inlined: n.inlined, unknown: n.unknown, buildId: n.buildId };
					by.set(n.name, r);
				}
				r.self += n.self;
				if (!onPath.has(n.name)) r.total += n.total;
			}
			if (!n.children.length) return;
			const added = !n.isRoot && !onPath.has(n.name);
			if (added) onPath.add(n.name);
			for (const c of n.children) visit(c, onPath);
			if (added) onPath.delete(n.name);
		};
		visit(root, new Set());
		return Array.from(by.values());
	}

	global.Flame = { FlameGraph, normalize, topFromTree, fmtValue, pct, esc, pathOf, walk };
})(window);
