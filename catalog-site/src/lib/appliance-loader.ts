// Content loader: every `**/appliance.xml` under the appliances directory, parsed and validated
// by the shared definition module. Any invalid definition fails the build with the validator's
// own messages (file:line:column: path: message); so do two definitions of one name and version,
// versions that would share a folder on a case-insensitive disk, paths that collide with the
// site's own, and dependency cycles. All of it is decided before anything is written: a build
// that fails leaves no dist/ behind, and one that passes cannot fail on a path.
//
// checkChannel() is the whole verdict, from the files' bytes, with no Astro in it: the loader
// reads the files and hands them over, and the tests (the fuzzer among them) call it directly.
import { createHash } from 'node:crypto';
import { glob, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Loader } from 'astro/loaders';
import { findDependencyCycle } from '../../../provider/src/channel/resolve.ts';
import { formatProblems, parseApplianceDefinition, type ApplianceDefinition } from './definition.ts';
import { appliancePath, definitionPath, entryId } from './urls.ts';

/** A publisher's mistake: the message says it all, so no stack trace into the loader. */
export class ChannelDefinitionError extends Error {
  override name = 'ChannelDefinitionError';
  constructor(message: string) {
    super(message);
    this.stack = `${this.name}: ${message}`;
  }
}

/** How a file is named in messages: relative to the working directory when inside it. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

export interface DefinitionFile {
  /** Absolute path. */
  file: string;
  bytes: Uint8Array;
  mtime: Date;
}

export interface ChannelEntry {
  id: string;
  file: string;
  /** The definition's text: encoded as UTF-8 it is `bytes` again, byte for byte. */
  xml: string;
  definition: ApplianceDefinition;
  /** SHA-256 of the file's bytes, as published. */
  definitionSha256: string;
  mtime: Date;
}

export interface ChannelVerdict {
  entries: ChannelEntry[];
  /** One line each, `file:line[:column]: path: message`, sorted. */
  failures: string[];
  warnings: string[];
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The line of the first `<dependency>` naming `name`, for a message about it; 1 when it cannot be found. */
function dependencyLine(xml: string, name: string): number {
  const m = new RegExp(`<dependency>\\s*${name}(:[^<\\s]*)?\\s*</dependency>`).exec(xml);
  return m ? xml.slice(0, m.index).split('\n').length : 1;
}

/**
 * The site paths each appliance makes, checked against one another ignoring case (as macOS and
 * Windows disks compare them): a file that is also a folder, or two files that are one. The
 * validator refuses the versions that would do it today (RESERVED_VERSIONS); this keeps a
 * change of layout from crashing a build halfway through writing it.
 */
export function pathCollisions(entries: readonly { name: string; version: string }[]): { entry: number; message: string }[] {
  const files = new Map<string, { path: string; entry: number }>();
  const folders = new Set<string>();
  const out: { entry: number; message: string }[] = [];
  entries.forEach(({ name, version }, entry) => {
    for (const p of [`${appliancePath(name)}index.html`, definitionPath(name, version)]) {
      const key = p.toLowerCase();
      const other = files.get(key);
      if (other !== undefined && other.path !== p) out.push({ entry, message: `${p} and ${other.path} are one file on a case-insensitive disk` });
      files.set(key, { path: p, entry });
      const parts = key.split('/');
      for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
    }
  });
  for (const [key, f] of files) if (folders.has(key)) out.push({ entry: f.entry, message: `${f.path} would be both a file and a folder of the site` });
  return out;
}

/** The channel's verdict on its definition files: what to publish, or why not. */
export function checkChannel(files: readonly DefinitionFile[], display: (file: string) => string = displayPath): ChannelVerdict {
  const failures: string[] = [];
  const warnings: string[] = [];
  const parsed: ChannelEntry[] = [];
  for (const f of files) {
    const source = display(f.file);
    const result = parseApplianceDefinition(f.bytes, source);
    if (!result.ok) {
      failures.push(formatProblems(result.problems, source));
      continue;
    }
    const xml = utf8.decode(f.bytes);
    // The validator took only UTF-8, so this holds; were it ever not to, publishing would change the bytes.
    if (Buffer.compare(Buffer.from(xml, 'utf8'), f.bytes) !== 0) {
      failures.push(`${source}:1: /: the file does not read back as the same bytes; save it as UTF-8`);
      continue;
    }
    const { name, version } = result.definition;
    parsed.push({
      id: entryId(name, version),
      file: f.file,
      xml,
      definition: result.definition,
      definitionSha256: createHash('sha256').update(f.bytes).digest('hex'),
      mtime: f.mtime,
    });
  }
  parsed.sort((a, b) => a.file.localeCompare(b.file));

  const seen = new Map<string, ChannelEntry>();
  const unique: ChannelEntry[] = [];
  for (const p of parsed) {
    const { name, version } = p.definition;
    const other = seen.get(p.id.toLowerCase());
    if (other) {
      const same = other.id === p.id;
      failures.push(
        same
          ? `${display(p.file)}:1: /appliance/version: ${name} ${version} is also defined by ${display(other.file)}; give one of them another version`
          : `${display(p.file)}:1: /appliance/version: ${name} ${version} differs from ${other.definition.name} ${other.definition.version} (${display(other.file)}) only in case, and on a case-insensitive disk they would be one folder; give one of them another version`,
      );
      continue;
    }
    seen.set(p.id.toLowerCase(), p);
    unique.push(p);
  }
  for (const c of pathCollisions(unique.map((p) => p.definition))) failures.push(`${display(unique[c.entry]!.file)}:1: /appliance/version: ${c.message}; give it another version`);

  const listing = unique.map((p) => ({
    entry: p,
    name: p.definition.name,
    version: p.definition.version,
    dependencies: p.definition.dependencies.map((d) => (d.version === null ? d.name : `${d.name}:${d.version}`)),
  }));
  const cycle = findDependencyCycle(listing);
  if (cycle) {
    const first = cycle[0]!;
    const named = cycle.map((a) => `${a.name} ${a.version}`);
    const shown = named.length > 12 ? [...named.slice(0, 6), `… (${named.length - 11} more)`, ...named.slice(-5)] : named;
    failures.push(
      `${display(first.entry.file)}:${dependencyLine(first.entry.xml, cycle[1]!.name)}: /appliance/dependency: dependency cycle: ${shown.join(' → ')}; each needs the next installed first, so none of them can be installed; remove one of these dependencies`,
    );
  }

  const names = new Set(parsed.map((p) => p.definition.name));
  for (const p of parsed) {
    for (const d of p.definition.dependencies) {
      if (!names.has(d.name)) warnings.push(`${p.definition.name} ${p.definition.version} depends on ${d.name}, which this channel does not publish`);
    }
  }
  return { entries: failures.length > 0 ? [] : parsed, failures: failures.sort(), warnings };
}

export function applianceLoader(options: { directory: string }): Loader {
  return {
    name: 'storm-appliance-definitions',
    async load({ store, parseData, logger, generateDigest, config }) {
      const dir = options.directory;
      const dirStat = await stat(dir).catch(() => null);
      if (!dirStat?.isDirectory()) {
        throw new ChannelDefinitionError(`The appliances directory ${dir} does not exist; create it or set STORM_CHANNEL_APPLIANCES to the directory holding <name>/appliance.xml files.`);
      }
      const names: string[] = [];
      for await (const f of glob('**/appliance.xml', { cwd: dir })) names.push(path.join(dir, f));
      names.sort();
      // Bytes, not text: what is published is the file as it is, and the validator decides what it may be.
      const files = await Promise.all(names.map(async (file): Promise<DefinitionFile> => ({ file, bytes: await readFile(file), mtime: (await stat(file)).mtime })));

      const verdict = checkChannel(files);
      if (verdict.failures.length) {
        const count = new Set(verdict.failures.map((f) => f.split(':')[0])).size;
        throw new ChannelDefinitionError(`${count} invalid appliance definition(s) in ${dir}:\n${verdict.failures.join('\n')}`);
      }

      store.clear();
      for (const p of verdict.entries) {
        const data = await parseData({
          id: p.id,
          data: {
            definition: p.definition,
            source: path.relative(dir, p.file),
            definitionSha256: p.definitionSha256,
            published: p.mtime,
          },
        });
        const inRoot = path.relative(fileURLToPath(config.root), p.file);
        const filePath = inRoot.startsWith('..') || path.isAbsolute(inRoot) ? undefined : inRoot;
        store.set({ id: p.id, data, body: p.xml, filePath, digest: generateDigest(p.xml) });
      }
      for (const w of verdict.warnings) logger.warn(w);
      if (!verdict.entries.length) logger.warn(`no appliance.xml under ${dir}: the channel will be empty`);
      else logger.info(`${verdict.entries.length} appliance definition(s) from ${dir}`);
    },
  };
}
