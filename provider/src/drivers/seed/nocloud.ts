// cloud-init NoCloud seed: meta-data and user-data as cloud-init's YAML loader (PyYAML, YAML 1.1)
// reads them, packed into an ISO labelled cidata.
import { buildIso9660 } from './iso9660.ts';

export interface SeedFile {
  path: string;
  content: string;
  permissions?: string;
}

export interface SeedInput {
  instanceId: string;
  hostname: string;
  files: SeedFile[];
}

export interface Seed {
  metaData: string;
  userData: string;
  iso: Uint8Array;
}

export class SeedFileError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`seed file ${JSON.stringify(path)}: ${reason}`);
  }
}

const DEFAULT_PERMISSIONS = '0644'; // cloud-init's own default for write_files

export function nocloudSeed(input: SeedInput): Seed {
  const seen = new Set<string>();
  for (const f of input.files) {
    checkPath(f.path);
    // cloud-init would silently let the later entry win; two files claiming one path is a
    // configuration mistake the user should see.
    if (seen.has(f.path)) throw new SeedFileError(f.path, 'listed more than once');
    seen.add(f.path);
    if (f.permissions !== undefined && !/^[0-7]{3,4}$/.test(f.permissions)) {
      throw new SeedFileError(f.path, `permissions ${JSON.stringify(f.permissions)} are not octal like 0644`);
    }
  }

  const metaData = `instance-id: ${scalar(input.instanceId)}\nlocal-hostname: ${scalar(input.hostname)}\n`;

  const lines = ['#cloud-config', `hostname: ${scalar(input.hostname)}`];
  if (input.files.length > 0) {
    lines.push('write_files:');
    for (const f of input.files) {
      lines.push(`  - path: ${scalar(f.path)}`);
      // Quoted so YAML 1.1 cannot read 0644 as the integer 420.
      lines.push(`    permissions: ${quoted(f.permissions ?? DEFAULT_PERMISSIONS)}`);
      lines.push(...contentLines(f.content, '    '));
    }
  }
  const userData = lines.join('\n') + '\n';

  const encoder = new TextEncoder();
  const iso = buildIso9660({
    volumeId: 'cidata',
    files: [
      { name: 'meta-data', data: encoder.encode(metaData) },
      { name: 'user-data', data: encoder.encode(userData) },
    ],
  });
  return { metaData, userData, iso };
}

function checkPath(path: string): void {
  if (path.includes('\0')) throw new SeedFileError(path, 'contains a NUL character');
  if (!path.startsWith('/')) throw new SeedFileError(path, 'must be absolute');
  if (path.split('/').includes('..')) throw new SeedFileError(path, 'must not contain ".." segments');
}

// Characters a literal block cannot carry unchanged: anything PyYAML's reader rejects
// (controls other than tab/newline, DEL, C1 except NEL, lone surrogates, U+FFFE/U+FFFF), CR
// (line breaks are normalised to LF), and what YAML 1.1 counts as line breaks (NEL, U+2028,
// U+2029), plus a BOM, which a reader may drop.
const NOT_LITERAL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function contentLines(content: string, indent: string): string[] {
  if (content === '') return [`${indent}content: ""`];
  // Trailing blanks survive a literal block in theory but not editors, linters or some
  // emitters; base64 is never ambiguous, so any line ending in a blank goes that way.
  if (NOT_LITERAL.test(content) || /[ \t]$/m.test(content)) {
    return [
      `${indent}encoding: b64`,
      `${indent}content: ${Buffer.from(content, 'utf8').toString('base64')}`,
    ];
  }
  const body = content.endsWith('\n') ? content.slice(0, -1) : content;
  const lines = body.split('\n');
  // Chomping: strip (-) when there is no final newline, clip (default) for exactly one, keep (+)
  // when there are more, since the extra ones are otherwise dropped.
  const chomp = !content.endsWith('\n') ? '-' : body.endsWith('\n') || body === '' ? '+' : '';
  // The content indentation is taken from the first non-empty line; if that line starts with a
  // space it must be given explicitly (relative to the mapping holding `content:`).
  const firstText = lines.find((l) => l !== '') ?? '';
  const indicator = firstText.startsWith(' ') ? '2' : '';
  const inner = `${indent}  `;
  return [`${indent}content: |${indicator}${chomp}`, ...lines.map((l) => (l === '' ? '' : inner + l))];
}

// Plain when that cannot change meaning, otherwise double-quoted.
function scalar(value: string): string {
  const plain = /^[A-Za-z/][A-Za-z0-9_./-]*$/.test(value) && !/^(y|n|yes|no|true|false|on|off|null)$/i.test(value);
  return plain ? value : quoted(value);
}

// A YAML double-quoted scalar; every character outside printable ASCII that could trouble a
// reader is escaped, so the result is valid whatever the input.
function quoted(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0xd800 && code <= 0xdfff) ||
      code === 0x2028 || code === 0x2029 || code === 0xfeff || code === 0xfffe || code === 0xffff) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return out + '"';
}
