// `storm plan-summary`: a saved plan's JSON (a file, or stdin) → the Markdown summary a CI job
// posts on the pull request. The summary itself is ../plan/ (pure); this reads the input, finds
// the sizes of images that are local files or that a data.storm_appliance read from its channel, and prints.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderMarkdown } from '../plan/markdown.ts';
import { NotAPlanError, readPlanJson } from '../plan/plan-json.ts';
import { planImages, summarizePlan } from '../plan/summary.ts';
import { channelImageSizes } from '../plan/layers.ts';

export interface PlanSummaryIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Standard input as text, read only when the plan comes from there. */
  stdin: () => Promise<string>;
  stdinIsTty: boolean;
  cwd?: string;
}

export const planSummaryUsage = 'storm plan-summary [PLAN_JSON | -] [--fold-above N]';

export const planSummaryHelp = `Usage: ${planSummaryUsage}

Summarize a Terraform plan of storm resources as Markdown, for a pull request comment:

  terraform plan -out=tfplan
  terraform show -json tfplan > plan.json
  storm plan-summary plan.json > summary.md       (or: terraform show -json tfplan | storm plan-summary)

Per appliance server: what is created, changed in place, replaced (and why) or destroyed; the
memory, vCPUs and instance disks committed before and after, against the memory the server may
give (its reserve kept), with a warning when it will not fit; the layers it uploads; power
changes. A headline counts it all; long lists fold into <details>.

  PLAN_JSON          the JSON of a saved plan; "-" or nothing: read it from standard input
  --fold-above N     fold the list of changes when it has more than N lines (default 15)

Image sizes are known for images that are local files (a path or file:/// URL) and for those a
data "storm_appliance" in the plan read from its channel (image_size_bytes); others say
"size unknown". The first output line is an HTML comment, <!-- storm plan-summary -->, which a
CI job can look for to update its earlier comment instead of adding one.

Exit status: 0 summary printed, 1 the input is not a plan, 2 usage error or unreadable file.
`;

const defaultIO = (): PlanSummaryIO => ({
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  stdinIsTty: process.stdin.isTTY === true,
});

/** The size of each image that is a local file, by sha256; remote ones are left out. */
async function localImageSizes(images: readonly { url: string; sha256: string }[], cwd: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const image of images) {
    const file = image.url.startsWith('file://') ? fileURLToPath(image.url) : path.isAbsolute(image.url) ? image.url : null;
    if (!file) continue;
    const st = await stat(path.resolve(cwd, file)).catch(() => null);
    if (st?.isFile()) sizes.set(image.sha256, st.size);
  }
  return sizes;
}

export async function planSummaryCommand(args: string[], io: PlanSummaryIO = defaultIO()): Promise<number> {
  let values: { help?: boolean; 'fold-above'?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' }, 'fold-above': { type: 'string' } } }));
  } catch (e) {
    io.stderr.write(`storm plan-summary: ${(e as Error).message}\nUsage: ${planSummaryUsage}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(planSummaryHelp);
    return 0;
  }
  const foldAbove = values['fold-above'] === undefined ? undefined : Number(values['fold-above']);
  if (foldAbove !== undefined && !(Number.isInteger(foldAbove) && foldAbove >= 0)) {
    io.stderr.write(`storm plan-summary: --fold-above takes a whole number of lines, not "${values['fold-above']}"\n`);
    return 2;
  }
  if (positionals.length > 1) {
    io.stderr.write(`storm plan-summary: one plan at a time (got ${positionals.length})\nUsage: ${planSummaryUsage}\n`);
    return 2;
  }
  const given = positionals[0] ?? '-';
  const cwd = io.cwd ?? process.cwd();
  const name = given === '-' ? 'standard input' : given;
  let text: string;
  if (given === '-') {
    if (io.stdinIsTty) {
      io.stderr.write(`storm plan-summary: no plan given, and standard input is a terminal.\nUsage: ${planSummaryUsage}\n`);
      return 2;
    }
    text = await io.stdin();
  } else {
    try {
      text = await readFile(path.resolve(cwd, given), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a file' : (code ?? (e as Error).message);
      io.stderr.write(`storm plan-summary: ${given}: ${why}.\n  Make it with: terraform plan -out=tfplan && terraform show -json tfplan > ${given}\n`);
      return 2;
    }
  }
  try {
    const plan = readPlanJson(text);
    const imageSizes = new Map([...channelImageSizes(plan), ...(await localImageSizes(planImages(plan), cwd))]);
    const summary = summarizePlan(plan, { imageSizes });
    io.stdout.write(renderMarkdown(summary, { foldAbove }));
    return 0;
  } catch (e) {
    if (!(e instanceof NotAPlanError)) throw e;
    io.stderr.write(`storm plan-summary: ${name}: ${e.problem}\n  ${e.fix}\n`);
    return 1;
  }
}
