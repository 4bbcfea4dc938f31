// The XSD that ships with the definition validator (provider/src/channel), published as is.
import type { APIRoute } from 'astro';

const found = import.meta.glob<string>('../../../../provider/src/channel/appliance-definition.xsd', { query: '?raw', import: 'default', eager: true });

export const GET: APIRoute = () => {
  const xsd = Object.values(found)[0];
  if (xsd === undefined) throw new Error('provider/src/channel/appliance-definition.xsd is missing: the channel cannot publish its schema');
  return new Response(xsd, { headers: { 'Content-Type': 'application/xml; charset=utf-8' } });
};
