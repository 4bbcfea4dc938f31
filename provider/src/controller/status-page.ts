// The controller's status page: what an operator looks at to see why storm did what it did
// (the paper's Figure 5, Watts per server and instances over time, next to the decisions and
// their reasons). Pure: the controller fills a snapshot from the store and the hosts, this turns it
// into one self-contained HTML document, so it is tested without a controller and served by
// anything. No script, no external asset: the page must work on an air-gapped rack, and a
// meta refresh is all the liveness it needs. The markup is also well-formed XML (void elements
// closed), so a test can check the whole page with an XML parser, not only the SVG.
import { escapeXml as esc } from '../drivers/xml.ts';
import type { DecisionRecord } from './store.ts';

export interface StatusPoint {
  at: number;
  value: number;
}

export interface StatusSnapshot {
  /** Epoch ms. */
  now: number;
  controller: { id: string; leader: boolean; intervalSeconds: number };
  servers: {
    id: string;
    name: string;
    power: 'on' | 'off' | 'booting' | 'unknown';
    watts: number | null;
    /** 0..1 */
    cpu: number | null;
    bmc: 'answering' | 'not answering' | 'none';
    /** Guests on it, null when unknown. */
    domains: number | null;
  }[];
  groups: {
    name: string;
    metric: string;
    min: number;
    max: number;
    dnsName: string | null;
    /** The latest group mean (cpu 0..1, or the metric's units). */
    load: number | null;
    /** Its thresholds, in the load's units. */
    high: number;
    low: number;
    /** Proportional scale-in's level (scale_in_target × the high mark); 0 or absent: off. */
    shrinkTo?: number;
    deleting: boolean;
    members: { name: string; server: string; cpu: number | null; ready: boolean }[];
    /** Newest first. */
    decisions: DecisionRecord[];
  }[];
  /** note: why it cannot power more, e.g. a server whose BMC does not answer. */
  power: { note: string | null; decisions: DecisionRecord[] };
  timeline: {
    from: number;
    to: number;
    watts: { server: string; points: StatusPoint[] }[];
    instances: { group: string; points: StatusPoint[] }[];
  };
}

type Timeline = StatusSnapshot['timeline'];
type Server = StatusSnapshot['servers'][number];
type Group = StatusSnapshot['groups'][number];

/** Decisions shown per list: the page is for now, the store keeps the history. */
const DECISIONS_SHOWN = 8;

// ---------------------------------------------------------------------------------------------
// Formatting. Every number passes through a guard: a snapshot may carry NaN (a 0/0 mean, a
// sensor that read garbage), and one NaN in an SVG attribute blanks the whole figure.

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** Dates within what Date can print; toISOString throws beyond ±8.64e15 ms. */
const printable = (ms: number) => finite(ms) && Math.abs(ms) <= 8.64e15;

const DASH = '—';

/** UTC, so that the same snapshot renders the same page on any machine. */
function isoUtc(ms: number): string {
  return printable(ms) ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '';
}

function clock(ms: number): string {
  return printable(ms) ? new Date(ms).toISOString().slice(11, 19) : DASH;
}

function dateTime(ms: number): string {
  return printable(ms) ? `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC` : DASH;
}

function ago(now: number, at: number): string {
  if (!finite(now) || !finite(at)) return '';
  const s = Math.round((now - at) / 1000);
  const span = Math.abs(s);
  const amount = span < 60 ? `${span} s` : span < 3600 ? `${Math.floor(span / 60)} min` : span < 86_400 ? `${Math.floor(span / 3600)} h` : `${Math.floor(span / 86_400)} d`;
  // Another controller's clock may run ahead of this one's.
  return s < 0 ? `in ${amount}` : `${amount} ago`;
}

function percent(v: number | null): string {
  return finite(v) ? `${Math.round(v * 100)} %` : DASH;
}

/** Three significant digits: enough to compare against a threshold. */
function amount(v: number | null): string {
  return finite(v) ? String(Number(v.toPrecision(3))) : DASH;
}

function inMetric(metric: string, v: number | null): string {
  return metric === 'cpu' ? percent(v) : amount(v);
}

/** 0..100 for a bar's width, whatever the input. */
function share(v: number | null, of: number): number {
  if (!finite(v) || !finite(of) || of <= 0) return 0;
  return Math.round(Math.min(1, Math.max(0, v / of)) * 1000) / 10;
}

// ---------------------------------------------------------------------------------------------
// The page.

export function renderStatusPage(s: StatusSnapshot): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8"/>',
    '<meta http-equiv="refresh" content="5"/>',
    '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
    // No icon to fetch: the browser would otherwise ask the controller for /favicon.ico each refresh.
    '<link rel="icon" href="data:,"/>',
    `<title>storm controller ${esc(s.controller.id)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    header(s),
    '<main>',
    serversSection(s.servers),
    powerSection(s.now, s.power),
    groupsSection(s.now, s.groups),
    timelineSection(s.timeline),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function header(s: StatusSnapshot): string {
  const c = s.controller;
  const role = c.leader ? '<span class="chip ok">leader</span>' : '<span class="chip muted">standby</span>';
  const every = finite(c.intervalSeconds) ? `a pass every ${amount(c.intervalSeconds)} s` : '';
  return `<header><h1>storm controller <span class="id">${esc(c.id)}</span> ${role}</h1>
<p class="meta">${every}${every ? ' · ' : ''}as of <time datetime="${isoUtc(s.now)}">${dateTime(s.now)}</time> · this page refreshes every 5 s</p></header>`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}" aria-labelledby="${id}-title"><h2 id="${id}-title">${title}</h2>\n${body}\n</section>`;
}

const POWER_CLASS: Record<Server['power'], string> = { on: 'ok', off: 'muted', booting: 'warn', unknown: 'unknown' };
const BMC_CLASS: Record<Server['bmc'], string> = { answering: 'ok', 'not answering': 'bad', none: 'muted' };

/** A chip for a value from a fixed set; anything else (a newer controller's state) reads as itself, unstyled. */
function chip<K extends string>(classes: Record<K, string>, value: K): string {
  const cls = Object.hasOwn(classes, value) ? classes[value] : 'unknown';
  return `<span class="chip ${cls}">${esc(String(value))}</span>`;
}

/** The id is NAME@URI; beside the name, the URI is what tells servers apart. */
function where(v: Server): string {
  return v.id.startsWith(`${v.name}@`) ? v.id.slice(v.name.length + 1) : v.id;
}

function cpuCell(cpu: number | null): string {
  if (!finite(cpu)) return `<td class="num">${DASH}</td>`;
  const hot = cpu >= 0.9 ? ' hot' : '';
  return `<td class="num"><span class="bar${hot}" aria-hidden="true"><span style="width:${share(cpu, 1)}%"></span></span>${percent(cpu)}</td>`;
}

function serversSection(servers: StatusSnapshot['servers']): string {
  if (!servers.length) return section('servers', 'Servers', '<p class="empty">No servers registered.</p>');
  const rows = servers.map((v) => `<tr>
<th scope="row">${esc(v.name)}<small title="${esc(v.id)}">${esc(where(v))}</small></th>
<td>${chip(POWER_CLASS, v.power)}</td>
<td class="num">${finite(v.watts) ? `${Math.round(v.watts)} W` : DASH}</td>
${cpuCell(v.cpu)}
<td>${chip(BMC_CLASS, v.bmc)}</td>
<td class="num">${finite(v.domains) ? String(v.domains) : DASH}</td>
</tr>`);
  return section('servers', 'Servers', `<table class="servers">
<thead><tr><th scope="col">Server</th><th scope="col">Power</th><th scope="col" class="num">Watts</th><th scope="col" class="num">CPU</th><th scope="col">BMC</th><th scope="col" class="num">Guests</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`);
}

function decisionList(now: number, decisions: readonly DecisionRecord[]): string {
  if (!decisions.length) return '<p class="empty">No decisions yet.</p>';
  const items = decisions.slice(0, DECISIONS_SHOWN).map((d) => `<li><time datetime="${isoUtc(d.at)}" title="${dateTime(d.at)}">${clock(d.at)}</time><span class="ago">${ago(now, d.at)}</span><span class="action a-${esc(d.action.replace(/[^a-z]/gi, ''))}"><b>${esc(d.action)}</b></span><span class="reason">${esc(d.reason)}</span></li>`);
  const more = decisions.length > DECISIONS_SHOWN ? `\n<p class="more">${decisions.length - DECISIONS_SHOWN} older not shown</p>` : '';
  return `<ol class="decisions">\n${items.join('\n')}\n</ol>${more}`;
}

function powerSection(now: number, power: StatusSnapshot['power']): string {
  const note = power.note
    ? `<div class="note" role="note"><strong>Cannot power more servers</strong><p>${esc(power.note)}</p></div>\n`
    : '';
  return section('power', 'Power', `${note}<h3>Power decisions</h3>\n${decisionList(now, power.decisions)}`);
}

/**
 * Where the load stands between the thresholds. A CPU load is on 0..100 %; another metric has
 * no natural top, so the scale leaves room above the higher of the load and the high mark.
 */
function loadGauge(g: Group): string {
  const top = g.metric === 'cpu' ? 1 : Math.max(finite(g.high) ? g.high * 1.25 : 0, finite(g.load) ? g.load * 1.1 : 0, 1);
  const zone = !finite(g.load) ? 'none' : g.load >= g.high ? 'high' : g.load < g.low ? 'low' : 'mid';
  // At its bounds the group cannot follow the load: saying it scales would be a lie.
  const verdict = {
    none: 'no load measured yet',
    high: g.members.length >= g.max ? `at or above the high mark, but at its maximum of ${amount(g.max)}` : 'at or above the high mark: scales out if it holds',
    low: g.members.length <= g.min ? `below the low mark, but at its minimum of ${amount(g.min)}` : 'below the low mark: scales in if it holds',
    mid: g.shrinkTo ? `between the marks: sheds members when fewer would carry it at ≤ ${inMetric(g.metric, g.shrinkTo)}` : 'between the marks: holds',
  }[zone];
  const mark = (v: number, cls: string, label: string) =>
    finite(v) ? `<span class="mark ${cls}" style="left:${share(v, top)}%" title="${label} ${inMetric(g.metric, v)}"></span>` : '';
  return `<div class="load">
<p><span class="label">load</span> <strong class="z-${zone}">${inMetric(g.metric, g.load)}</strong> <span class="muted">${verdict} · out at ≥ ${inMetric(g.metric, g.high)}, in below ${inMetric(g.metric, g.low)}</span></p>
<div class="gauge" aria-hidden="true"><span class="fill z-${zone}" style="width:${share(g.load, top)}%"></span>${mark(g.low, 'low', 'low')}${mark(g.high, 'high', 'high')}</div>
</div>`;
}

function membersTable(g: Group): string {
  if (!g.members.length) return '<p class="empty">No members.</p>';
  const rows = g.members.map((m) => `<tr><th scope="row">${esc(m.name)}</th><td>${esc(m.server)}</td>${cpuCell(m.cpu)}<td>${m.ready ? '<span class="chip ok">ready</span>' : '<span class="chip warn">booting</span>'}</td></tr>`);
  return `<table class="members">
<thead><tr><th scope="col">Member</th><th scope="col">Server</th><th scope="col" class="num">CPU</th><th scope="col">State</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

function groupArticle(now: number, g: Group): string {
  const facts = [
    `<span class="chip muted">${esc(g.metric)}</span>`,
    `<span>${g.members.length} member${g.members.length === 1 ? '' : 's'} · min ${amount(g.min)} · max ${amount(g.max)}</span>`,
    g.dnsName ? `<span>DNS <code>${esc(g.dnsName)}</code></span>` : '',
    g.deleting ? '<span class="chip bad">deleting</span>' : '',
  ].filter(Boolean);
  return `<article class="group">
<h3>${esc(g.name)}</h3>
<p class="facts">${facts.join(' ')}</p>
${loadGauge(g)}
<div class="cols"><div>${membersTable(g)}</div><div><h4>Last decisions</h4>\n${decisionList(now, g.decisions)}</div></div>
</article>`;
}

function groupsSection(now: number, groups: StatusSnapshot['groups']): string {
  const body = groups.length ? groups.map((g) => groupArticle(now, g)).join('\n') : '<p class="empty">No scaling groups.</p>';
  return section('groups', 'Groups', body);
}

function timelineSection(t: Timeline): string {
  return section('timeline', 'Watts per server and instances per group', `<figure>${renderTimelineSvg(t)}
<figcaption>Each server’s power draw (left axis, W) and each group’s number of instances (right axis, step line), as in Figure 5 of the STORM paper.</figcaption></figure>`);
}

const STYLE = `
:root{--fg:#1f2933;--muted:#6b7480;--line:#e3e6ea;--bg:#f5f6f8;--card:#fff;--ok:#15803d;--warn:#b45309;--bad:#b91c1c;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{padding:18px 28px 10px;background:var(--card);border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
h1 .id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-weight:500;color:var(--muted);font-size:15px}
.meta{margin:4px 0 0;color:var(--muted)}
main{display:grid;grid-template-columns:minmax(0,1.4fr) minmax(0,1fr);gap:18px;padding:18px 28px 28px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px}
#groups,#timeline{grid-column:1/-1}
@media (max-width:900px){main{grid-template-columns:minmax(0,1fr)}}
h2{font-size:15px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
h3{font-size:16px;margin:0}
h4,#power h3{font-size:13px;margin:10px 0 6px;color:var(--muted);font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{font-size:12px;color:var(--muted);font-weight:600}
tbody th{font-weight:600}
th small{display:block;font-weight:400;color:var(--muted);font-size:11px;font-family:ui-monospace,"DejaVu Sans Mono",monospace;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:240px}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chip{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.chip.ok{color:var(--ok);background:#f0fdf4}
.chip.warn{color:var(--warn);background:#fffbeb}
.chip.bad{color:var(--bad);background:#fef2f2}
.chip.muted{color:var(--muted);background:#f8f9fa}
.chip.unknown{color:#6d28d9;background:#f5f3ff;border-style:dashed}
.bar{display:inline-block;width:60px;height:8px;margin-right:8px;background:#eceff2;border-radius:4px;overflow:hidden;vertical-align:middle}
.bar span{display:block;height:100%;background:var(--accent)}
.bar.hot span{background:var(--bad)}
.empty,.more,.muted{color:var(--muted)}
.empty{margin:4px 0}
.more{font-size:12px;margin:4px 0 0}
.note{border:1px solid #f59e0b;border-left:6px solid #d97706;background:#fffbeb;border-radius:6px;padding:10px 14px;margin:0 0 8px}
.note strong{color:#92400e;font-size:15px}
.note p{margin:4px 0 0;font-size:15px}
.decisions{list-style:none;margin:0;padding:0;display:table;width:100%;border-collapse:collapse}
.decisions li{display:table-row}
.decisions li>*{display:table-cell;padding:5px 10px 5px 0;border-bottom:1px solid var(--line);vertical-align:baseline}
.decisions li:last-child>*{border-bottom:0}
.decisions li>.reason{padding-right:0}
.decisions time{white-space:nowrap;font-variant-numeric:tabular-nums;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
.ago{color:var(--muted);font-size:12px;white-space:nowrap}
.action b{font-size:11px;font-weight:700;text-transform:uppercase;padding:0 6px;border-radius:4px;background:#eef2f7;color:#374151;white-space:nowrap}
.a-out b,.a-on b{background:#dcfce7;color:#166534}
.a-in b,.a-off b{background:#e0e7ff;color:#3730a3}
.reason{overflow-wrap:anywhere}
.group{border-top:1px solid var(--line);padding:14px 0 4px}
.group:first-of-type{border-top:0;padding-top:0}
.facts{margin:4px 0 8px;display:flex;gap:10px;flex-wrap:wrap;align-items:center;color:var(--muted)}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;color:var(--fg);background:#f1f3f5;padding:0 4px;border-radius:3px}
.load p{margin:0 0 4px}
.load .label{color:var(--muted)}
.load strong{font-size:18px}
.gauge{position:relative;height:10px;background:#eceff2;border-radius:5px;max-width:520px;margin-bottom:6px}
.gauge .fill{position:absolute;left:0;top:0;bottom:0;border-radius:5px}
.gauge .mark{position:absolute;top:-4px;bottom:-4px;width:2px;margin-left:-1px;background:#374151}
.gauge .mark.low{background:#6366f1}
.gauge .mark.high{background:var(--bad)}
.z-high{color:var(--bad)} .fill.z-high{background:var(--bad)}
.z-mid{color:var(--ok)} .fill.z-mid{background:#22c55e}
.z-low{color:#4338ca} .fill.z-low{background:#818cf8}
.z-none{color:var(--muted)}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.4fr);gap:18px;margin-top:8px}
@media (max-width:900px){.cols{grid-template-columns:minmax(0,1fr)}}
.cols h4{margin-top:0}
figure{margin:0}
figure svg{display:block;width:100%;height:auto;max-width:1100px}
figcaption{color:var(--muted);font-size:12px;margin-top:4px}
`;

// ---------------------------------------------------------------------------------------------
// The timeline: Figure 5 of the paper, Watts per server (left axis) and instances per group
// (right axis, a step line: a count holds until it changes). Presentation attributes rather
// than CSS classes, so that the SVG served alone at /status/timeline.svg looks the same.

const WIDTH = 960;
const MARGIN = { left: 64, right: 72, top: 20, bottom: 56 };
const PLOT_HEIGHT = 250;
const LEGEND_ROW = 22;
const SERVER_COLORS = ['#2563eb', '#ea580c', '#0d9488', '#9333ea', '#ca8a04', '#db2777', '#0284c7', '#65a30d'];
const GROUP_COLORS = ['#111827', '#b91c1c', '#047857', '#7c3aed', '#a16207', '#be185d'];
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, DejaVu Sans, sans-serif';

interface Frame {
  from: number;
  to: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  wattsTop: number;
  countTop: number;
  wattsTicks: number[];
  countTicks: number[];
  /** The whole SVG's, legend included. */
  height: number;
}

interface Series {
  kind: 'watts' | 'instances';
  name: string;
  color: string;
  points: StatusPoint[];
}

/** Coordinates with one decimal; anything non-finite becomes 0 rather than poisoning the path. */
function n(v: number): string {
  const r = Math.round(v * 10) / 10;
  return Number.isFinite(r) ? String(r === 0 ? 0 : r) : '0';
}

/** 1, 2 or 5 × 10^k: steps people read at a glance. */
function niceStep(span: number, maxTicks: number): number {
  const raw = span / maxTicks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * pow >= raw) ?? 10) * pow;
}

/** An axis top above the largest value with some headroom, and its ticks; a fallback top when there is nothing to show. */
function axis(values: readonly number[], fallback: number, integer: boolean): { top: number; ticks: number[] } {
  const max = values.reduce((a, b) => Math.max(a, b), 0);
  // A value so large its headroom overflows is garbage from a sensor: the axis ignores it.
  const span = max > 0 && Number.isFinite(max * 1.08) ? max * 1.08 : fallback;
  const step = integer ? Math.max(1, Math.round(niceStep(span, 5))) : niceStep(span, 5);
  const count = Math.max(1, Math.ceil(span / step));
  const ticks = Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)));
  return { top: ticks[ticks.length - 1]!, ticks };
}

function cleanPoints(points: readonly StatusPoint[]): StatusPoint[] {
  return points.filter((p) => finite(p.at) && finite(p.value)).sort((a, b) => a.at - b.at);
}

function frameOf(t: Timeline, series: readonly Series[], legendRows: number): Frame {
  const from = finite(t.from) ? t.from : 0;
  // An empty or reversed range still gets a minute of axis rather than a division by zero.
  const to = finite(t.to) && t.to > from ? t.to : from + 60_000;
  const values = (kind: Series['kind']) => series.filter((s) => s.kind === kind).flatMap((s) => s.points.map((p) => p.value));
  const watts = axis(values('watts'), 100, false);
  const count = axis(values('instances'), 4, true);
  const top = MARGIN.top;
  const bottom = top + PLOT_HEIGHT;
  return {
    from, to, top, bottom,
    left: MARGIN.left,
    right: WIDTH - MARGIN.right,
    wattsTop: watts.top,
    countTop: count.top,
    wattsTicks: watts.ticks,
    countTicks: count.ticks,
    height: bottom + MARGIN.bottom + legendRows * LEGEND_ROW,
  };
}

const xOf = (f: Frame, at: number) => f.left + ((at - f.from) / (f.to - f.from)) * (f.right - f.left);
const yOf = (f: Frame, v: number, top: number) => f.bottom - (v / top) * (f.bottom - f.top);

/**
 * A line through the samples. A silence much longer than the usual sampling interval (a BMC
 * that stopped answering) breaks the line instead of drawing a slope nobody measured; a lone
 * sample is a zero-length segment, which the round cap paints as a dot.
 */
function wattsPath(f: Frame, points: readonly StatusPoint[]): string {
  const gaps = points.slice(1).map((p, i) => p.at - points[i]!.at).sort((a, b) => a - b);
  const usual = gaps.length >= 2 ? gaps[Math.floor(gaps.length / 2)]! : Infinity;
  const startsRun = (i: number) => i === 0 || points[i]!.at - points[i - 1]!.at > usual * 4;
  return points
    .map((p, i) => {
      const xy = `${n(xOf(f, p.at))} ${n(yOf(f, p.value, f.wattsTop))}`;
      if (!startsRun(i)) return `L${xy}`;
      return i + 1 < points.length && !startsRun(i + 1) ? `M${xy}` : `M${xy}h0`;
    })
    .join('');
}

/** The count holds from one sample to the next, and the last one holds until the end of the range. */
function stepPath(f: Frame, points: readonly StatusPoint[]): string {
  const ys = points.map((p) => n(yOf(f, p.value, f.countTop)));
  const parts = points.map((p, i) => (i === 0 ? `M${n(xOf(f, p.at))} ${ys[0]}` : `H${n(xOf(f, p.at))}V${ys[i]}`));
  const last = points[points.length - 1]!;
  parts.push(last.at < f.to ? `H${n(xOf(f, f.to))}` : 'h0');
  return parts.join('');
}

function seriesOf(t: Timeline): Series[] {
  return [
    ...t.watts.map((w, i): Series => ({ kind: 'watts', name: w.server, color: SERVER_COLORS[i % SERVER_COLORS.length]!, points: cleanPoints(w.points) })),
    ...t.instances.map((g, i): Series => ({ kind: 'instances', name: g.group, color: GROUP_COLORS[i % GROUP_COLORS.length]!, points: cleanPoints(g.points) })),
  ];
}

/** Tick every 1, 2, 5, 10, 15 or 30 s, min or h: at most 6 along the range, counted back from its end. */
function timeTicks(f: Frame): { at: number; label: string }[] {
  const spanS = (f.to - f.from) / 1000;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];
  const step = steps.find((s) => spanS / s <= 6) ?? Math.ceil(spanS / 6 / 86_400) * 86_400;
  const ticks: { at: number; label: string }[] = [];
  for (let k = 0; k <= 6 && f.to - k * step * 1000 >= f.from; k++) {
    const back = k * step;
    const label = k === 0 ? clock(f.to) : back % 86_400 === 0 ? `−${back / 86_400} d` : back % 3600 === 0 ? `−${back / 3600} h` : back % 60 === 0 ? `−${back / 60} min` : `−${back} s`;
    ticks.push({ at: f.to - back * 1000, label });
  }
  return ticks.reverse();
}

function gridAndAxes(f: Frame): string {
  const out: string[] = [];
  for (const v of f.wattsTicks) {
    const y = n(yOf(f, v, f.wattsTop));
    out.push(`<line x1="${f.left}" x2="${f.right}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${f.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#4b5563">${n(v)}</text>`);
  }
  for (const v of f.countTicks) {
    const y = n(yOf(f, v, f.countTop));
    out.push(`<line x1="${f.right}" x2="${f.right + 5}" y1="${y}" y2="${y}" stroke="#6b7280"/>`);
    out.push(`<text x="${f.right + 9}" y="${y}" dominant-baseline="middle" fill="#4b5563">${n(v)}</text>`);
  }
  for (const t of timeTicks(f)) {
    const x = n(xOf(f, t.at));
    out.push(`<line x1="${x}" x2="${x}" y1="${f.top}" y2="${f.bottom + 5}" stroke="#f0f1f3"/>`);
    out.push(`<text x="${x}" y="${f.bottom + 20}" text-anchor="middle" fill="#4b5563">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${f.left}" y="${f.top}" width="${f.right - f.left}" height="${f.bottom - f.top}" fill="none" stroke="#9ca3af"/>`);
  const mid = n((f.top + f.bottom) / 2);
  out.push(`<text transform="translate(18 ${mid}) rotate(-90)" text-anchor="middle" fill="#374151" font-weight="600">Watts per server (W)</text>`);
  out.push(`<text transform="translate(${WIDTH - 16} ${mid}) rotate(90)" text-anchor="middle" fill="#374151" font-weight="600">instances per group</text>`);
  out.push(`<text x="${n((f.left + f.right) / 2)}" y="${f.bottom + 40}" text-anchor="middle" fill="#6b7280">time (UTC), ${esc(dateTime(f.from).replace(' UTC', ''))} to ${esc(clock(f.to))}</text>`);
  return out.join('\n');
}

function seriesPath(f: Frame, s: Series): string {
  if (!s.points.length) return '';
  const d = s.kind === 'watts' ? wattsPath(f, s.points) : stepPath(f, s.points);
  const style = s.kind === 'watts' ? 'stroke-width="2"' : 'stroke-width="2.5" stroke-dasharray="7 4"';
  const label = s.kind === 'watts' ? `${s.name}: Watts` : `${s.name}: instances`;
  return `<path data-series="${s.kind}:${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" ${style} stroke-linecap="round" stroke-linejoin="round"><title>${esc(label)}</title></path>`;
}

/** Legend entries laid out in rows; widths estimated from the text so the layout needs no browser. */
function legendLayout(series: readonly Series[]): { series: Series; label: string; x: number; row: number }[] {
  const width = WIDTH - MARGIN.left - MARGIN.right;
  let x = 0;
  let row = 0;
  return series.map((s) => {
    const name = s.name.length > 40 ? `${s.name.slice(0, 39)}…` : s.name;
    const label = `${name} (${s.kind === 'watts' ? 'W' : 'instances'})${s.points.length ? '' : ' — no samples'}`;
    const w = 30 + label.length * 7 + 22;
    if (x > 0 && x + w > width) {
      x = 0;
      row++;
    }
    const at = { series: s, label, x, row };
    x += w;
    return at;
  });
}

function legend(f: Frame, entries: ReturnType<typeof legendLayout>): string {
  return entries
    .map(({ series: s, label, x, row }) => {
      const lx = f.left + x;
      const y = f.bottom + MARGIN.bottom + row * LEGEND_ROW + 4;
      const swatch = s.kind === 'watts'
        ? `<line x1="${lx}" x2="${lx + 22}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="2" stroke-linecap="round"/>`
        : `<line x1="${lx}" x2="${lx + 22}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="2.5" stroke-dasharray="7 4"/>`;
      return `<g data-legend="${s.kind}:${esc(s.name)}">${swatch}<text x="${lx + 30}" y="${y}" dominant-baseline="middle" fill="${s.points.length ? '#1f2933' : '#9ca3af'}">${esc(label)}</text></g>`;
    })
    .join('\n');
}

export function renderTimelineSvg(t: Timeline): string {
  const series = seriesOf(t);
  const entries = legendLayout(series);
  const rows = entries.length ? entries[entries.length - 1]!.row + 1 : 0;
  const f = frameOf(t, series, rows);
  const clip = `<clipPath id="storm-timeline-plot"><rect x="${f.left}" y="${f.top - 3}" width="${f.right - f.left}" height="${f.bottom - f.top + 6}"/></clipPath>`;
  const empty = series.every((s) => !s.points.length)
    ? `<text x="${n((f.left + f.right) / 2)}" y="${n((f.top + f.bottom) / 2)}" text-anchor="middle" fill="#9ca3af">no samples in this range</text>`
    : '';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${f.height}" width="${WIDTH}" height="${f.height}" role="img" aria-labelledby="storm-timeline-title" font-family="${FONT}" font-size="12">`,
    `<title id="storm-timeline-title">Watts per server and instances per group, ${esc(dateTime(f.from))} to ${esc(dateTime(f.to))}</title>`,
    `<defs>${clip}</defs>`,
    `<rect width="${WIDTH}" height="${f.height}" fill="#ffffff"/>`,
    gridAndAxes(f),
    empty,
    `<g clip-path="url(#storm-timeline-plot)">`,
    ...series.map((s) => seriesPath(f, s)).filter(Boolean),
    '</g>',
    legend(f, entries),
    '</svg>',
  ].filter(Boolean).join('\n');
}
