/**
 * npm run bench [-- <suite>…] [--quick] [--large] (identity takes more: see bench/identity.ts)
 * Runs the named suites (default: all) one after another; each prints Markdown tables.
 */
const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  sqlite: () => import('./sqlite.js'),
  postgres: () => import('./postgres.js'),
  'postgres-procs': () => import('./postgres-procs.js'),
  snapshots: () => import('./snapshots.js'),
  projections: () => import('./projections.js'),
  http: () => import('./http.js'),
  nats: () => import('./nats.js'),
  grpc: () => import('./grpc.js'),
  connectors: () => import('./connectors.js'),
  'personal-data': () => import('./personal-data.js'),
  category: () => import('./category.js'),
  identity: () => import('./identity.js'),
};

// Flags that take a value: that value is not a suite name.
const VALUE_FLAGS = [
  '--users',
  '--only',
  '--scenarios',
  '--seconds',
  '--lag-rate',
  '--lookup-rate',
  '--search-rate',
  '--soak',
  '--pg-schema',
  '--upgrade-rate',
  '--walk-start',
  '--pool-size',
];
const asked = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--') && !VALUE_FLAGS.includes(all[i - 1] ?? ''));
const names = asked.length ? asked : Object.keys(suites);
for (const name of names) {
  const load = suites[name];
  if (!load) {
    console.error(`unknown bench suite '${name}'; known: ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}  (node ${process.version}, ${new Date().toISOString()})`);
  await (await load()).run();
}
