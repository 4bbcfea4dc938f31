// Writes docs/ (Terraform registry layout) from the schema model and examples/.
// `--check` fails when the committed docs differ from what the schema says.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storm } from '../src/provider.ts';
import { providerPage, resourcePage } from '../src/schema/docs.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const read = (p: string) => (existsSync(join(repo, p)) ? readFileSync(join(repo, p), 'utf8') : undefined);

export function renderDocs(): Map<string, string> {
  const pages = new Map<string, string>();
  pages.set('docs/index.md', providerPage('terraform-provider-storm', storm.description, read('examples/provider/provider.tf'), storm.configBlock));
  for (const r of storm.resources) {
    const type = r.schema.typeName;
    const short = type.replace(/^storm_/, '');
    pages.set(
      `docs/resources/${short}.md`,
      resourcePage(r.schema, 'terraform-provider-storm', {
        usage: read(`examples/resources/${type}/resource.tf`),
        importCommand: read(`examples/resources/${type}/import.sh`),
      }),
    );
  }
  for (const d of storm.dataSources) {
    const type = d.schema.typeName;
    pages.set(
      `docs/data-sources/${type.replace(/^storm_/, '')}.md`,
      resourcePage(d.schema, 'terraform-provider-storm', { usage: read(`examples/data-sources/${type}/data-source.tf`) }, 'Data Source'),
    );
  }
  return pages;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [path, text] of renderDocs()) {
    if (check) {
      if (read(path) !== text) {
        console.error(`stale: ${path} (run npm run docs)`);
        stale++;
      }
      continue;
    }
    mkdirSync(dirname(join(repo, path)), { recursive: true });
    writeFileSync(join(repo, path), text);
    console.log(`wrote ${path}`);
  }
  process.exitCode = stale ? 1 : 0;
}
