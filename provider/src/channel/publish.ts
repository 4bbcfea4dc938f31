// What a channel may publish: the verdict on a set of definition files, from their bytes. Each
// file is validated (the validator's messages, file:line:column), then the set as a whole: two
// definitions of one name and version, versions that differ only in case (one folder on a
// case-insensitive disk), and dependency cycles. The catalog site's build and `storm validate`
// both ask this, so a publisher gets the same answer from either before anything is published.
import { createHash } from 'node:crypto';
import { formatProblems, parseApplianceDefinition } from './definition.ts';
import { findDependencyCycle } from './resolve.ts';
import type { ApplianceDefinition } from './types.ts';

export interface DefinitionFile {
  /** How the file is named in messages. */
  file: string;
  bytes: Uint8Array;
  mtime: Date;
}

export interface PublishedDefinition {
  file: string;
  /** The definition's text: encoded as UTF-8 it is the file's bytes again, byte for byte. */
  xml: string;
  definition: ApplianceDefinition;
  /** SHA-256 of the file's bytes, as published (the feed's storm:definition-sha256). */
  definitionSha256: string;
  mtime: Date;
}

export interface ChannelVerdict {
  /** Empty when there are failures: a channel is published whole or not at all. */
  definitions: PublishedDefinition[];
  /** One entry per problem (a file's entry may span lines), each `file:line[:column]: path: message`, sorted. */
  failures: string[];
  warnings: string[];
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The line of the first `<dependency>` naming `name`, for a message about it; 1 when it cannot be found. */
function dependencyLine(xml: string, name: string): number {
  const m = new RegExp(`<dependency>\\s*${name}(:[^<\\s]*)?\\s*</dependency>`).exec(xml);
  return m ? xml.slice(0, m.index).split('\n').length : 1;
}

/** At most a dozen names, however long the cycle. */
function shortened(named: string[]): string[] {
  return named.length > 12 ? [...named.slice(0, 6), `… (${named.length - 11} more)`, ...named.slice(-5)] : named;
}

export function checkChannelFiles(files: readonly DefinitionFile[]): ChannelVerdict {
  const failures: string[] = [];
  const warnings: string[] = [];
  const parsed: PublishedDefinition[] = [];
  for (const f of [...files].sort((a, b) => a.file.localeCompare(b.file))) {
    const result = parseApplianceDefinition(f.bytes, f.file);
    if (!result.ok) {
      failures.push(formatProblems(result.problems, f.file));
      continue;
    }
    const xml = utf8.decode(f.bytes);
    // The validator took only UTF-8, so this holds; were it ever not to, publishing would change the bytes.
    if (Buffer.compare(Buffer.from(xml, 'utf8'), f.bytes) !== 0) {
      failures.push(`${f.file}:1: /: the file does not read back as the same bytes; save it as UTF-8`);
      continue;
    }
    parsed.push({ file: f.file, xml, definition: result.definition, definitionSha256: createHash('sha256').update(f.bytes).digest('hex'), mtime: f.mtime });
  }

  const seen = new Map<string, PublishedDefinition>();
  const unique: PublishedDefinition[] = [];
  for (const p of parsed) {
    const { name, version } = p.definition;
    const key = `${name}/${version}`.toLowerCase();
    const other = seen.get(key);
    if (other) {
      failures.push(
        other.definition.version === version
          ? `${p.file}:1: /appliance/version: ${name} ${version} is also defined by ${other.file}; give one of them another version`
          : `${p.file}:1: /appliance/version: ${name} ${version} differs from ${name} ${other.definition.version} (${other.file}) only in case, and on a case-insensitive disk they would be one folder; give one of them another version`,
      );
      continue;
    }
    seen.set(key, p);
    unique.push(p);
  }

  const listing = unique.map((p) => ({
    published: p,
    name: p.definition.name,
    version: p.definition.version,
    dependencies: p.definition.dependencies.map((d) => (d.version === null ? d.name : `${d.name}:${d.version}`)),
  }));
  const cycle = findDependencyCycle(listing);
  if (cycle) {
    const first = cycle[0]!.published;
    failures.push(
      `${first.file}:${dependencyLine(first.xml, cycle[1]!.name)}: /appliance/dependency: dependency cycle: ${shortened(cycle.map((a) => `${a.name} ${a.version}`)).join(' → ')}; each needs the next installed first, so none of them can be installed; remove one of these dependencies`,
    );
  }

  const names = new Set(unique.map((p) => p.definition.name));
  for (const p of unique) {
    for (const d of p.definition.dependencies) {
      if (!names.has(d.name)) warnings.push(`${p.definition.name} ${p.definition.version} depends on ${d.name}, which this channel does not publish`);
    }
  }
  return { definitions: failures.length > 0 ? [] : unique, failures: failures.sort(), warnings };
}
