// The one appliance-definition parser and validator (provider/src/channel): the site, the
// provider and the CLI accept and reject the same documents with the same messages.
export { definitionJsonSchema, definitionXsd, formatProblems, parseApplianceDefinition } from '../../../provider/src/channel/definition.ts';
export type { ApplianceDefinition, DefinitionProblem, ParseResult } from '../../../provider/src/channel/types.ts';
