// The controller's status page in a real browser: a realistic snapshot (the paper's Figure 5
// story: load rises, the group grows on blade1, blade2 is powered on and takes a member, the
// load falls and the group shrinks back) served over node:http, opened in Debian's chromium
// through playwright-core. The page must read right, the timeline must render one line per
// series, nothing may be fetched from elsewhere, and hostile names must stay text.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderStatusPage, renderTimelineSvg, type StatusPoint, type StatusSnapshot } from '../../provider/src/controller/status-page.ts';
import type { DecisionRecord } from '../../provider/src/controller/store.ts';
import { launchChromium } from '../lib/browser.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOT = path.join(repo, 'test-results/controller-status.png');

const NOW = Date.UTC(2025, 2, 14, 15, 30, 0);
const SPAN_S = 720;
const FROM = NOW - SPAN_S * 1000;
/** Seconds into the timeline → epoch ms. */
const t = (s: number) => FROM + s * 1000;

/** Deterministic sensor wobble, so the lines look measured and the screenshot is stable. */
const wobble = (s: number, k: number) => 3 * Math.sin(s / 37 + k) + 1.5 * Math.sin(s / 11 + 2 * k);

function sampled(f: (s: number) => number | null): StatusPoint[] {
  const out: StatusPoint[] = [];
  for (let s = 0; s <= SPAN_S; s += 10) {
    const v = f(s);
    if (v !== null) out.push({ at: t(s), value: Math.round(v * 10) / 10 });
  }
  return out;
}

/** blade1 carries the group from the start: ~95 W with one member, ~120 W with more. */
const blade1Watts = (s: number) => (s < 60 ? 96 : s < 210 ? 121 : s < 510 ? 114 : 124) + wobble(s, 0);
/** blade2 is off, powered on at 100 s (a burst of self-test at full power), then takes members. */
const blade2Watts = (s: number) => (s < 100 ? 6 : s < 140 ? 214 : s < 210 ? 103 : s < 420 ? 116 : 127) + (s < 100 ? 0 : wobble(s, 1));

const decision = (s: number, kind: DecisionRecord['kind'], subject: string, action: string, reason: string): DecisionRecord => ({ at: t(s), kind, subject, action, reason });

const NOTE = 'every powered server ≥ 90 % (blade1 92 %, blade2 91 %), but no server is left to power on (blade3: BMC not answering)';
const SCALE_OUT = 'scale out web: group cpu 94 % ≥ 90 % for 60 s → web-2 on blade1';

function realisticSnapshot(): StatusSnapshot {
  return {
    now: NOW,
    controller: { id: 'ctl-a1f3', leader: true, intervalSeconds: 15 },
    servers: [
      { id: 'blade1@qemu+tls://10.20.0.11/system', name: 'blade1', power: 'on', watts: 126, cpu: 0.92, bmc: 'answering', domains: 2 },
      { id: 'blade2@qemu+tls://10.20.0.12/system', name: 'blade2', power: 'on', watts: 128, cpu: 0.91, bmc: 'answering', domains: 1 },
      { id: 'blade3@qemu+tls://10.20.0.13/system', name: 'blade3', power: 'unknown', watts: null, cpu: null, bmc: 'not answering', domains: null },
    ],
    groups: [
      {
        name: 'web', metric: 'cpu', min: 1, max: 4, dnsName: 'web.storm.lan', load: 0.34, high: 0.9, low: 0.3, deleting: false,
        members: [{ name: 'web-1', server: 'blade1', cpu: 0.34, ready: true }],
        decisions: [
          decision(660, 'scale', 'web', 'in', 'scale in web: group cpu 24 % < 30 % for 300 s → removed web-2'),
          decision(510, 'scale', 'web', 'in', 'scale in web: group cpu 21 % < 30 % for 300 s → removed web-3'),
          decision(210, 'scale', 'web', 'out', 'scale out web: group cpu 93 % ≥ 90 % for 60 s → web-3 on blade2'),
          decision(60, 'scale', 'web', 'out', SCALE_OUT),
        ],
      },
      {
        name: 'mail', metric: 'queue', min: 1, max: 2, dnsName: 'mx.storm.lan', load: 264, high: 200, low: 20, deleting: false,
        members: [
          { name: 'mail-1', server: 'blade1', cpu: 0.95, ready: true },
          { name: 'mail-2', server: 'blade2', cpu: 0.88, ready: true },
        ],
        decisions: [decision(420, 'scale', 'mail', 'out', 'scale out mail: group queue 231 ≥ 200 for 60 s → mail-2 on blade2')],
      },
    ],
    power: {
      note: NOTE,
      decisions: [
        decision(705, 'power', 'blade3', 'none', NOTE),
        decision(100, 'power', 'blade2', 'on', 'every powered server ≥ 90 % (blade1 93 %) → power on blade2 (boots in ~40 s)'),
      ],
    },
    timeline: {
      from: FROM,
      to: NOW,
      watts: [
        { server: 'blade1', points: sampled(blade1Watts) },
        { server: 'blade2', points: sampled(blade2Watts) },
        { server: 'blade3', points: [] },
      ],
      instances: [
        { group: 'web', points: [[0, 1], [60, 2], [210, 3], [510, 2], [660, 1]].map(([s, v]) => ({ at: t(s!), value: v! })) },
        { group: 'mail', points: [[0, 1], [420, 2]].map(([s, v]) => ({ at: t(s!), value: v! })) },
      ],
    },
  };
}

const HOSTILE = `<script>alert(1)</script>"&'`;

function hostileSnapshot(): StatusSnapshot {
  const s = realisticSnapshot();
  s.servers[0]!.name = HOSTILE;
  s.groups[0]!.name = HOSTILE;
  s.groups[0]!.members[0]!.name = `<img src=x onerror=alert(2)>`;
  s.power.note = HOSTILE;
  s.timeline.watts[0]!.server = HOSTILE;
  return s;
}

describe('controller status page in a browser', () => {
  let server: Server;
  let base: string;

  before(async () => {
    const pages: Record<string, { type: string; body: string }> = {
      '/status': { type: 'text/html; charset=utf-8', body: renderStatusPage(realisticSnapshot()) },
      '/status/timeline.svg': { type: 'image/svg+xml; charset=utf-8', body: renderTimelineSvg(realisticSnapshot().timeline) },
      '/hostile': { type: 'text/html; charset=utf-8', body: renderStatusPage(hostileSnapshot()) },
    };
    server = createServer((req, res) => {
      const page = pages[new URL(req.url ?? '/', 'http://x').pathname];
      if (!page) return void res.writeHead(404).end('not found');
      res.writeHead(200, { 'Content-Type': page.type }).end(page.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('the page reads right, the timeline renders, nothing else is fetched; hostile names stay text', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const requested: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(`${m.text()} (${m.location().url})`));
    page.on('dialog', (d) => {
      errors.push(`a dialog opened: ${d.message()}`);
      void d.dismiss();
    });
    page.on('request', (r) => requested.push(r.url()));

    await page.goto(`${base}/status`);
    assert.equal(await page.title(), 'storm controller ctl-a1f3');
    assert.equal(await page.locator('meta[http-equiv="refresh"]').getAttribute('content'), '5');
    for (const text of ['leader', 'blade1', 'blade2', 'not answering', '126 W', '92 %', 'Cannot power more servers', NOTE, SCALE_OUT, 'web-1', 'mail-2', 'mx.storm.lan']) {
      assert.ok(await page.getByText(text, { exact: false }).first().isVisible(), `"${text}" is visible`);
    }
    const rows = await page.locator('table.servers tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { innerText: string }).innerText.replace(/\s+/g, ' ').trim()));
    assert.equal(rows.length, 3);
    assert.match(rows[0]!, /^blade1 qemu\+tls:\/\/10\.20\.0\.11\/system on 126 W 92 % answering 2$/);
    assert.match(rows[2]!, /^blade3 .* unknown — — not answering —$/);

    // The timeline: laid out at a readable size, one line per series that has samples.
    const svg = page.locator('#timeline svg');
    const box = await svg.boundingBox();
    assert.ok(box && box.width > 800 && box.height > 250, `the timeline has a size: ${JSON.stringify(box)}`);
    assert.deepEqual(await svg.locator('path[data-series]').evaluateAll((ps) => ps.map((p) => p.getAttribute('data-series'))), ['watts:blade1', 'watts:blade2', 'instances:web', 'instances:mail']);
    for (const p of await svg.locator('path[data-series]').all()) {
      const b = await p.boundingBox();
      assert.ok(b && b.width > 700, `${await p.getAttribute('data-series')} spans the range: ${JSON.stringify(b)}`);
    }
    assert.deepEqual(await svg.locator('g[data-legend]').evaluateAll((gs) => gs.map((g) => g.textContent)), ['blade1 (W)', 'blade2 (W)', 'blade3 (W) — no samples', 'web (instances)', 'mail (instances)']);

    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);

    // Hostile names are shown as text: no script runs, no element is made from them.
    await page.goto(`${base}/hostile`);
    assert.equal(await page.locator('script, img').count(), 0);
    assert.ok(await page.getByText(HOSTILE).first().isVisible(), 'the hostile name is shown literally');
    assert.equal(await page.locator('#timeline path[data-series]').first().getAttribute('data-series'), `watts:${HOSTILE}`);

    assert.deepEqual(errors, [], 'no errors, no dialogs');
    assert.deepEqual([...new Set(requested.map((u) => new URL(u).origin))], [base], 'nothing is fetched from elsewhere');
    // A set: on a slow machine the page's 5 s refresh may ask for a page again.
    assert.deepEqual([...new Set(requested.map((u) => new URL(u).pathname))], ['/status', '/hostile'], 'the pages need no asset, not even an icon');

    // The SVG alone, as /status/timeline.svg serves it: an XML document Chromium parses. (Last:
    // a bare SVG document cannot say it has no icon, so Chromium asks for /favicon.ico.)
    const alone = await page.goto(`${base}/status/timeline.svg`);
    assert.equal(alone?.status(), 200);
    // (A string, since this project's TypeScript has no DOM types.)
    const parsed = await page.evaluate<{ name: string; ns: string | null; errors: number; paths: number }>(`({
      name: document.documentElement.localName,
      ns: document.documentElement.namespaceURI,
      errors: document.getElementsByTagName('parsererror').length,
      paths: document.querySelectorAll('path[data-series]').length,
    })`);
    assert.deepEqual(parsed, { name: 'svg', ns: 'http://www.w3.org/2000/svg', errors: 0, paths: 4 });
  });
});
