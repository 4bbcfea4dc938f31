// The plan summary as GitHub-flavoured Markdown for a pull request comment: a headline, what
// will not fit, a table of the servers, power, downloads, then the changes by server (folded
// into <details> when long). Plain text inside: no colours, no emoji, the same bytes for the
// same plan. The first line is an HTML comment a CI job can find to update its earlier comment.
import type { ChangeKind, ChangeLine, Download, PlanSummary, ServerSummary } from './types.ts';

export const COMMENT_MARKER = '<!-- storm plan-summary -->';

export interface MarkdownOptions {
  /** Change lines above which the list is folded into <details> (default 15). */
  foldAbove?: number;
}

const HEADINGS: Record<ChangeKind, string> = {
  replace: 'Replaced',
  destroy: 'Destroyed',
  forget: 'Forgotten (left on the server)',
  update: 'Changed in place',
  create: 'Created',
};
const ORDER: readonly ChangeKind[] = ['replace', 'destroy', 'forget', 'update', 'create'];

/**
 * Markdown's and HTML's special characters, made literal. An underscore inside a word
 * (memory_mib) is literal in GitHub's Markdown already, and stays readable unescaped.
 */
const esc = (text: string): string => text.replace(/[\\`*[\]<>|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, (ch) => `\\${ch}`);
const code = (text: string): string => `\`${text.replace(/`/g, "'")}\``;

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 100 || Number.isInteger(v) ? 0 : 1;
  return `${v.toFixed(digits)} ${units[u]}`;
}

const signed = (n: number): string => (n > 0 ? `+${n}` : n < 0 ? `−${-n}` : '±0');
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function headline(s: PlanSummary): string {
  const c = s.counts;
  const total = c.create + c.update + c.replace + c.destroy + c.forget;
  if (total === 0) return 'storm plan: no changes';
  const parts = [`${c.create} to create`, `${c.update} to change`, `${c.replace} to replace`, `${c.destroy} to destroy`];
  if (c.forget) parts.push(`${c.forget} to forget`);
  const where = s.servers.length ? ` on ${plural(s.servers.length, 'server')}` : '';
  const broken = s.servers.filter((x) => x.capacity.fit.verdict === 'does-not-fit').map((x) => x.name);
  const verdict =
    s.fit.verdict === 'fits' ? 'fits'
    : s.fit.verdict === 'unknown' ? 'fits as far as is known'
    : broken.length ? `does not fit on ${broken.join(', ')}`
    : 'does not fit';
  return `storm plan: ${parts.join(', ')}${where} — ${verdict}`;
}

function memoryCell(x: ServerSummary): string {
  const c = x.capacity;
  const known = `${c.committedMemoryBeforeMib} → ${c.committedMemoryAfterMib} (${signed(c.committedMemoryAfterMib - c.committedMemoryBeforeMib)})`;
  const moved = c.memoryUnknown.length ? `${known} + ${c.memoryUnknown.length} not known yet` : known;
  if (c.memoryMib === null || c.freeMemoryAfterMib === null) return `${moved}; capacity not known yet`;
  const free = c.freeMemoryAfterMib < 0 ? `**${-c.freeMemoryAfterMib} over**` : `${c.freeMemoryAfterMib} free`;
  return `${moved} of ${c.memoryMib} − ${c.reservedMemoryMib} reserved: ${free}`;
}

function vcpuCell(x: ServerSummary): string {
  const c = x.capacity;
  const of = c.cpus === null ? '' : ` of ${plural(c.cpus, 'CPU')}`;
  return `${c.committedVcpusBefore} → ${c.committedVcpusAfter}${of}`;
}

function diskCell(x: ServerSummary): string {
  const c = x.capacity;
  const moved = c.instanceDiskBeforeMib === c.instanceDiskAfterMib ? `${c.instanceDiskAfterMib}` : `${c.instanceDiskBeforeMib} → ${c.instanceDiskAfterMib} (${signed(c.instanceDiskAfterMib - c.instanceDiskBeforeMib)})`;
  const disks = c.diskUnknown.length ? `${moved} + ${c.diskUnknown.length} not known yet` : moved;
  return x.layers.length ? `${disks}; ${plural(x.layers.length, 'new layer')}, ${sizeOf(c.newLayerBytes, x.layers.filter((l) => l.sizeBytes === null).length)}` : disks;
}

/** Known bytes, and how many more are of unknown size. */
function sizeOf(known: number, unknown: number): string {
  if (!unknown) return formatBytes(known);
  return known ? `${formatBytes(known)} + ${unknown} of unknown size` : 'size unknown';
}

function powerCell(x: ServerSummary): string {
  const p = x.power;
  if (!p) return x.powerAfter ?? '';
  if (p.from === null) return p.to ?? '';
  if (p.to === null) return `${p.from} (forgotten)`;
  return p.from === p.to ? p.to : `${p.from} → **${p.to}**`;
}

const FIT_CELL = { fits: 'yes', 'does-not-fit': '**no**', unknown: 'not known' } as const;

function serverTable(s: PlanSummary): string[] {
  const rows = s.servers.map((x) => `| **${esc(x.name)}** | ${memoryCell(x)} | ${vcpuCell(x)} | ${diskCell(x)} | ${powerCell(x)} | ${FIT_CELL[x.capacity.fit.verdict]} |`);
  return ['| server | memory committed, MiB | vCPUs | instance disks, MiB | power | fits |', '|---|---|---|---|---|---|', ...rows];
}

function downloadLines(downloads: readonly Download[]): string[] {
  if (!downloads.length) return [];
  const rows = downloads.map((d) => {
    const name = d.url ? code(d.url.replace(/^.*\//, '') || d.url) : '(known after apply)';
    const sha = d.sha256 ? ` ${code(d.sha256.slice(0, 12))}` : '';
    return `| ${name}${sha} | ${esc(d.kinds.map((k, i) => (i ? k : d.labels[0]?.startsWith(`${k} `) ? d.labels.join(', ') : `${k} ${d.labels.join(', ')}`)).join(', '))} | ${d.sizeBytes === null ? 'size unknown' : formatBytes(d.sizeBytes)} | ${esc(d.servers.join(', '))} |`;
  });
  const known = downloads.filter((d) => d.sizeBytes !== null).reduce((n, d) => n + d.sizeBytes!, 0);
  const unknown = downloads.filter((d) => d.sizeBytes === null).length;
  const total = `${plural(downloads.length, 'image')}, ${sizeOf(known, unknown)}: each downloaded once into the image cache, and uploaded to each server named.`;
  return ['#### New layers', '', '| image | layer | size | uploaded to |', '|---|---|---:|---|', ...rows, '', total, ''];
}

function changeLine(line: ChangeLine): string {
  return `- ${code(line.address)}${line.details.length ? `: ${esc(line.details.join('; '))}` : ''}`;
}

function grouped(lines: readonly ChangeLine[]): string[] {
  const out: string[] = [];
  for (const kind of ORDER) {
    const these = lines.filter((l) => l.kind === kind);
    if (these.length) out.push(`*${HEADINGS[kind]} (${these.length})*`, '', ...these.map(changeLine), '');
  }
  return out;
}

function changeLists(s: PlanSummary): string[] {
  const out: string[] = [];
  for (const x of s.servers) {
    if (!x.changes.length) continue;
    const where = x.address ? `${code(x.address)}, ${code(x.uri)}` : code(x.uri);
    out.push(`**${esc(x.name)}** (${where})`, '', ...grouped(x.changes));
  }
  if (s.elsewhere.length) out.push('**On no single server**', '', ...grouped(s.elsewhere));
  return out;
}

export function renderMarkdown(s: PlanSummary, options: MarkdownOptions = {}): string {
  const out: string[] = [COMMENT_MARKER, `### ${esc(headline(s))}`, ''];
  const alerts = [...s.fit.verdict === 'does-not-fit' ? s.fit.problems : [], ...s.warnings];
  if (alerts.length) out.push('> [!WARNING]', ...alerts.map((p) => `> - ${esc(p)}`), '');
  if (s.fit.verdict === 'unknown') out.push(...s.fit.problems.map((p) => `- ${esc(p)}`), '');
  if (s.servers.length) out.push(...serverTable(s), '');
  const power = s.servers.filter((x) => x.power && x.power.from !== x.power.to);
  if (power.length) {
    out.push('#### Power', '', ...power.map((x) => `- **${esc(x.name)}**: ${powerCell(x).replace(/\*\*/g, '')}${x.power!.note ? ` (${esc(x.power!.note)})` : ''}`), '');
  }
  out.push(...downloadLines(s.downloads));
  const lists = changeLists(s);
  const count = s.servers.reduce((n, x) => n + x.changes.length, 0) + s.elsewhere.length;
  if (lists.length) {
    if (count > (options.foldAbove ?? 15)) out.push('<details>', `<summary>All ${plural(count, 'change')}, by server</summary>`, '', ...lists, '</details>', '');
    else out.push('#### Changes by server', '', ...lists);
  }
  if (s.notes.length) out.push(...s.notes.map((n) => `<sub>${esc(n)}</sub>  `), '');
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
