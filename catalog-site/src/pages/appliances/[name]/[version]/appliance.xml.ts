// The definition exactly as the publisher wrote it (byte for byte: it may be signed or diffed).
import type { APIRoute, GetStaticPaths } from 'astro';
import { getCollection } from 'astro:content';

export const getStaticPaths = (async () =>
  (await getCollection('appliances')).map((e) => ({
    params: { name: e.data.definition.name, version: e.data.definition.version },
    props: { xml: e.body ?? '' },
  }))) satisfies GetStaticPaths;

export const GET: APIRoute = ({ props }) =>
  new Response((props as { xml: string }).xml, { headers: { 'Content-Type': 'application/xml; charset=utf-8' } });
