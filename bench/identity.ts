/**
 * npm run bench -- identity [--quick] [--users n] [--only sqlite|postgres] [--scenarios a,b] [--walk-start n] [--seconds n] [--reuse] [--pg-schema name] [--pool-size n] [--lag-rate n] [--lookup-rate n] [--search-rate n] [--soak n] [--upgrade] [--upgrade-rate n]
 *
 * The identity service (apps/identity, seed 003) with production-like data: a seeded dataset
 * (default 1M users, 50k groups, 5M memberships; --users n scales it as n, n/20, 5n; --quick:
 * 2,000 users) loaded in bulk through the library, then a real service process on loopback under
 * autocannon (64 connections): lookups by id and by email (as fast as answered, and by email at
 * 5k req/s sent on a schedule: bench/paced.ts), the same schedule against /health (the harness's
 * floor), search (as fast as answered, and at 1k req/s on a schedule), group members, writes, a mix;
 * view lag at 1k writes/s (a client's write-then-read with its Logline-Min-Position token, once
 * the views have drained what the write scenarios left; how long that took is reported), and
 * the service's memory over the mixed run; with --upgrade, last, the zero-downtime upgrade drill:
 * users view version 2 built over the whole dataset and switched while the mixed load runs at
 * --upgrade-rate req/s (default 500; the store stays at version 2). On SQLite, and on PostgreSQL
 * when it is reachable.
 */
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { dataset, FULL_SIZE } from '../apps/identity/src/dataset.js';
import { loadDataset, terminalProgress } from '../apps/identity/src/load.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../test/helpers/postgres.js';
import { call, type IdentityProcess, position, startIdentity } from '../test/identity/service.js';
import { type Autocannon, type AutocannonRequest, loadAutocannon, runLoad } from './autocannon.js';
import { flags, percentile } from './harness.js';
import { type PacedRequest, pacedLoad } from './paced.js';

const CONNECTIONS = 64;
// --quick (also run by a test) has its own folder, so it never replaces a big dataset kept for --reuse.
const DATA_DIR = flags.quick ? '.bench-data/identity-quick' : '.bench-data/identity';
const SEED = 3;
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

/** `--soak n`: only the mixed scenario, for n seconds, with the service's RSS at each minute (the issue's 10-minute memory check: 600). */
const SOAK = arg('soak') === undefined ? undefined : Number(arg('soak'));
if (SOAK !== undefined && !(Number.isSafeInteger(SOAK) && SOAK > 0))
  throw new Error(`--soak must be a whole number of seconds, got ${arg('soak')}`);

/** `--scenarios id,search,lag`: only these (default all: id, email, paced, floor, search, paced-search, members, writes, mixed, lag). */
const ALL_SCENARIOS = ['id', 'email', 'paced', 'floor', 'search', 'paced-search', 'members', 'writes', 'mixed', 'lag'];
const SCENARIOS = new Set(arg('scenarios')?.split(',') ?? ALL_SCENARIOS);
for (const key of SCENARIOS)
  if (!ALL_SCENARIOS.includes(key)) throw new Error(`--scenarios takes a list of ${ALL_SCENARIOS.join(', ')}; got ${key}`);

/** Where the scenarios' walk over users starts: `--walk-start n`, or a random place, printed with the results. */
let walkStarted: number | undefined;
function walkStart(users: number): number {
  walkStarted = arg('walk-start') === undefined ? randomInt(users) : Number(arg('walk-start'));
  if (!Number.isSafeInteger(walkStarted) || walkStarted < 0)
    throw new Error(`--walk-start must be an integer ≥ 0, got ${arg('walk-start')}`);
  return walkStarted;
}

/** `--upgrade`: end with the users view upgrade under the mixed load, sent at `--upgrade-rate` req/s. */
const UPGRADE = process.argv.includes('--upgrade');
const UPGRADE_RATE = Number(arg('upgrade-rate') ?? 500);

/** Lookups/s asked in the rated lookup scenario (`--lookup-rate`; the issue's goal: p99 < 5 ms at ≥ 5,000). */
const LOOKUP_RATE = Number(arg('lookup-rate') ?? 5000);

/**
 * Searches/s asked in the rated search scenario (`--search-rate`). The issue gives search's p99
 * goal (< 50 ms) without a rate, and 64 connections as fast as answered measure mostly their own
 * queue (each waits behind the other 63: p99 ≈ 2 × 64 / searches per second); 1,000/s, a fifth of
 * the lookup rate the issue sets, is the stated load it is also taken at.
 */
const SEARCH_RATE = Number(arg('search-rate') ?? 1000);

/** Writes/s asked of the service while the view lag is probed (`--lag-rate`; the issue's goal is stated at 1,000). */
const LAG_RATE = Number(arg('lag-rate') ?? 1000);
/**
 * Seconds of a rated load before it is measured: the lag probes start after them (see lagAtRate),
 * and the paced lookups' first answers are not timed (bench/paced.ts). A service started for
 * `--scenarios paced` alone stalled its event loop for 10–200 ms at a time in its first three
 * seconds of load (code compiled, statements prepared, cold pages), and those stalls made the p99.
 */
const WARMUP_S = 3;

function sizes() {
  if (flags.quick) return { users: 2000, groups: 100, memberships: 10_000 };
  const users = Number(arg('users') ?? FULL_SIZE.users);
  if (!Number.isSafeInteger(users) || users < 100) throw new Error(`--users must be an integer ≥ 100, got ${arg('users')}`);
  return { users, groups: Math.max(1, Math.round(users / 20)), memberships: users * 5 };
}

interface Row {
  scenario: string;
  requests: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  failed: number;
}

/**
 * Waits until requests autocannon left queued at the service are answered (a /health round trip
 * under 50 ms, at most 60 s), so one scenario's backlog does not count against the next.
 */
async function drained(base: string): Promise<void> {
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    const started = performance.now();
    await fetch(`${base}/health`).then((r) => r.text());
    if (performance.now() - started < 50) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Resident memory of a process, MB (Linux). */
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024;

async function scenarios(autocannon: Autocannon, service: IdentityProcess, size: ReturnType<typeof sizes>, seconds: number) {
  const data = dataset(SEED, size);
  let n = walkStart(size.users);
  // Each generator counts for itself: sharing the walk's counter made a write's rename skip every
  // other user of the walk.
  let names = 0;
  let searches = 0;
  let groups = 0;
  // A walk over users that loaded (colliding ones were refused). It starts at a random place
  // (--walk-start n repeats one): a run that renamed the users an earlier run had renamed found
  // their rows and index pages in PostgreSQL's cache, and its view lag read 100× lower.
  const nextUser = () => data.user(data.loadedUser((n++ * 7919) % size.users));
  // Renames to generated names (another user's): short made-up ones ("Renamed 12") have fewer
  // search terms and cost the users view about half as much PostgreSQL time.
  const nextName = () => data.user((names++ * 104_729) % size.users).name;
  const prefixes = ['hom', 'mar', 'ned', 'sim', 'lis', 'flan', 'bur', 'mps', 'ande', 'wig'];
  const byId: AutocannonRequest = { setupRequest: (r) => ({ ...r, method: 'GET', path: `/users/${nextUser().id}` }) };
  const byEmail: AutocannonRequest = {
    setupRequest: (r) => ({ ...r, method: 'GET', path: `/users?email=${encodeURIComponent(nextUser().email)}` }),
  };
  const search: AutocannonRequest = {
    setupRequest: (r) => ({ ...r, method: 'GET', path: `/users/search?q=${prefixes[searches++ % prefixes.length]}&limit=20` }),
  };
  const health: AutocannonRequest = { method: 'GET', path: '/health' };
  const members: AutocannonRequest = {
    setupRequest: (r) => ({ ...r, method: 'GET', path: `/groups/${data.group((groups++ * 31) % size.groups).id}/members?limit=50` }),
  };
  const write: AutocannonRequest = {
    setupRequest: (r) => ({
      ...r,
      method: 'PATCH',
      path: `/users/${nextUser().id}`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: nextName() }),
    }),
  };
  const mix = [byId, byId, byId, byId, byId, byEmail, byEmail, search, members, write];
  // [key for --scenarios, label, requests, requests/s sent on a schedule (bench/paced.ts; the label
  // then says so), or none: as fast as answered (autocannon)]
  const cases: Array<[string, string, AutocannonRequest[], number?]> = [
    ['id', 'lookup by id', [byId]],
    ['email', 'lookup by email', [byEmail]],
    // The issue's lookup goal is p99 < 5 ms at ≥ 5k req/s. At full speed 64 connections queue behind each
    // other (p99 < 5 ms would need > 12.8k req/s answered), so the latency is also taken at that rate.
    ['paced', 'lookup by email', [byEmail], LOOKUP_RATE],
    // The floor under the row above: the same client and schedule against a request that runs one
    // query (the head position) and reads no view. On a two-core machine that shares the client,
    // the service and PostgreSQL, no request that runs a query answers faster than this at p99.
    ['floor', '/health (one query, no view)', [health], LOOKUP_RATE],
    ['search', 'search (prefix + substring, ranked)', [search]],
    ['paced-search', 'search', [search], SEARCH_RATE],
    ['members', 'group members (50/page)', [members]],
    ['writes', 'writes (PATCH name)', [write]],
    ['mixed', 'mixed (50% id, 20% email, 10% search, 10% members, 10% writes)', mix],
  ];
  const rows: Row[] = [];
  let memory = '';
  for (const [, label, requests, rate] of cases.filter(([key]) => (SOAK === undefined ? SCENARIOS.has(key) : key === 'mixed'))) {
    const mixed = requests === mix;
    const pid = service.child.pid as number;
    const before = rssMb(pid);
    let peak = before;
    const minutes: number[] = [];
    const started = performance.now();
    const sampler = setInterval(() => {
      const rss = rssMb(pid);
      peak = Math.max(peak, rss);
      if (performance.now() - started >= (minutes.length + 1) * 60_000) minutes.push(rss);
    }, 250);
    const { ok, failed, p50, p99, took } =
      rate === undefined
        ? await runLoad(autocannon, { url: service.url, connections: CONNECTIONS, duration: SOAK ?? seconds, requests }).then(
            ({ result, seconds }) => ({
              ok: result['2xx'],
              failed: result.non2xx + result.errors,
              p50: result.latency.p50,
              p99: result.latency.p99,
              took: seconds,
            }),
          )
        : await pacedLoad({
            url: service.url,
            rate,
            seconds: (SOAK ?? seconds) + WARMUP_S,
            warmupSeconds: WARMUP_S,
            connections: CONNECTIONS,
            next: () => paced(requests),
          }).then((r) => ({
            ok: r.ok,
            failed: r.failed,
            p50: Number(percentile(r.latencies, 50).toFixed(1)),
            p99: Number(percentile(r.latencies, 99).toFixed(1)),
            took: r.seconds,
          }));
    clearInterval(sampler);
    await drained(service.url);
    if (mixed)
      memory =
        `service RSS over the mixed run (${Math.round(took)} s): ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB, ${rssMb(pid).toFixed(0)} MB after` +
        (minutes.length ? `; at each minute: ${minutes.map((m) => m.toFixed(0)).join(', ')} MB` : '');
    const scenario = rate === undefined ? label : `${label}, ${rate.toLocaleString('en-US')} req/s paced (open loop, after ${WARMUP_S} s)`;
    rows.push({ scenario, requests: ok, reqPerSec: took > 0 ? ok / took : 0, p50, p99, failed });
  }
  let lag = '';
  if (SOAK === undefined && SCENARIOS.has('lag')) {
    const backlog = await viewsCaughtUp(service, nextUser().id);
    lag = `${await lagAtRate(service, nextUser, nextName, seconds)}; ${backlog}`;
  }
  return { rows, memory, lag, upgrade: UPGRADE ? await upgradeUnderLoad(autocannon, service, mix, nextUser().id) : '' };
}

/**
 * The zero-downtime upgrade drill at this size: `POST /admin/users-view/upgrade` builds users view
 * version 2 from the whole log beside version 1 and switches, while the mixed load runs on 64
 * connections until it answers. Every request of the load must succeed. The load has a rate
 * (UPGRADE_RATE): at full speed on PostgreSQL the service's one thread, busy answering, applied
 * fewer events a second to either users view than the load wrote, and the upgrade never ended.
 */
async function upgradeUnderLoad(autocannon: Autocannon, service: IdentityProcess, mix: AutocannonRequest[], userId: string) {
  const before = await call<{ usersView: number }>(service.url, 'GET', '/health');
  if (before.body.usersView !== 1)
    return `users view upgrade: not run, the store serves version ${before.body.usersView} already (an earlier --upgrade)`;
  const started = performance.now();
  const upgrade = postWithoutTimeout(`${service.url}/admin/users-view/upgrade`).then((reply) => ({
    ...reply,
    seconds: (performance.now() - started) / 1000,
  }));
  // Longer than any upgrade: the load stops when the upgrade answers.
  const load = await runLoad(
    autocannon,
    { url: service.url, connections: CONNECTIONS, duration: 24 * 3600, overallRate: UPGRADE_RATE, requests: mix },
    upgrade,
  );
  const answered = await upgrade;
  await drained(service.url);
  const after = await call<{ displayName?: string }>(service.url, 'GET', `/users/${userId}`);
  const { result } = load;
  return (
    `users view upgrade under the mixed load at ${UPGRADE_RATE} req/s asked: ${answered.status} ${answered.body} after ${answered.seconds.toFixed(1)} s; ` +
    `meanwhile ${result['2xx']} requests answered (${Math.round(result['2xx'] / Math.max(load.seconds, 0.001))} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms), ` +
    `${result.non2xx + result.errors} failed; then a user reads with displayName ${JSON.stringify(after.body.displayName)}`
  );
}

/** A POST that may take minutes (fetch gives up waiting for the answer's headers after 300 s). */
function postWithoutTimeout(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sent = request(url, { method: 'POST' }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    sent.on('error', reject);
    sent.end();
  });
}

/** The next request of the first of `requests` (built as autocannon would), for pacedLoad. */
function paced(requests: AutocannonRequest[]): PacedRequest {
  const first = requests[0] as AutocannonRequest;
  const r = first.setupRequest?.({}) ?? first;
  return { method: r.method ?? 'GET', path: r.path ?? '/', ...(r.headers && { headers: r.headers }), ...(r.body && { body: r.body }) };
}

/** A read of `userId` that the service answers once its views hold the write `wrote` answered (its token). */
const readAfter = (service: IdentityProcess, userId: string, wrote: Awaited<ReturnType<typeof call>>) =>
  call(service.url, 'GET', `/users/${userId}`, { headers: { 'logline-min-position': String(position(wrote)) } });

/** Reads of a backlog probe: the service answers 503 after its 5 s bound, so about two minutes in all. */
const BACKLOG_READS = 24;

/**
 * Waits until the views have applied every write so far (a write, then reads with its token until
 * one is answered), so the lag probes measure the views at the asked rate, not the backlog the
 * write scenarios left. Says how long the backlog took to drain.
 */
async function viewsCaughtUp(service: IdentityProcess, userId: string): Promise<string> {
  const started = performance.now();
  const wrote = await call(service.url, 'PATCH', `/users/${userId}`, { body: { name: 'Backlog Probe' } });
  if (wrote.status !== 200) return `backlog not measured (write ${wrote.status})`;
  for (let tries = 0; tries < BACKLOG_READS; tries++) {
    const read = await readAfter(service, userId, wrote);
    if (read.status === 200)
      return `views drained the write scenarios' backlog ${((performance.now() - started) / 1000).toFixed(1)} s after them`;
  }
  return `views still behind ${((performance.now() - started) / 1000).toFixed(1)} s after the write scenarios`;
}

/**
 * View lag at LAG_RATE writes/s (1k by default): writes sent evenly at that rate (over at most 64 connections, as
 * many as the other scenarios) while a probe writes and reads its write back with the token, every 20 ms; the
 * read's time is the lag a client sees (plus one round trip).
 */
async function lagAtRate(service: IdentityProcess, nextUser: () => { id: string }, nextName: () => string, seconds: number) {
  // Probes start once the writes have run for WARMUP_S: a service whose write path had not
  // run yet (--scenarios lag) spent its first second or two preparing statements on each
  // connection and reading cold pages, and those probes measured its start, not its views.
  // Sent evenly on a schedule (bench/paced.ts): autocannon's overallRate sends each second's 1,000
  // writes in one burst, and the probes then measured the burst's queue more than the views.
  const load = pacedLoad({
    url: service.url,
    rate: LAG_RATE,
    seconds: seconds + WARMUP_S,
    connections: CONNECTIONS,
    next: () => ({
      method: 'PATCH',
      path: `/users/${nextUser().id}`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: nextName() }),
    }),
  });
  const probe = nextUser().id;
  const lags: number[] = [];
  /** Probes that did not end in a 200 read, by what went wrong (a refused write, a 503 past the wait bound). */
  const missed = new Map<string, number>();
  const miss = (what: string) => missed.set(what, (missed.get(what) ?? 0) + 1);
  await new Promise((resolve) => setTimeout(resolve, WARMUP_S * 1000));
  const until = performance.now() + seconds * 1000 - 200;
  while (performance.now() < until) {
    const wrote = await call(service.url, 'PATCH', `/users/${probe}`, { body: { name: `Probe ${lags.length}` } });
    if (wrote.status !== 200) miss(`write ${wrote.status}`);
    else {
      const started = performance.now();
      const read = await readAfter(service, probe, wrote);
      if (read.status === 200) lags.push(performance.now() - started);
      else miss(`read ${read.status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const { ok, failed, seconds: took } = await load;
  lags.sort((a, b) => a - b);
  return `view lag at ${Math.round(ok / took)} writes/s asked of ${LAG_RATE} (probes after ${WARMUP_S} s of them; goal: lag p99 < 100 ms at 1,000): p50 ${percentile(lags, 50).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms over ${lags.length} probes${missed.size ? ` (and ${[...missed].map(([what, n]) => `${n} × ${what}`).join(', ')})` : ''}; ${failed} failed writes`;
}

async function backend(
  autocannon: Autocannon,
  name: string,
  url: string,
  size: ReturnType<typeof sizes>,
  seconds: number,
  reuse = false,
): Promise<string> {
  // --reuse (SQLite) or --pg-schema: a store a previous run with the same sizes loaded; only the scenarios run.
  const report = reuse ? undefined : await loadDataset(url, dataset(SEED, size), terminalProgress);
  const vacuumed = name === 'PostgreSQL' ? await vacuumSchema(url) : '';
  const service = await startIdentity(url);
  try {
    const { rows, memory, lag, upgrade } = await scenarios(autocannon, service, size, seconds);
    const lines = [
      `\n### identity service on ${name}: ${size.users.toLocaleString('en-US')} users, ${size.groups.toLocaleString('en-US')} groups, ${size.memberships.toLocaleString('en-US')} memberships drawn (seed ${SEED})`,
      '',
      !report
        ? 'reused the dataset a previous run loaded (--reuse, --pg-schema)'
        : `bulk load through the library: ${report.events.toLocaleString('en-US')} events in ${report.appendSeconds.toFixed(1)} s (${Math.round(report.events / report.appendSeconds).toLocaleString('en-US')} appends/s, each one append of one event with the inline uniqueness check); ` +
          `${report.refusedUsers.email} email and ${report.refusedUsers.username} username collisions refused (all of them); ${report.repeatedMemberships} repeated memberships recorded nothing; views built from the log in ${report.viewSeconds.toFixed(1)} s`,
      ...(vacuumed ? ['', vacuumed] : []),
      '',
      `| scenario (${CONNECTIONS} connections, ${SOAK ?? seconds} s, users from --walk-start ${walkStarted}) | requests | req/s | p50 ms | p99 ms | failed |`,
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.scenario} | ${r.requests} | ${Math.round(r.reqPerSec)} | ${r.p50} | ${r.p99} | ${r.failed} |`),
      '',
      lag,
      memory,
      ...(upgrade ? [upgrade] : []),
    ];
    return lines.join('\n');
  } finally {
    await service.stop();
  }
}

/**
 * VACUUM (ANALYZE) of every table of the store's schema, before the scenarios. A PostgreSQL with
 * autovacuum on (its default) does this by itself after a bulk load and between runs; this
 * machine's has it off, and without it each run left dead rows of the last one's name changes
 * and the planner had no statistics of the freshly built views.
 */
async function vacuumSchema(url: string): Promise<string> {
  const schema = new URL(url).searchParams.get('schema') as string;
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  try {
    const [setting] = await sql<{ autovacuum: string }[]>`SELECT current_setting('autovacuum') AS autovacuum`;
    const started = performance.now();
    const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = ${schema}`;
    for (const { tablename } of tables) await sql`VACUUM (ANALYZE) ${sql(schema)}.${sql(tablename)}`;
    return `VACUUM (ANALYZE) of the schema's ${tables.length} tables before the scenarios: ${((performance.now() - started) / 1000).toFixed(1)} s (this server's autovacuum: ${setting?.autovacuum})`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function run(): Promise<void> {
  const autocannon = await loadAutocannon();
  const size = sizes();
  const seconds = Number(arg('seconds') ?? (flags.quick ? 2 : 10));
  const only = arg('only');
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (shared machine)`,
  );
  if (only !== 'postgres') {
    const reuse = process.argv.includes('--reuse') && existsSync(join(DATA_DIR, 'identity.db'));
    if (!reuse) {
      rmSync(DATA_DIR, { recursive: true, force: true });
      mkdirSync(DATA_DIR, { recursive: true });
    }
    console.log(await backend(autocannon, 'SQLite', `sqlite:${join(DATA_DIR, 'identity.db')}`, size, seconds, reuse));
  }
  // --pg-schema: a schema a previous load filled with the same sizes (apps/identity/src/load.ts
  // --store 'postgres://…?schema=<name>'); only the scenarios run, and the schema stays.
  const pgSchema = arg('pg-schema');
  if (only !== 'sqlite' && (await requirePostgres())) {
    const { url: schemaUrl, drop } = pgSchema ? { url: `${PG_URL}?schema=${pgSchema}`, drop: async () => {} } : await freshSchemaUrl();
    // --pool-size: the service's read connections (the store URL's poolSize; default 10).
    const poolSize = arg('pool-size');
    const url = poolSize === undefined ? schemaUrl : `${schemaUrl}&poolSize=${poolSize}`;
    try {
      console.log(await backend(autocannon, 'PostgreSQL', url, size, seconds, pgSchema !== undefined));
    } finally {
      await drop();
    }
  }
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
}
