// Content loader: every `**/appliance.xml` under the appliances directory, judged by the channel
// module's checkChannelFiles (provider/src/channel/publish.ts, the same verdict `storm validate`
// gives): each definition validated, with the validator's own messages (file:line:column: path:
// message), then duplicates, versions that differ only in case, and dependency cycles. On top,
// the paths the site itself writes may not collide. All of it is decided before anything is
// written: a build that fails leaves no dist/ behind, and one that passes cannot fail on a path.
//
// checkChannel() is the whole verdict, from the files' bytes, with no Astro in it: the loader
// reads the files and hands them over, and the tests (the fuzzer among them) call it directly.
import { glob, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Loader } from 'astro/loaders';
import { checkChannelFiles, withLocalImages, type ChannelVerdict, type DefinitionFile } from '../../../provider/src/channel/publish.ts';
import { definitionFolders, localImageBeside } from '../../../provider/src/channel/local-image.ts';
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

/** The channel's verdict on its definition files (named in messages as `display` says): what to publish, or why not. */
export function checkChannel(files: readonly DefinitionFile[], display: (file: string) => string = displayPath): ChannelVerdict & { files: Map<string, string> } {
  // Files are named for messages here; the map leads back to where they are.
  const named = new Map(files.map((f) => [display(f.file), f.file]));
  const verdict = checkChannelFiles(files.map((f) => ({ ...f, file: display(f.file) })));
  const failures = [...verdict.failures];
  for (const c of pathCollisions(verdict.definitions.map((p) => p.definition))) {
    failures.push(`${verdict.definitions[c.entry]!.file}:1: /appliance/version: ${c.message}; give it another version`);
  }
  return { ...verdict, definitions: failures.length > 0 ? [] : verdict.definitions, failures: failures.sort(), files: named };
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
      const read = await Promise.all(
        names.map(async (file): Promise<DefinitionFile> => ({ file, bytes: await readFile(file), mtime: (await stat(file)).mtime, folders: definitionFolders(dir, file) })),
      );
      // Images kept beside their definitions: the build computes their checksums and publishes them.
      const files = await withLocalImages(read, (f, name) => localImageBeside(f.file, name, displayPath));

      const verdict = checkChannel(files);
      if (verdict.failures.length) {
        const count = new Set(verdict.failures.map((f) => f.split(':')[0])).size;
        throw new ChannelDefinitionError(`${count} invalid appliance definition(s) in ${dir}:\n${verdict.failures.join('\n')}`);
      }

      store.clear();
      for (const p of verdict.definitions) {
        const file = verdict.files.get(p.file)!;
        const id = entryId(p.definition.name, p.definition.version);
        const data = await parseData({
          id,
          data: {
            definition: p.definition,
            source: path.relative(dir, file),
            definitionSha256: p.definitionSha256,
            published: p.mtime,
            download: p.download,
          },
        });
        const inRoot = path.relative(fileURLToPath(config.root), file);
        const filePath = inRoot.startsWith('..') || path.isAbsolute(inRoot) ? undefined : inRoot;
        store.set({ id, data, body: p.xml, filePath, digest: generateDigest(p.xml) });
      }
      for (const w of verdict.warnings) logger.warn(w);
      if (!verdict.definitions.length) logger.warn(`no appliance.xml under ${dir}: the channel will be empty`);
      else logger.info(`${verdict.definitions.length} appliance definition(s) from ${dir}`);
    },
  };
}
