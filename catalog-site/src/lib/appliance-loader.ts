// Content loader: every `**/appliance.xml` under the appliances directory, parsed and validated
// by the shared definition module. Any invalid definition fails the build with the validator's
// own messages (file:line: path: message); so do duplicates of one name and version.
import { createHash } from 'node:crypto';
import { glob, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Loader } from 'astro/loaders';
import { formatProblems, parseApplianceDefinition, type ApplianceDefinition } from './definition.ts';
import { entryId } from './urls.ts';

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

export function applianceLoader(options: { directory: string }): Loader {
  return {
    name: 'storm-appliance-definitions',
    async load({ store, parseData, logger, generateDigest, config }) {
      const dir = options.directory;
      const dirStat = await stat(dir).catch(() => null);
      if (!dirStat?.isDirectory()) {
        throw new ChannelDefinitionError(`The appliances directory ${dir} does not exist; create it or set STORM_CHANNEL_APPLIANCES to the directory holding <name>/appliance.xml files.`);
      }
      const files: string[] = [];
      for await (const f of glob('**/appliance.xml', { cwd: dir })) files.push(path.join(dir, f));
      files.sort();

      const failures: string[] = [];
      const parsed: { file: string; xml: string; definition: ApplianceDefinition; mtime: Date }[] = [];
      await Promise.all(
        files.map(async (file) => {
          const [xml, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
          const source = displayPath(file);
          const result = parseApplianceDefinition(xml, source);
          if (!result.ok) failures.push(formatProblems(result.problems, source));
          else parsed.push({ file, xml, definition: result.definition, mtime: st.mtime });
        }),
      );
      const seen = new Map<string, string>();
      for (const p of parsed.sort((a, b) => a.file.localeCompare(b.file))) {
        const id = entryId(p.definition.name, p.definition.version);
        const other = seen.get(id);
        if (other) {
          failures.push(`${displayPath(p.file)}:1: /appliance/version: ${p.definition.name} ${p.definition.version} is also defined by ${displayPath(other)}; give one of them another version`);
        }
        seen.set(id, p.file);
      }
      if (failures.length) {
        throw new ChannelDefinitionError(`${failures.length} invalid appliance definition(s) in ${dir}:\n${failures.sort().join('\n')}`);
      }

      store.clear();
      for (const p of parsed) {
        const id = entryId(p.definition.name, p.definition.version);
        const data = await parseData({
          id,
          data: {
            definition: p.definition,
            source: path.relative(dir, p.file),
            definitionSha256: createHash('sha256').update(p.xml, 'utf8').digest('hex'),
            published: p.mtime,
          },
        });
        const inRoot = path.relative(fileURLToPath(config.root), p.file);
        const filePath = inRoot.startsWith('..') || path.isAbsolute(inRoot) ? undefined : inRoot;
        store.set({ id, data, body: p.xml, filePath, digest: generateDigest(p.xml) });
      }
      const names = new Set(parsed.map((p) => p.definition.name));
      for (const p of parsed) {
        for (const d of p.definition.dependencies) {
          if (!names.has(d.name)) logger.warn(`${p.definition.name} ${p.definition.version} depends on ${d.name}, which this channel does not publish`);
        }
      }
      if (!parsed.length) logger.warn(`no appliance.xml under ${dir}: the channel will be empty`);
      else logger.info(`${parsed.length} appliance definition(s) from ${dir}`);
    },
  };
}
