// tfplugin6.Provider: decodes requests, calls the resource definitions, encodes responses.
// Every handler answers with diagnostics instead of throwing.
import type { CtyValue } from '../protocol/cty/index.ts';
import { decodeJson, decodeMsgpack, encodeMsgpack } from '../protocol/cty/index.ts';
import type { AttributePath, Diagnostic } from '../protocol/diagnostics.ts';
import { hasErrors, toDiagnostic } from '../protocol/diagnostics.ts';
import type { Logger } from '../protocol/log.ts';
import type { DataSourceDefinition, ProviderConfig, ProviderDefinition, ResourceContext, ResourceDefinition } from '../contract.ts';
import type { BlockSpec } from '../schema/model.ts';
import { blockCtyType } from '../schema/cty-type.ts';
import { planBlock } from '../schema/plan.ts';
import { protoBlockSchema, protoSchema } from '../schema/protocol.ts';
import { asObject, validateBlock, type ObjectValue } from '../schema/validate.ts';

export type { ProviderDefinition };

interface WireDynamicValue {
  msgpack?: Uint8Array;
  json?: Uint8Array;
}

interface WireDiagnostic {
  severity: number;
  summary: string;
  detail: string;
  attribute?: { steps: WireStep[] };
}

type WireStep = { attribute_name: string } | { element_key_string: string } | { element_key_int: number };

function wirePath(path: AttributePath): { steps: WireStep[] } {
  return {
    steps: path.map((s) => ('attribute' in s ? { attribute_name: s.attribute } : 'key' in s ? { element_key_string: s.key } : { element_key_int: s.index })),
  };
}

export function wireDiagnostics(diags: readonly Diagnostic[]): WireDiagnostic[] {
  return diags.map((d) => ({
    severity: d.severity === 'error' ? 1 : 2,
    summary: d.summary,
    detail: d.detail ?? '',
    ...(d.path && d.path.length ? { attribute: wirePath(d.path) } : {}),
  }));
}

const NULL_MSGPACK = Uint8Array.of(0xc0);

function decode(value: WireDynamicValue | null | undefined, block: BlockSpec): CtyValue {
  if (!value) return null;
  if (value.msgpack && value.msgpack.length) return decodeMsgpack(value.msgpack, blockCtyType(block));
  if (value.json && value.json.length) return decodeJson(value.json, blockCtyType(block)).value;
  return null;
}

function encode(value: ObjectValue | null, block: BlockSpec): WireDynamicValue {
  return { msgpack: value === null ? NULL_MSGPACK : encodeMsgpack(value, blockCtyType(block)) };
}

type Request = Record<string, unknown> & { type_name?: string };
type Response = Record<string, unknown>;
export type Handler = (request: Request) => Promise<Response>;

export function createProviderHandlers(provider: ProviderDefinition, log: Logger, stop: AbortController): Record<string, Handler> {
  const byType = new Map(provider.resources.map((r) => [r.schema.typeName, r]));
  const dataByType = new Map(provider.dataSources.map((d) => [d.schema.typeName, d]));
  let providerConfig: ProviderConfig = provider.configure(null);
  const session = provider.createSession();

  function dataSourceFor(typeName: string | undefined): DataSourceDefinition {
    const d = typeName ? dataByType.get(typeName) : undefined;
    if (!d) throw new Error(`storm has no data source "${typeName}"; it has ${[...dataByType.keys()].join(', ')}.`);
    return d;
  }

  function resourceFor(typeName: string | undefined): ResourceDefinition {
    const r = typeName ? byType.get(typeName) : undefined;
    if (!r) throw new Error(`storm has no resource type "${typeName}"; it has ${[...byType.keys()].join(', ')}.`);
    return r;
  }

  function context(diags: Diagnostic[]): ResourceContext {
    return { log, provider: providerConfig, signal: stop.signal, session, warn: (summary, detail, path) => diags.push({ severity: 'warning', summary, detail, path }) };
  }

  /** Runs a handler body, turning anything thrown into an error diagnostic. */
  function guarded(rpc: string, field: string, body: (diags: Diagnostic[], request: Request) => Promise<Response>): Handler {
    return async (request) => {
      const diags: Diagnostic[] = [];
      let response: Response = {};
      try {
        response = await body(diags, request);
      } catch (err) {
        log.error(`${rpc} failed`, { error: String(err), stack: err instanceof Error ? err.stack : undefined });
        diags.push(toDiagnostic(err, `storm: ${rpc} failed`));
        if (rpc === 'ApplyResourceChange' && !('new_state' in response)) {
          const r = byType.get(request.type_name ?? '');
          // A failed create keeps nothing in state; a failed update keeps what was there.
          if (r) response = { new_state: request.prior_state ?? encode(null, r.schema.block) };
        }
      }
      return { ...response, [field]: wireDiagnostics(diags) };
    };
  }

  const schemaResponse = () => ({
    provider: protoBlockSchema(provider.configBlock, provider.description),
    resource_schemas: Object.fromEntries(provider.resources.map((r) => [r.schema.typeName, protoSchema(r.schema)])),
    data_source_schemas: Object.fromEntries(provider.dataSources.map((d) => [d.schema.typeName, protoSchema(d.schema)])),
    server_capabilities: { get_provider_schema_optional: true, plan_destroy: false },
  });

  return {
    GetMetadata: guarded('GetMetadata', 'diagnostics', async () => ({
      server_capabilities: { get_provider_schema_optional: true },
      resources: provider.resources.map((r) => ({ type_name: r.schema.typeName })),
      data_sources: provider.dataSources.map((d) => ({ type_name: d.schema.typeName })),
    })),

    GetProviderSchema: guarded('GetProviderSchema', 'diagnostics', async () => schemaResponse()),

    GetResourceIdentitySchemas: guarded('GetResourceIdentitySchemas', 'diagnostics', async () => ({})),

    GetFunctions: guarded('GetFunctions', 'diagnostics', async () => ({ functions: {} })),

    ValidateProviderConfig: guarded('ValidateProviderConfig', 'diagnostics', async (diags, req) => {
      diags.push(...validateBlock(provider.configBlock, decode(req.config as WireDynamicValue, provider.configBlock)));
      return {};
    }),

    ConfigureProvider: guarded('ConfigureProvider', 'diagnostics', async (_diags, req) => {
      providerConfig = provider.configure(asObject(decode(req.config as WireDynamicValue, provider.configBlock)));
      log.info('configured', { terraform_version: req.terraform_version });
      return {};
    }),

    ValidateResourceConfig: guarded('ValidateResourceConfig', 'diagnostics', async (diags, req) => {
      const r = resourceFor(req.type_name);
      const config = decode(req.config as WireDynamicValue, r.schema.block);
      diags.push(...validateBlock(r.schema.block, config));
      const obj = asObject(config);
      if (obj && r.validate && !hasErrors(diags)) diags.push(...r.validate(obj));
      return {};
    }),

    ValidateDataResourceConfig: guarded('ValidateDataResourceConfig', 'diagnostics', async (diags, req) => {
      const d = dataSourceFor(req.type_name);
      const config = decode(req.config as WireDynamicValue, d.schema.block);
      diags.push(...validateBlock(d.schema.block, config));
      const obj = asObject(config);
      if (obj && d.validate && !hasErrors(diags)) diags.push(...d.validate(obj));
      return {};
    }),

    UpgradeResourceState: guarded('UpgradeResourceState', 'diagnostics', async (diags, req) => {
      const r = resourceFor(req.type_name);
      const version = Number(req.version ?? 0);
      if (version > r.schema.version) {
        throw new Error(`the state of this ${r.schema.typeName} was written by a newer storm (schema version ${version}; this one knows ${r.schema.version}). Upgrade the storm provider.`);
      }
      const raw = req.raw_state as { json?: Uint8Array } | undefined;
      if (!raw?.json?.length) throw new Error('the stored state is in the legacy flatmap format, which storm never wrote.');
      const { value, droppedPaths } = decodeJson(raw.json, blockCtyType(r.schema.block));
      if (droppedPaths.length) diags.push({ severity: 'warning', summary: 'Dropped unknown attributes from state', detail: droppedPaths.join(', ') });
      return { upgraded_state: encode(asObject(value), r.schema.block) };
    }),

    ReadResource: guarded('ReadResource', 'diagnostics', async (diags, req) => {
      const r = resourceFor(req.type_name);
      const current = asObject(decode(req.current_state as WireDynamicValue, r.schema.block));
      if (!current) return { new_state: encode(null, r.schema.block), private: req.private };
      try {
        const next = await r.read(context(diags), current);
        return { new_state: encode(next, r.schema.block), private: req.private };
      } catch (err) {
        diags.push(toDiagnostic(err, `Could not read ${r.schema.typeName}`));
        return { new_state: encode(current, r.schema.block), private: req.private };
      }
    }),

    PlanResourceChange: guarded('PlanResourceChange', 'diagnostics', async (diags, req) => {
      const r = resourceFor(req.type_name);
      const block = r.schema.block;
      const proposed = asObject(decode(req.proposed_new_state as WireDynamicValue, block));
      if (!proposed) return { planned_state: encode(null, block), planned_private: req.prior_private };
      const prior = asObject(decode(req.prior_state as WireDynamicValue, block));
      const config = asObject(decode(req.config as WireDynamicValue, block)) ?? {};
      const generic = planBlock(block, prior, config);
      const refined = r.refinePlan ? await r.refinePlan(prior, generic.planned, config) : { planned: generic.planned };
      diags.push(...(refined.warnings ?? []));
      return {
        planned_state: encode(refined.planned, block),
        requires_replace: [...generic.requiresReplace, ...(refined.requiresReplace ?? [])].map(wirePath),
        planned_private: req.prior_private,
      };
    }),

    ApplyResourceChange: guarded('ApplyResourceChange', 'diagnostics', async (diags, req) => {
      const r = resourceFor(req.type_name);
      const block = r.schema.block;
      const prior = asObject(decode(req.prior_state as WireDynamicValue, block));
      const planned = asObject(decode(req.planned_state as WireDynamicValue, block));
      const ctx = context(diags);
      if (!planned) {
        if (prior) {
          try {
            await r.delete(ctx, prior);
          } catch (err) {
            diags.push(toDiagnostic(err, `Could not destroy ${r.schema.typeName}`));
            return { new_state: encode(prior, block) };
          }
        }
        return { new_state: encode(null, block) };
      }
      try {
        const next = prior ? await r.update(ctx, prior, planned) : await r.create(ctx, planned);
        return { new_state: encode(next, block), private: req.planned_private };
      } catch (err) {
        diags.push(toDiagnostic(err, prior ? `Could not update ${r.schema.typeName}` : `Could not create ${r.schema.typeName}`));
        return { new_state: encode(prior, block) };
      }
    }),

    ImportResourceState: guarded('ImportResourceState', 'diagnostics', async (diags, req) => {
      const r = resourceFor(req.type_name);
      if (!r.importState) throw new Error(`${r.schema.typeName} cannot be imported.`);
      const state = await r.importState(context(diags), String(req.id ?? ''));
      return { imported_resources: [{ type_name: r.schema.typeName, state: encode(state, r.schema.block) }] };
    }),

    ReadDataSource: guarded('ReadDataSource', 'diagnostics', async (diags, req) => {
      const d = dataSourceFor(req.type_name);
      const config = asObject(decode(req.config as WireDynamicValue, d.schema.block)) ?? {};
      try {
        return { state: encode(await d.read(context(diags), config), d.schema.block) };
      } catch (err) {
        diags.push(toDiagnostic(err, `Could not read ${d.schema.typeName}`));
        return { state: encode(null, d.schema.block) };
      }
    }),

    StopProvider: async () => {
      stop.abort();
      return { Error: '' };
    },
  };
}
