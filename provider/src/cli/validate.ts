// `storm validate`: a publisher's check of appliance definitions before building the channel,
// with the verdict and the messages the catalog site's build gives (../channel/publish.ts): each
// definition validated (file:line:column: path: message), then the set as a whole (duplicates,
// versions that differ only in case, dependency cycles).
import { glob, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkChannelFiles, withLocalImages, type DefinitionFile } from '../channel/publish.ts';
import { definitionFolders, localImageBeside } from '../channel/local-image.ts';

export interface ValidateCommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  cwd?: string;
}

export const validateUsage = 'storm validate [--quiet] FILE|FOLDER...';

export const validateHelp = `Usage: ${validateUsage}

Check appliance definitions as the catalog site's build does, before publishing them:

  FILE      an appliance definition (any name)
  FOLDER    every **/appliance.xml under it, as the site reads its appliances folder

Each definition is validated (the format is the STORM paper's Figure 2 plus storm's fields; the
site publishes its XSD at /schema/appliance-definition.xsd), then all of them together: no name
and version twice, no two versions that differ only in case, no dependency cycle. Problems are
printed one per line, as the build prints them:

  appliances/webserv/appliance.xml:13:13: /appliance/hardware/memory: memory must be ...

What a definition in the paper's format leaves out is derived as the build derives it: a missing
<name> from its folder (webserv/appliance.xml, webserv/1.0.0-0/appliance.xml) or else its label,
a missing <sha256> from the image file beside it (named as its <url> ends), which must then be
there. A <sha256> that disagrees with that file is a problem.

Dependencies on appliances not among the files are warnings, as in the build (the channel may
publish them from elsewhere).

  --quiet   print problems only, not the summary line

Exit status: 0 all valid, 1 a problem, 2 usage error or unreadable path.
`;

const defaultIO = (): ValidateCommandIO => ({ stdout: process.stdout, stderr: process.stderr });

export async function validateCommand(args: string[], io: ValidateCommandIO = defaultIO()): Promise<number> {
  let values: { quiet?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, allowPositionals: true, options: { quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    io.stderr.write(`storm validate: ${(e as Error).message}\nUsage: ${validateUsage}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(validateHelp);
    return 0;
  }
  if (positionals.length === 0) {
    io.stderr.write(`storm validate: name the definitions or a folder of them\nUsage: ${validateUsage}\n`);
    return 2;
  }
  const cwd = io.cwd ?? process.cwd();
  // Named as the build names them: relative to where the command runs, when inside it.
  const shown = (file: string): string => {
    const rel = path.relative(cwd, file);
    return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
  };
  const files: DefinitionFile[] = [];
  for (const given of positionals) {
    const where = path.resolve(cwd, given);
    const st = await stat(where).catch(() => null);
    if (st === null) {
      io.stderr.write(`storm validate: ${given} does not exist\n`);
      return 2;
    }
    const found: string[] = [];
    // The folders a name may come from: below the folder given, as the site reads its appliances
    // folder; for a file given by itself, the one it is in.
    const top = st.isDirectory() ? where : path.dirname(path.dirname(where));
    if (st.isDirectory()) {
      for await (const f of glob('**/appliance.xml', { cwd: where })) found.push(path.join(where, f));
      if (found.length === 0) io.stderr.write(`storm validate: warning: no appliance.xml under ${given}\n`);
    } else found.push(where);
    for (const file of found.sort()) {
      try {
        // Only the site's own layout (…/appliance.xml) says the folder is the appliance's.
        const folders = path.basename(file) === 'appliance.xml' ? definitionFolders(top, file) : [];
        files.push({ file: shown(file), bytes: await readFile(file), mtime: (await stat(file)).mtime, folders });
      } catch (e) {
        io.stderr.write(`storm validate: cannot read ${shown(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
        return 2;
      }
    }
  }
  const verdict = checkChannelFiles(await withLocalImages(files, (f, name) => localImageBeside(path.resolve(cwd, f.file), name, shown)));
  for (const f of verdict.failures) io.stderr.write(`${f}\n`);
  for (const w of verdict.warnings) io.stderr.write(`warning: ${w}\n`);
  if (!values.quiet) {
    const plural = (n: number) => `${n} definition${n === 1 ? '' : 's'}`;
    if (verdict.failures.length === 0) io.stdout.write(`${plural(files.length)} valid\n`);
    else {
      const bad = new Set(verdict.failures.map((f) => f.slice(0, f.search(/:\d+(:\d+)?: /))));
      io.stdout.write(`${bad.size} of ${plural(files.length)} with problems\n`);
    }
  }
  return verdict.failures.length === 0 ? 0 : 1;
}
