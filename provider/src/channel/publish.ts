// What a channel may publish: the verdict on a set of definition files, from their bytes. Each
// file is validated (the validator's messages, file:line:column), then the set as a whole: two
// definitions of one name and version, versions that differ only in case (one folder on a
// case-insensitive disk), and dependency cycles. The catalog site's build and `storm validate`
// both ask this, so a publisher gets the same answer from either before anything is published.
//
// What a definition in the paper's format leaves out is derived here: its name from its folders
// (or its label: ./definition/derive.ts), its image's sha256 from the image file kept beside it
// (./local-image.ts finds it; the site publishes it). A definition that gives a sha256 and has the
// file beside it must agree with it.
import { createHash } from 'node:crypto';
import { formatProblems, parseApplianceDefinition } from './definition.ts';
import { findDependencyCycle } from './resolve.ts';
import type { ApplianceDefinition } from './types.ts';

/** What an image is, for the feed's enclosure type and for installing it (a .tgz is unpacked). */
export type ImageFormat = 'qcow2' | 'tgz' | 'raw';

export const IMAGE_MEDIA_TYPES: Readonly<Record<ImageFormat, string>> = {
  // shared-mime-info's names, which desktop tools and web servers' mime.types use.
  qcow2: 'application/x-qemu-disk',
  tgz: 'application/gzip',
  raw: 'application/octet-stream',
};

/** An image file beside a definition. */
export interface LocalImage {
  /** How it is named in messages. */
  file: string;
  /** Where it is, to publish it. */
  path: string;
  sha256: string;
  bytes: number;
  format: ImageFormat;
}

/** What users download for an appliance: its image, as the channel knows it. */
export interface Download {
  sha256: string;
  /** Null when the image lives on another server and the build never saw it. */
  bytes: number | null;
  /** The file beside the definition, or null. */
  path: string | null;
  format: ImageFormat;
}

export interface DefinitionFile {
  /** How the file is named in messages. */
  file: string;
  bytes: Uint8Array;
  mtime: Date;
  /** The folders it is in below the channel's appliances folder, outermost first (for a name it leaves out). */
  folders?: readonly string[];
  /** The image file beside it, named as its <url> names the image (see imageFileName), or null. */
  image?: LocalImage | null;
}

export interface PublishedDefinition {
  file: string;
  /** The definition's text: encoded as UTF-8 it is the file's bytes again, byte for byte. */
  xml: string;
  definition: ApplianceDefinition;
  /** SHA-256 of the file's bytes, as published (the feed's storm:definition-sha256). */
  definitionSha256: string;
  mtime: Date;
  download: Download;
}

export interface ChannelVerdict {
  /** Empty when there are failures: a channel is published whole or not at all. */
  definitions: PublishedDefinition[];
  /** One entry per problem (a file's entry may span lines), each `file:line[:column]: path: message`, sorted. */
  failures: string[];
  warnings: string[];
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The 1-based line of a character offset; line 1 when the offset is -1 (not found). */
const lineAt = (xml: string, offset: number): number => (offset === -1 ? 1 : xml.slice(0, offset).split('\n').length);

/** The line of the first `<dependency>` naming `name`, for a message about it; 1 when it cannot be found. */
function dependencyLine(xml: string, name: string): number {
  return lineAt(xml, new RegExp(`<dependency>\\s*${name}(:[^<\\s]*)?\\s*</dependency>`).exec(xml)?.index ?? -1);
}

/** The file name an image URL ends in ("webserv.tgz"), or null when it names none a folder could hold. */
export function imageFileName(url: string): string | null {
  let name: string;
  try {
    name = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  } catch {
    return null;
  }
  return /^[A-Za-z0-9_][A-Za-z0-9._+~-]{0,254}$/.test(name) ? name : null;
}

/** What an image's name says it is, when the build has not seen its bytes. */
export function formatFromName(name: string): ImageFormat {
  const lower = name.toLowerCase();
  if (lower.endsWith('.tgz') || lower.endsWith('.tar.gz')) return 'tgz';
  if (/\.(img|raw|iso)$/.test(lower)) return 'raw';
  return 'qcow2';
}

/** The line of the first `<tag`, for a message about it; 1 when it cannot be found. */
const lineOf = (xml: string, tag: string): number => lineAt(xml, xml.indexOf(`<${tag}`));

/** The download, or why the definition's image cannot be published. */
function downloadOf(f: DefinitionFile, def: ApplianceDefinition, xml: string): Download | string {
  const name = imageFileName(def.image.url) ?? 'the image';
  const local = f.image ?? null;
  if (def.image.sha256 === null) {
    if (local === null) {
      return `${f.file}:${lineOf(xml, 'url')}: /appliance/sha256: no <sha256>, and no image file ${JSON.stringify(name)} beside the definition to compute it from; put the image in the definition's folder (the site publishes it and computes the checksum) or, when it lives on another server, add <sha256>…</sha256> as printed by sha256sum`;
    }
    return { sha256: local.sha256, bytes: local.bytes, path: local.path, format: local.format };
  }
  if (local !== null && local.sha256 !== def.image.sha256) {
    return `${f.file}:${lineOf(xml, 'sha256')}: /appliance/sha256: <sha256> is ${def.image.sha256}, but ${local.file} beside the definition has ${local.sha256}; correct <sha256>, or leave it out for the site to compute`;
  }
  return local !== null
    ? { sha256: local.sha256, bytes: local.bytes, path: local.path, format: local.format }
    : { sha256: def.image.sha256, bytes: null, path: null, format: formatFromName(name) };
}

/**
 * Finds the image file beside each definition that has one (the name its <url> ends in), with
 * `find` doing the looking (./local-image.ts on a disk). Definitions that do not parse are left
 * as they are: checkChannelFiles says why.
 */
export async function withLocalImages(files: readonly DefinitionFile[], find: (file: DefinitionFile, name: string) => Promise<LocalImage | null>): Promise<DefinitionFile[]> {
  return Promise.all(
    files.map(async (f) => {
      const parsed = parseApplianceDefinition(f.bytes, f.file, { folders: f.folders ?? [] });
      const name = parsed.ok ? imageFileName(parsed.definition.image.url) : null;
      return name === null ? f : { ...f, image: await find(f, name) };
    }),
  );
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
    const result = parseApplianceDefinition(f.bytes, f.file, { folders: f.folders ?? [] });
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
    const download = downloadOf(f, result.definition, xml);
    if (typeof download === 'string') {
      failures.push(download);
      continue;
    }
    parsed.push({ file: f.file, xml, definition: result.definition, definitionSha256: createHash('sha256').update(f.bytes).digest('hex'), mtime: f.mtime, download });
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
