// The XSD of the definition format, written from the same element table that checks the
// definitions this site publishes (provider/src/channel/definition/elements.ts).
import type { APIRoute } from 'astro';
import { definitionXsd } from '../../lib/definition.ts';

export const GET: APIRoute = () => new Response(definitionXsd(), { headers: { 'Content-Type': 'application/xml; charset=utf-8' } });
