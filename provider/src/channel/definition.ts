// The one parser/validator for appliance definitions (format in ./types.ts). The provider, the
// `storm` CLI and the catalog site all call this, so a publisher sees the same verdict and the
// same wording wherever a definition is checked. Pure on purpose (string in, result out): the
// site bundles it, and a parser of untrusted documents has no business touching files or network.
//
// This file is the public entry; the work is in ./definition/, one job per module:
//   encoding.ts     bytes → text: UTF-8 only, anything else refused with how to convert
//   xml-reader.ts   storm's own positioned XML reader: one linear pass, size cap, DOCTYPE/entity
//                   refusal, refused characters, every element and attribute with its offset
//   elements.ts     the one table of element rules (occurrence, limits, value rule, field, wording)
//   checker.ts      the read tree against the table → ApplianceDefinition or problems
//   serializer.ts   ApplianceDefinition → XML, in the table's order
//   json-schema.ts  the JSON Schema of ApplianceDefinition, from the table
//   xsd.ts          the XSD, from the table (committed as ./appliance-definition.xsd)
//   wording.ts      quoting values and guessing what was meant, for messages
// Imports: like all of channel/, only ../rules.ts and its own types — never resources/, drivers/
// or server/, and no parser package: reading XML is part of what must be linear and say every
// problem in a publisher's words. definition/ uses no node built-ins either, so the site can
// bundle it for any runtime.

import type { DefinitionProblem, ParseResult } from './types.ts';
import { checkDefinition, type DefinitionContext } from './definition/checker.ts';
import { decodeDefinition } from './definition/encoding.ts';
import { MAX_SAID, readXml, type RawProblem, type Source, type Unsaid } from './definition/xml-reader.ts';

export { DEFINITION_FORMAT_VERSION, MAX_DEPENDENCIES, MAX_DISKS, MAX_PROVIDES, RESERVED_VERSIONS, type JsonSchema } from './definition/elements.ts';
export { MAX_DEFINITION_BYTES, decodeDefinition } from './definition/encoding.ts';
export { MAX_DEPTH } from './definition/xml-reader.ts';
export { nameFromFolders, nameFromText } from './definition/derive.ts';
export type { DefinitionContext } from './definition/checker.ts';
export { serializeApplianceDefinition } from './definition/serializer.ts';
export { definitionJsonSchema } from './definition/json-schema.ts';
export { definitionXsd } from './definition/xsd.ts';

/** A document with more problems than this gets these and a count of the rest: nobody reads on. */
export const MAX_REPORTED_PROBLEMS = MAX_SAID;

// Problems are found in the table's order; a publisher reads them top to bottom. The sort is
// stable, so problems at one place keep the table's order. The reader and the checker count
// rather than say the problems past MAX_SAID of a kind in a place; each of those has MAX_SAID
// said ones before it, so the first MAX_REPORTED_PROBLEMS here are the document's first.
function inOrder(problems: RawProblem[], unsaid: Unsaid, src: Source): DefinitionProblem[] {
  const sorted = problems.map((p, i) => ({ p, i })).sort((a, b) => (a.p.offset ?? -1) - (b.p.offset ?? -1) || a.i - b.i);
  const shown = sorted.slice(0, MAX_REPORTED_PROBLEMS).map(({ p }) => src.locate(p));
  const rest = sorted.length - shown.length + unsaid.count;
  if (rest > 0) {
    const next = sorted[MAX_REPORTED_PROBLEMS]?.p.offset ?? null;
    const offset = next === null ? unsaid.offset : unsaid.offset === null ? next : Math.min(next, unsaid.offset);
    shown.push(
      src.locate({
        path: '/',
        offset,
        message: `and ${rest} more problem${rest === 1 ? '' : 's'} from about here on, not listed; fix the first ${MAX_REPORTED_PROBLEMS} and check again`,
      }),
    );
  }
  return shown;
}

/**
 * Parses and validates an appliance definition, collecting every problem rather than stopping at
 * the first. Bytes are what a file or a channel holds (only UTF-8 is read: see ./definition/encoding.ts);
 * a string is taken as already decoded. `source` names the document in messages about it as a whole;
 * `context` says where it was found, for the name when it has no <name> (./definition/derive.ts).
 */
export function parseApplianceDefinition(input: string | Uint8Array, source?: string, context: DefinitionContext = {}): ParseResult {
  const doc = source ?? 'the definition';
  let xml: string;
  if (typeof input === 'string') xml = input;
  else {
    const decoded = decodeDefinition(input, doc);
    if (!decoded.ok) return { ok: false, problems: decoded.problems };
    xml = decoded.text;
  }
  const read = readXml(xml, doc, typeof input !== 'string');
  if (read.tree === null) return { ok: false, problems: inOrder(read.problems, read.unsaid, read.source) };
  const checked = checkDefinition({ ...read, tree: read.tree }, context);
  const problems = [...read.problems, ...checked.problems];
  if (problems.length > 0 || checked.definition === null) return { ok: false, problems: inOrder(problems, read.unsaid, read.source) };
  return { ok: true, definition: checked.definition };
}

/** One line per problem, `file:line:column: path: message`, as compilers print them. */
export function formatProblems(problems: DefinitionProblem[], source?: string): string {
  const file = source ?? '<definition>';
  return problems.map((p) => `${file}${p.line !== null ? `:${p.line}${p.column !== null ? `:${p.column}` : ''}` : ''}: ${p.path}: ${p.message}`).join('\n');
}
