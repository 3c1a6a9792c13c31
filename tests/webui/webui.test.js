/*
 * The web UI in a real browser: Debian's chromium (/usr/bin/chromium), headless, driven by
 * playwright-core (no browser download). Run by tests/run-webui.sh against a fleetsymd that
 * holds the profiles it ingested.
 *
 *   node webui.test.js URL SHOTS_DIR OFFLINE_HTML < expect.json
 *
 * expect.json: {"hot": "hash_block", "inlined": "mix", "search": "parse", "missing": BUILD_ID,
 * "q": SELECTOR_V2, "bq": SELECTOR_V1, "label": NAME, "value": VALUE}.
 * Prints "ok   ..." / "FAILED: ..." per check and exits 1 on any failure. Every page's console
 * errors and uncaught exceptions fail the test.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [url, shots, offline] = process.argv.slice(2);
const E = JSON.parse(fs.readFileSync(0, 'utf8'));
let failed = 0;
const problems = [];

function ok(what) {
	console.log('ok   ' + what);
}

function fail(what) {
	console.log('FAILED: ' + what);
	failed = 1;
}

async function check(what, fn) {
	try {
		const r = await fn();
		if (r === false) fail(what);
		else ok(what + (typeof r === 'string' ? ': ' + r : ''));
	} catch (e) {
		fail(`${what}: ${e.message.split('\n')[0]}`);
	}
}

function watch(page, name) {
	page.on('console', (m) => {
		if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`);
	});
	page.on('pageerror', (e) => problems.push(`${name}: uncaught: ${e.message}`));
	page.on('requestfailed', (r) => problems.push(`${name}: request failed: ${r.url()} (${r.failure().errorText})`));
}

// close a second page once its own requests are done: closing it mid-request (the labels or
// missing panel of a slow server) would fail those requests, which is not the page's fault
async function closePage(p) {
	await p.waitForLoadState('networkidle', { timeout: 15000 }).catch(() => {});
	await p.close();
}

const shot = (page, name) => page.screenshot({ path: path.join(shots, name), fullPage: true });
const frame = (page, name) => page.locator(`#flame .fr[data-name="${name}"]`).first();
const hash = (o) => '#' + new URLSearchParams(o).toString();

async function widthShare(page, name) {
	return page.evaluate((n) => {
		const el = document.querySelector(`#flame .fr[data-name="${CSS.escape(n)}"]`);
		return el ? el.getBoundingClientRect().width / document.getElementById('flame').clientWidth : 0;
	}, name);
}

async function main() {
	fs.mkdirSync(shots, { recursive: true });
	const browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		       '--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	const ctx = await browser.newContext({ viewport: { width: 1400, height: 820 } });
	const page = await ctx.newPage();
	watch(page, 'live');

	await check('the page loads and draws the flame graph', async () => {
		const r = await page.goto(url + '/', { waitUntil: 'load' });
		if (r.status() !== 200) throw new Error('status ' + r.status());
		await frame(page, E.hot).waitFor({ timeout: 15000 });
		await shot(page, '01-flame.png');
		return `"${await page.title()}", ${await page.locator('#flame .fr').count()} frames drawn`;
	});

	await check(`the hot function ${E.hot} is the widest frame below its callers`, async () => {
		const callers = new Set(['root', 'main', 'handle_request']);
		const w = await widthShare(page, E.hot);
		const widths = await page.evaluate(() => {
			const W = document.getElementById('flame').clientWidth;
			return Array.from(document.querySelectorAll('#flame .fr'))
				.map((el) => [el.dataset.name, el.getBoundingClientRect().width / W]);
		});
		const wider = widths.filter(([n, x]) => !callers.has(n) && x > w + 1e-6);
		if (w < 0.4) throw new Error(`its width is ${(w * 100).toFixed(1)}% of the graph`);
		if (wider.length) throw new Error('wider: ' + wider.map(([n]) => n).join(', '));
		return `${(w * 100).toFixed(1)}% of the width`;
	});

	await check(`the tooltip of ${E.inlined} says self, total, file:line and inlined`, async () => {
		await page.locator(`#flame .fr[data-name="${E.inlined}"]`).first().hover();
		const t = await page.locator('#tooltip').innerText();
		for (const want of ['self', 'total', 'workload.c:', 'inlined'])
			if (!t.includes(want)) throw new Error(`no "${want}" in: ${t.replace(/\n/g, ' | ')}`);
		await shot(page, '02-tooltip.png');
		return t.replace(/\n/g, ' | ');
	});

	await check(`clicking ${E.hot} zooms into it (full width, URL has zoom=)`, async () => {
		await page.mouse.move(0, 0);
		await frame(page, E.hot).click();
		await page.waitForFunction(() => location.hash.includes('zoom='));
		const w = await widthShare(page, E.hot);
		if (w < 0.99) throw new Error(`width after the click ${(w * 100).toFixed(1)}%`);
		await shot(page, '03-zoom.png');
		return decodeURIComponent(await page.evaluate(() => location.hash));
	});

	await check('Esc / reset zoom returns to the whole graph', async () => {
		await page.click('#resetzoom');
		const w = await widthShare(page, E.hot);
		if (w > 0.95) throw new Error('still zoomed');
		return `${E.hot} back to ${(w * 100).toFixed(1)}%`;
	});

	await check(`searching "${E.search}" highlights matches and shows their share`, async () => {
		await page.press('body', '/');
		await page.keyboard.type(E.search);
		await page.waitForFunction(() => document.querySelectorAll('#flame .fr.hit').length > 0);
		const hits = await page.locator('#flame .fr.hit').evaluateAll((els) => els.map((e) => e.dataset.name));
		const info = await page.locator('#matchinfo').innerText();
		if (!hits.every((n) => n.includes(E.search)) || !/%/.test(info))
			throw new Error(`hits ${hits} info "${info}"`);
		await shot(page, '04-search.png');
		return `${hits.join(', ')}; "${info}"`;
	});

	await check('the view is in the URL: a reload restores search and zoom', async () => {
		await frame(page, E.hot).click();
		await page.waitForFunction(() => location.hash.includes('zoom='));
		const h = await page.evaluate(() => location.hash);
		const p2 = await ctx.newPage();
		watch(p2, 'reload');
		await p2.goto(url + '/' + h);
		await p2.locator(`#flame .fr[data-name="${E.hot}"]`).waitFor({ timeout: 15000 });
		const s = await p2.inputValue('#search');
		const w = await widthShare(p2, E.hot);
		await closePage(p2);
		if (s !== E.search || w < 0.99) throw new Error(`search "${s}", ${E.hot} width ${w}`);
		return decodeURIComponent(h);
	});

	await check('keyboard: i flips to icicle (root on top), t opens the top table', async () => {
		await page.locator('#search').blur();
		await page.keyboard.press('Escape');
		await page.keyboard.press('0');
		// read in one task, so a re-render cannot detach the frame between lookup and measure
		const rootY = () => page.evaluate(() => {
			const el = document.querySelector('#flame .fr[data-name="root"]');
			return el ? el.getBoundingClientRect().y : null;
		});
		const before = await rootY();
		await page.keyboard.press('i');
		const after = await rootY();
		if (before === null || after === null || !(after < before)) throw new Error(`root y ${before} -> ${after}`);
		await shot(page, '05-icicle.png');
		await page.keyboard.press('i');
		await page.keyboard.press('t');
		await page.locator('#toptable tbody tr').first().waitFor();
		return `root moved from y=${before} to y=${after}`;
	});

	await check('the top-functions table ranks the inlined hot code first', async () => {
		const rows = await page.locator('#toptable tbody tr').evaluateAll((trs) =>
			trs.slice(0, 4).map((tr) => tr.innerText.replace(/\s+/g, ' ').trim()));
		await shot(page, '06-top.png');
		if (!rows[0].includes(E.inlined)) throw new Error(rows.join(' / '));
		return rows.join(' / ');
	});

	await check(`the label picker lists ${E.label} and its value ${E.value}`, async () => {
		await page.keyboard.press('f');
		await page.locator(`#labelname option[value="${E.label}"]`).waitFor({ state: 'attached' });
		await page.selectOption('#labelname', E.label);
		await page.locator(`#labelvalue option[value="${E.value}"]`).waitFor({ state: 'attached' });
		await page.selectOption('#labelvalue', E.value);
		await page.waitForFunction((v) => location.hash.includes(encodeURIComponent(v)), E.value);
		await frame(page, E.hot).waitFor();
		return await page.inputValue('#q');
	});

	await check('dragging on the timeline picks an absolute window', async () => {
		await page.locator('#timeline').waitFor({ state: 'visible' });
		const bars = await page.locator('#tlsvg rect.b').count();
		const box = await page.locator('#tlsvg').boundingBox();
		await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
		await page.mouse.down();
		await page.mouse.move(box.x + box.width * 0.995, box.y + box.height / 2, { steps: 5 });
		await page.mouse.up();
		await page.waitForFunction(() => /from=\d{4}-/.test(location.hash));
		await frame(page, E.hot).waitFor({ timeout: 15000 });
		const h = decodeURIComponent(await page.evaluate(() => location.hash));
		const preset = await page.inputValue('#preset');
		await shot(page, '07-timeline.png');
		if (preset !== 'custom') throw new Error('the time picker shows ' + preset);
		return `${bars} steps; ${h}`;
	});

	await check('the diff view renders v2 against v1: legend, both totals, hot function red', async () => {
		const p3 = await ctx.newPage();
		watch(p3, 'diff');
		await p3.goto(url + '/' + hash({ view: 'diff', q: E.q, bq: E.bq, bfrom: 'now-1h', bto: 'now' }));
		await p3.locator(`#diffflame .fr[data-name="${E.hot}"]`).waitFor({ timeout: 15000 });
		const legend = await p3.locator('#legend').innerText();
		// Both colours in one task: the flame graph may re-render (a resize) between a locator's
		// lookup and its evaluate, and a detached element's computed colour is "".
		const [bg, other] = await (await p3.waitForFunction((hot) => {
			const c = (name) => {
				const el = document.querySelector(`#diffflame .fr[data-name="${CSS.escape(name)}"]`);
				return el ? getComputedStyle(el).backgroundColor : '';
			};
			const a = c(hot), b = c('parse_request');
			return a && b ? [a, b] : null;
		}, E.hot)).jsonValue();
		await p3.locator(`#diffflame .fr[data-name="${E.hot}"]`).hover();
		const tip = await p3.locator('#tooltip').innerText();
		await shot(p3, '08-diff.png');
		await closePage(p3);
		const rgb = (s) => (s.match(/\d+/g) || []).map(Number);
		const [r, g, b] = rgb(bg), [r2, g2, b2] = rgb(other);
		if (!(r > g + 40 && r > b + 40)) throw new Error(`${E.hot} is ${bg}, not red`);
		if (!(b2 > r2)) throw new Error(`parse_request is ${other}, not blue`);
		if (!/base .*compare /s.test(legend)) throw new Error('legend: ' + legend);
		return `${E.hot} ${bg}, parse_request ${other}; legend "${legend.replace(/\n/g, ' ')}"; tooltip "${tip.replace(/\n/g, ' | ')}"`;
	});

	await check(`the missing panel lists ${E.missing} with its fleetsym-upload command`, async () => {
		await page.keyboard.press('m');
		const row = page.locator(`#missingtable tr[data-build-id="${E.missing}"]`);
		await row.waitFor({ timeout: 15000 });
		const text = await row.innerText();
		const badge = await page.locator('#missingcount').innerText();
		await shot(page, '09-missing.png');
		if (!/fleetsym-upload --server \S+ \S*libdemocodec\.so/.test(text)) throw new Error(text);
		return `${text.replace(/\s+/g, ' ')} (tab badge ${badge})`;
	});

	if (offline) {
		await check('the offline file (demo/offline_html.py) renders without a server', async () => {
			const p4 = await ctx.newPage();
			watch(p4, 'offline');
			const requests = [];
			p4.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
			await p4.goto('file://' + path.resolve(offline));
			await p4.locator(`#flame .fr[data-name="${E.hot}"]`).waitFor({ timeout: 15000 });
			await p4.keyboard.press('m');
			await p4.locator(`#missingtable tr[data-build-id="${E.missing}"]`).waitFor();
			await p4.keyboard.press('f');
			await shot(p4, '10-offline.png');
			await closePage(p4);
			if (requests.length) throw new Error('it fetched ' + requests.join(' '));
			return 'flame graph and missing panel from the inlined data, no request';
		});
	}

	await check('no console errors, uncaught exceptions or failed requests', async () => {
		if (problems.length) throw new Error(problems.join('; '));
	});
	await browser.close();
}

main().then(() => process.exit(failed), (e) => {
	console.log('FAILED: ' + e.stack);
	process.exit(1);
});
