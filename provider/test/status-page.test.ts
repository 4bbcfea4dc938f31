// The controller's status page, rendered without a browser: names from users stay text, no
// NaN or Infinity reaches the markup whatever the numbers, an empty controller still renders,
// the page and the timeline SVG are well-formed XML, and the power note is shown when set.
// (test/e2e/status-page.test.ts opens the page in Chromium.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderStatusPage, renderTimelineSvg, type StatusSnapshot } from '../src/controller/status-page.ts';

const NOW = Date.UTC(2025, 2, 14, 15, 30, 0);
const HOSTILE = `<script>alert(1)</script>"&'`;
const HOSTILE_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&apos;';

function snapshot(): StatusSnapshot {
  const at = (s: number) => NOW - 600_000 + s * 1000;
  return {
    now: NOW,
    controller: { id: 'ctl-1', leader: true, intervalSeconds: 15 },
    servers: [
      { id: 'blade1@qemu:///system', name: 'blade1', power: 'on', watts: 121.4, cpu: 0.93, bmc: 'answering', domains: 2 },
      { id: 'blade2@qemu:///system', name: 'blade2', power: 'off', watts: 6, cpu: null, bmc: 'not answering', domains: null },
    ],
    groups: [{
      name: 'web', metric: 'cpu', min: 1, max: 3, dnsName: 'web.storm.lan', load: 0.94, high: 0.9, low: 0.3, deleting: false,
      members: [{ name: 'web-1', server: 'blade1', cpu: 0.95, ready: true }, { name: 'web-2', server: 'blade1', cpu: null, ready: false }],
      decisions: [{ at: at(300), kind: 'scale', subject: 'web', action: 'out', reason: 'scale out web: group cpu 94 % ≥ 90 % for 60 s → web-2 on blade1' }],
    }],
    power: {
      note: 'every powered server ≥ 90 % (blade1 93 %), but no server is left to power on (blade2: BMC not answering)',
      decisions: [{ at: at(590), kind: 'power', subject: 'blade2', action: 'none', reason: 'every powered server ≥ 90 % (blade1 93 %), but no server is left to power on (blade2: BMC not answering)' }],
    },
    timeline: {
      from: at(0),
      to: NOW,
      watts: [
        { server: 'blade1', points: [0, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600].map((s, i) => ({ at: at(s), value: 95 + i * 3 })) },
        { server: 'blade2', points: [0, 300, 600].map((s) => ({ at: at(s), value: 6 })) },
      ],
      instances: [{ group: 'web', points: [{ at: at(0), value: 1 }, { at: at(300), value: 2 }] }],
    },
  };
}

function empty(): StatusSnapshot {
  return {
    now: NOW,
    controller: { id: 'ctl-1', leader: false, intervalSeconds: 15 },
    servers: [],
    groups: [],
    power: { note: null, decisions: [] },
    timeline: { from: NOW - 600_000, to: NOW, watts: [], instances: [] },
  };
}

/**
 * A small well-formedness check, enough for markup this module writes: tags nest and close,
 * attribute values are quoted, `&` only starts XML's own entities, and one element is the root.
 */
function assertWellFormedXml(xml: string): void {
  const token = /<!--[\s\S]*?-->|<!doctype html>|<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)|(<[^>]*>?)/gy;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const stack: string[] = [];
  let roots = 0;
  for (const m of xml.matchAll(token)) {
    const [whole, close, open, attrs, selfClosing, text, bad] = m;
    assert.equal(bad, undefined, `not XML at ${m.index}: ${whole.slice(0, 80)}`);
    if (text !== undefined) {
      assert.ok(!entity.test(text), `a bare & in text at ${m.index}: ${text.slice(0, 80)}`);
      assert.ok(stack.length || !text.trim(), `text outside the root at ${m.index}`);
    } else if (close) {
      assert.equal(stack.pop(), close, `</${close}> at ${m.index} closes what is open`);
    } else if (open) {
      assert.ok(!entity.test(attrs ?? ''), `a bare & in <${open}>'s attributes`);
      const names = [...(attrs ?? '').matchAll(/([\w:.-]+)=/g)].map((a) => a[1]);
      assert.equal(new Set(names).size, names.length, `<${open}> repeats an attribute`);
      if (!stack.length) roots++;
      if (!selfClosing) stack.push(open);
    }
  }
  assert.deepEqual(stack, [], 'every element is closed');
  assert.equal(roots, 1, 'one root element');
  assert.equal([...xml.matchAll(token)].reduce((n, m) => n + m[0].length, 0), xml.length, 'every character was read');
}

test('the XML check itself rejects what is not well-formed', () => {
  assertWellFormedXml('<svg a="1"><g><text>x &amp; y</text></g><path d="M0 0"/></svg>');
  for (const bad of ['<a><b></a></b>', '<a x=1/>', '<a>&foo;</a>', '<a x="&"/>', '<a x="1" x="2"/>', '<a/><b/>', '<a>', 'x<a/>', '<a><</a>']) {
    assert.throws(() => assertWellFormedXml(bad), assert.AssertionError, bad);
  }
});

/** The page carries no markup of its own making: every tag is one this module writes. */
const TAGS = new Set(['html', 'head', 'meta', 'link', 'title', 'style', 'body', 'header', 'h1', 'h2', 'h3', 'h4', 'span', 'p', 'time', 'main', 'section', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'small', 'div', 'strong', 'ol', 'li', 'b', 'article', 'code', 'figure', 'figcaption', 'svg', 'defs', 'clipPath', 'rect', 'line', 'text', 'g', 'path']);

function tagsOf(markup: string): Set<string> {
  return new Set([...markup.matchAll(/<\/?([A-Za-z][\w-]*)/g)].map((m) => m[1]!));
}

function hostile(): StatusSnapshot {
  const s = snapshot();
  s.controller.id = HOSTILE;
  const server = s.servers[0]!;
  Object.assign(server, { id: HOSTILE, name: HOSTILE });
  server.power = HOSTILE as 'on'; // a newer controller's state this page does not know
  server.bmc = HOSTILE as 'none';
  const group = s.groups[0]!;
  Object.assign(group, { name: HOSTILE, metric: HOSTILE, dnsName: HOSTILE });
  group.members[0] = { name: HOSTILE, server: HOSTILE, cpu: 0.5, ready: true };
  group.decisions[0] = { ...group.decisions[0]!, subject: HOSTILE, action: HOSTILE, reason: HOSTILE };
  s.power.note = HOSTILE;
  s.power.decisions[0] = { ...s.power.decisions[0]!, action: HOSTILE, reason: HOSTILE };
  s.timeline.watts[0]!.server = HOSTILE;
  s.timeline.instances[0]!.group = HOSTILE;
  return s;
}

test('status page: names are escaped, in text and in attributes', () => {
  const html = renderStatusPage(hostile());
  assert.ok(!html.includes('<script'), 'no script element');
  assert.ok(!html.includes(`"&'`), 'the raw quote-amp-apostrophe never appears');
  assert.ok(html.includes(HOSTILE_ESCAPED));
  assert.ok(html.includes(`data-series="watts:${HOSTILE_ESCAPED}"`), 'attribute values are escaped too');
  assert.deepEqual([...tagsOf(html)].filter((t) => !TAGS.has(t)), []);
  assertWellFormedXml(html.replace(/^<!doctype html>/, ''));
  const svg = renderTimelineSvg(hostile().timeline);
  assert.ok(svg.includes(HOSTILE_ESCAPED) && !svg.includes('<script'));
  assertWellFormedXml(svg);
});

test('status page: no NaN or Infinity in the markup, whatever the numbers', () => {
  const cases: [string, StatusSnapshot][] = [];
  const bad = snapshot();
  bad.now = NaN;
  bad.controller.intervalSeconds = Infinity;
  Object.assign(bad.servers[0]!, { watts: NaN, cpu: Infinity, domains: NaN });
  Object.assign(bad.groups[0]!, { load: NaN, high: Infinity, low: -Infinity, min: NaN, max: Infinity });
  bad.groups[0]!.members[0]!.cpu = NaN;
  bad.groups[0]!.decisions[0]!.at = 1e300;
  bad.timeline = {
    from: NaN,
    to: -Infinity,
    watts: [{ server: 'a', points: [{ at: NaN, value: 1 }, { at: NOW, value: NaN }, { at: NOW + 1, value: Infinity }, { at: NOW + 2, value: 1e308 }, { at: NOW + 3, value: -5 }] }],
    instances: [{ group: 'g', points: [{ at: Infinity, value: 2 }, { at: NOW, value: 1e308 }] }],
  };
  cases.push(['non-finite everywhere', bad]);
  const metric = snapshot();
  Object.assign(metric.groups[0]!, { metric: 'queue', load: NaN, high: NaN, low: NaN });
  cases.push(['another metric without numbers', metric]);
  const zero = snapshot();
  zero.timeline.watts = [{ server: 'a', points: [{ at: NOW - 1000, value: 0 }, { at: NOW, value: 0 }] }];
  zero.timeline.instances = [{ group: 'g', points: [{ at: NOW - 1000, value: 0 }] }];
  cases.push(['all zero', zero]);
  const single = snapshot();
  single.timeline = { from: NOW, to: NOW, watts: [{ server: 'a', points: [{ at: NOW, value: 100 }] }], instances: [{ group: 'g', points: [{ at: NOW, value: 1 }] }] };
  cases.push(['one point, an empty range', single]);
  const reversed = snapshot();
  reversed.timeline.from = NOW;
  reversed.timeline.to = NOW - 600_000;
  cases.push(['a reversed range', reversed]);
  cases.push(['empty', empty()]);
  for (const [name, s] of cases) {
    for (const markup of [renderStatusPage(s), renderTimelineSvg(s.timeline)]) {
      assert.doesNotMatch(markup, /NaN|Infinity|undefined|null/, name);
      assertWellFormedXml(markup.replace(/^<!doctype html>/, ''));
    }
  }
});

test('timeline: one line per series with samples, Figure 5’s axes, a legend', () => {
  const svg = renderTimelineSvg(snapshot().timeline);
  assert.deepEqual([...svg.matchAll(/<path data-series="([^"]+)"/g)].map((m) => m[1]), ['watts:blade1', 'watts:blade2', 'instances:web']);
  assert.deepEqual([...svg.matchAll(/<g data-legend="([^"]+)"/g)].map((m) => m[1]), ['watts:blade1', 'watts:blade2', 'instances:web']);
  assert.match(svg, /Watts per server \(W\)/);
  assert.match(svg, /instances per group/);
  assert.match(svg, />−10 min</, 'time is counted back from the end');
  assert.match(svg, />15:30:00</, 'the end is a clock time');
  // The instance count is a step line that holds its last value to the end of the range.
  const step = /data-series="instances:web" d="([^"]+)"/.exec(svg)![1]!;
  assert.match(step, /^M64 \S+H\S+V\S+H888$/);
});

test('timeline: a lone sample is a dot, a silence breaks the line, an empty series is named in the legend', () => {
  const at = (s: number) => NOW - 600_000 + s * 1000;
  const svg = renderTimelineSvg({
    from: at(0),
    to: NOW,
    watts: [
      { server: 'lone', points: [{ at: at(300), value: 50 }] },
      { server: 'gap', points: [0, 10, 20, 30, 400, 410, 420].map((s) => ({ at: at(s), value: 80 })) },
      { server: 'silent', points: [] },
    ],
    instances: [],
  });
  assert.match(/data-series="watts:lone" d="([^"]+)"/.exec(svg)![1]!, /^M[\d.]+ [\d.]+h0$/);
  assert.equal(/data-series="watts:gap" d="([^"]+)"/.exec(svg)![1]!.match(/M/g)?.length, 2, 'two runs of samples');
  assert.ok(!svg.includes('data-series="watts:silent"'));
  assert.match(svg, /silent \(W\) — no samples/);
});

test('status page: an empty controller renders', () => {
  const html = renderStatusPage(empty());
  assert.match(html, /^<!doctype html>\n<html lang="en">/);
  assert.match(html, /<meta http-equiv="refresh" content="5"\/>/);
  for (const text of ['standby', 'No servers registered.', 'No scaling groups.', 'No decisions yet.', 'no samples in this range']) assert.ok(html.includes(text), text);
  assert.ok(!html.includes('class="note"'), 'no note when there is none');
  assert.doesNotMatch(html, /\b(?:src|href)="(?!data:)/, 'no external asset');
});

test('status page: the power note is shown prominently; tables, load and decisions read right', () => {
  const s = snapshot();
  const html = renderStatusPage(s);
  const note = /<div class="note" role="note">([\s\S]*?)<\/div>/.exec(html)?.[1];
  assert.ok(note, 'the note has its box');
  assert.ok(note.includes('Cannot power more servers'));
  assert.ok(note.includes('no server is left to power on (blade2: BMC not answering)'));
  assert.ok(html.indexOf('class="note"') < html.indexOf('Power decisions'), 'above the power decisions');
  assert.match(html, /<td class="num">121 W<\/td>/);
  assert.match(html, />93 %<\/td>/);
  assert.match(html, /<span class="chip bad">not answering<\/span>/);
  assert.match(html, /<strong class="z-high">94 %<\/strong> <span class="muted">at or above the high mark: scales out if it holds · out at ≥ 90 %, in below 30 %/);
  assert.match(html, /<time datetime="2025-03-14T15:25:00Z" title="2025-03-14 15:25:00 UTC">15:25:00<\/time><span class="ago">5 min ago<\/span>/);
  assert.match(html, /scale out web: group cpu 94 % ≥ 90 % for 60 s → web-2 on blade1/);
  assert.match(html, /<span class="chip warn">booting<\/span>/);
});

test('status page: the same snapshot renders the same page, whatever the time zone', () => {
  const tz = process.env.TZ;
  try {
    process.env.TZ = 'America/Denver';
    const a = renderStatusPage(snapshot());
    process.env.TZ = 'Asia/Kolkata';
    assert.equal(renderStatusPage(snapshot()), a);
  } finally {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  }
});
