import type { APIRoute } from 'astro';
import { definitionJsonSchema } from '../../lib/definition.ts';

export const GET: APIRoute = () =>
  new Response(`${JSON.stringify(definitionJsonSchema(), null, 2)}\n`, { headers: { 'Content-Type': 'application/schema+json' } });
