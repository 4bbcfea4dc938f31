// Validating one appliance definition of 1 MiB (the cap) made of as many elements as fit, in the
// shapes that hurt the old parser, against a plain parse of the same bytes by fast-xml-parser (the
// general-purpose XML parser storm used before it read definitions itself; no validation, no
// positions, just its tree). Figures only.
//
// "First" is the first call in a fresh Node process (a site build or `storm validate` meets its
// first definition cold); "warm" is the median of 7 calls after it in that process. Each figure
// comes from a child process of its own (this file, run with a shape and a parser), timed inside
// it around the one call, so module loading is not counted.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { XMLParser } from 'fast-xml-parser';
import { parseApplianceDefinition } from '../provider/src/channel/definition.ts';

const MIB = 1024 * 1024;
const here = fileURLToPath(import.meta.url);
const template = readFileSync(new URL('../provider/test/fixtures/appliances/valid/firewall.xml', import.meta.url), 'utf8');

/** A definition just under 1 MiB; `fill` makes the body put before </appliance> (or where it says). */
const SHAPES: Record<string, { what: string; make: () => string }> = {
  unknown: { what: 'unknown empty elements <x/>', make: () => fillWith('<x/>') },
  lines: { what: 'unknown elements, one per line', make: () => fillWith('<x/>\n') },
  distinct: { what: 'unknown elements, all names different', make: () => distinct() },
  attributes: { what: "unknown elements with an attribute <x a='1'/>", make: () => fillWith("<x a='1'/>") },
  mixed: { what: 'text between unknown elements a<x/>', make: () => fillWith('a<x/>') },
  valid: { what: 'a valid definition at every limit, description filling the rest', make: () => validAtLimits() },
};

function fillWith(unit: string): string {
  return template.replace('</appliance>', `${unit.repeat(Math.floor((MIB - template.length - 16) / unit.length))}</appliance>`);
}

function distinct(): string {
  const parts: string[] = [];
  let length = template.length + 32;
  for (let i = 0; length + 10 < MIB; i++) {
    const p = `<x${i}/>`;
    parts.push(p);
    length += p.length;
  }
  return template.replace('</appliance>', `${parts.join('')}</appliance>`);
}

function validAtLimits(): string {
  const deps = Array.from({ length: 256 }, (_, i) => `  <dependency>dep-${i}:1.0.${i}</dependency>\n`).join('');
  const provides = Array.from({ length: 64 }, (_, i) => `  <provides>svc-${i}</provides>\n`).join('');
  const disks = Array.from({ length: 63 }, (_, i) => `    <disk name='d${i}' type='swap' size='${i + 1}'/>\n`).join('');
  const xml = template
    .replace('  <provides>firewall</provides>\n', provides)
    .replace('  </hardware>', `    <disk name='root' type='system' file='sys.img'/>\n${disks}  </hardware>`)
    .replace('</appliance>', `${deps}</appliance>`);
  const room = MIB - Buffer.byteLength(xml) - 64;
  return xml.replace(/<description>[\s\S]*?<\/description>/, `<description>${'Long enough. '.repeat(Math.floor(room / 13))}</description>`);
}

const fxp = new XMLParser({ preserveOrder: true, ignoreAttributes: false, parseTagValue: false, processEntities: false });

type Parser = 'storm' | 'fast-xml-parser';

/** In the child: one shape, one parser; prints {first, warm, bytes, elements, problems}. */
function measure(shape: string, parser: Parser): void {
  const bytes = Buffer.from(SHAPES[shape]!.make());
  const run = parser === 'storm' ? () => parseApplianceDefinition(bytes, 'bench.xml') : () => fxp.parse(bytes.toString('utf8'));
  (globalThis as { gc?: () => void }).gc?.();
  const cpu0 = process.cpuUsage();
  let t = performance.now();
  const result = run();
  const first = performance.now() - t;
  const used = process.cpuUsage(cpu0);
  const firstCpu = (used.user + used.system) / 1000;
  const warm: number[] = [];
  for (let i = 0; i < 7; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    t = performance.now();
    run();
    warm.push(performance.now() - t);
  }
  warm.sort((a, b) => a - b);
  const problems = parser === 'storm' && typeof result === 'object' && result !== null && 'ok' in result ? (result.ok ? 0 : result.problems.length) : null;
  console.log(JSON.stringify({ first, firstCpu, warm: warm[3], bytes: bytes.length, elements: (bytes.toString('latin1').match(/<[^/!?]/g) ?? []).length, problems }));
}

interface Figure {
  first: number;
  /** CPU time of the first call (the process's, GC threads included): less at the mercy of a shared machine. */
  firstCpu: number;
  warm: number;
  bytes: number;
  elements: number;
  problems: number | null;
}

function child(shape: string, parser: Parser): Figure {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', here, shape, parser], { encoding: 'utf8', maxBuffer: 16 * MIB });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Figure;
}

export function benchDefinition(): void {
  const ms = (x: number) => `${x.toFixed(0).padStart(4)} ms`;
  console.log('');
  console.log('validating one 1 MiB definition (the cap) of as many elements as fit: storm (parseApplianceDefinition on the bytes:');
  console.log('  decode, read, check, problems placed) against a plain fast-xml-parser 5 parse of the same text (preserveOrder, no');
  console.log('  validation, no positions). First call in a fresh process (wall, and the process\'s CPU time, which another');
  console.log('  engineer\'s load moves less), and the median of 7 after it; a child process per figure.');
  for (const [shape, { what }] of Object.entries(SHAPES)) {
    const storm = child(shape, 'storm');
    const plain = child(shape, 'fast-xml-parser');
    const verdict = storm.problems === 0 ? 'valid' : `${storm.problems} problems said`;
    console.log(`  ${what.padEnd(64)} ${String(storm.elements).padStart(6)} elements, ${verdict}`);
    console.log(`    storm validates      first ${ms(storm.first)} (cpu ${ms(storm.firstCpu)})   warm ${ms(storm.warm)}   goal ≤ 200 ms → ${storm.first <= 200 ? 'met' : 'not met'}`);
    console.log(`    fast-xml-parser      first ${ms(plain.first)} (cpu ${ms(plain.firstCpu)})   warm ${ms(plain.warm)}   (plain parse, ${(plain.first / storm.first).toFixed(1)}× storm's first)`);
  }
}

if (process.argv[1] === here && process.argv.length === 4) measure(process.argv[2]!, process.argv[3] as Parser);
