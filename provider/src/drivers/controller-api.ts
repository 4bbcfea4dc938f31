// A client of storm controller's HTTPS API, as the provider uses it: JSON in and out, the
// controller's own CA as the only trust, the admin token as a bearer token. Failures say where
// (the URL) and what to check, in the words a user can act on.

/** The wire format of a scaling group, as the provider sends it (the controller checks every field). */
export interface WireGroup {
  policy: {
    min: number; max: number; guestCpuHigh: number; guestCpuLow: number; windowSeconds: number; step: number; cooldownOutSeconds: number; cooldownInSeconds: number;
    scaleOutTarget?: number; scaleInTarget?: number; saturatedGrowth?: number; saturatedServerCpu?: number;
  };
  shape: {
    deployments: string[];
    memoryMib: number;
    vcpus: number;
    network: string;
    variables: Record<string, string>;
    files: { path: string; content: string; permissions: string }[];
    services: string[];
    placement: 'spread' | 'consolidate';
  };
  dnsName: string | null;
  metric: string;
  power: { hostCpuHigh: number; minServersOn: number; emptyHoldSeconds: number; maxConcurrentChanges: number; defaultBootSeconds: number } | null;
}

/** What the controller answers about a group: the registration, its drain mark, its members. */
export interface WireGroupView extends WireGroup {
  name: string;
  deleting: boolean;
  lastScaleOutAt: number | null;
  lastScaleInAt: number | null;
  /** How many members the controller holds now. */
  desired: number;
  members: { name: string; server: string; index: number }[];
}

export interface ControllerConnection {
  /** e.g. https://10.0.0.5:8443 */
  url: string;
  token: string;
  /** PEM of the CA that issued the controller's certificate (storm controller init). */
  caPem: string;
}

/** The controller answered, but not with success. */
export class ControllerRefusedError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The controller could not be reached, or its certificate was not the expected one. */
export class ControllerUnreachableError extends Error {}

export interface ControllerReply<T> {
  status: number;
  body: T;
}

const TIMEOUT_MS = 30_000;

/** One request. A 404 is returned (callers decide if absence is an error); other failures throw. */
export async function controllerRequest<T>(c: ControllerConnection, method: 'GET' | 'PUT' | 'DELETE' | 'POST', path: string, body?: unknown): Promise<ControllerReply<T | null>> {
  const { request } = await import('node:https');
  const url = new URL(path, c.url.endsWith('/') ? c.url : `${c.url}/`);
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method,
      ca: c.caPem,
      timeout: TIMEOUT_MS,
      headers: {
        authorization: `Bearer ${c.token}`,
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', (err) => reject(new ControllerUnreachableError(`the controller at ${c.url} broke off its answer: ${err.message}`)));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = text.trim() ? JSON.parse(text) : null;
        } catch {
          json = null;
        }
        const said = typeof json === 'object' && json !== null && 'error' in json ? String((json as { error: unknown }).error) : text.slice(0, 200);
        if (status === 401) return reject(new ControllerRefusedError(status, `the controller at ${c.url} refused the token (${said}); set the provider's controller.token to the admin token storm controller init wrote`));
        if (status === 404) return resolve({ status, body: null });
        if (status < 200 || status >= 300) return reject(new ControllerRefusedError(status, `the controller at ${c.url} answered ${status} to ${method} ${url.pathname}: ${said}`));
        resolve({ status, body: json as T });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const tls = /certificate|self.signed|CERT_|unable to verify|altnames/i.test(`${err.code ?? ''} ${err.message}`);
      reject(new ControllerUnreachableError(tls
        ? `the controller at ${c.url} presented a certificate the given CA did not issue, or for another name (${err.message}); set controller.ca_pem to the controller's ca.pem and use a host name or address its certificate names`
        : `cannot reach the controller at ${c.url} (${err.code ?? err.message}); is storm controller running and listening there?`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}
