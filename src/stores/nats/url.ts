/**
 * The `nats://` store URL:
 *
 *   nats://127.0.0.1:4222
 *   nats://user:pass@a:4222,b:4222,c:4222?replicas=3&stream=ORDERS&prefix=orders
 *   nats://host?token=…   nats://host?creds=/path/user.creds   nats://host?timeoutMs=5000
 *
 * Several seed servers are separated by commas; the client finds the rest of the cluster itself.
 */
import { InvalidStoreUrlError } from '../../core/errors.js';

export interface NatsUrlOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  creds?: string;
  stream?: string;
  prefix?: string;
  replicas?: number;
  timeoutMs?: number;
}

const KNOWN = new Set(['stream', 'prefix', 'replicas', 'token', 'creds', 'timeoutMs']);

export function parseNatsUrl(url: string): NatsUrlOptions {
  const rest = url.replace(/^nats:\/\//i, '');
  if (rest === url) throw new InvalidStoreUrlError(url, "a NATS URL starts with 'nats://'");
  const [authority = '', query = ''] = rest.split('?', 2);
  const at = authority.lastIndexOf('@');
  const userInfo = at >= 0 ? authority.slice(0, at) : '';
  const hosts = (at >= 0 ? authority.slice(at + 1) : authority)
    .split(',')
    .map((host) =>
      host
        .trim()
        .replace(/^nats:\/\//i, '')
        .replace(/\/$/, ''),
    )
    .filter(Boolean);
  if (hosts.length === 0) throw new InvalidStoreUrlError(url, 'no server is given');
  for (const host of hosts) {
    if (!/^(\[[0-9a-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/i.test(host)) throw new InvalidStoreUrlError(url, `'${host}' is not host[:port]`);
  }
  const options: NatsUrlOptions = { servers: hosts.map((host) => (/:\d+$/.test(host) ? host : `${host}:4222`)) };
  if (userInfo) {
    const colon = userInfo.indexOf(':');
    if (colon < 0) options.token = decodeURIComponent(userInfo);
    else {
      options.user = decodeURIComponent(userInfo.slice(0, colon));
      options.pass = decodeURIComponent(userInfo.slice(colon + 1));
    }
  }
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (!KNOWN.has(key)) throw new InvalidStoreUrlError(url, `unknown parameter '${key}' (known: ${[...KNOWN].join(', ')})`);
  }
  const positive = (name: string, max: number): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1 || value > max)
      throw new InvalidStoreUrlError(url, `${name} must be an integer from 1 to ${max}, got '${raw}'`);
    return value;
  };
  options.replicas = positive('replicas', 5);
  options.timeoutMs = positive('timeoutMs', 600_000);
  options.stream = params.get('stream') ?? undefined;
  options.prefix = params.get('prefix') ?? undefined;
  options.token = params.get('token') ?? options.token;
  options.creds = params.get('creds') ?? undefined;
  return options;
}
