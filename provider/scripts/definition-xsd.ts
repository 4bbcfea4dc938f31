// Writes provider/src/channel/appliance-definition.xsd from the element table
// (src/channel/definition/elements.ts). `--check` fails when the committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { definitionXsd } from '../src/channel/definition.ts';

export const XSD_FILE = fileURLToPath(new URL('../src/channel/appliance-definition.xsd', import.meta.url));

if (import.meta.url === `file://${process.argv[1]}`) {
  const xsd = definitionXsd();
  if (process.argv.includes('--check')) {
    if (readFileSync(XSD_FILE, 'utf8') !== xsd) {
      console.error(`${XSD_FILE} is stale: run npx tsx provider/scripts/definition-xsd.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(XSD_FILE, xsd);
    console.log(`wrote ${XSD_FILE}`);
  }
}
