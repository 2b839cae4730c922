/**
 * Bench child: `count` live webhook connectors over the store at `url`, in their own process
 * (the topology docs/connectors.md recommends when append latency matters). Prints "ready" once
 * they run; on SIGTERM prints their lag, stops them and exits.
 */
import { type ConnectorHandle, httpSink, startConnector } from '../../src/connectors.js';
import { openStore } from '../../src/index.js';

const [url = '', webhookUrl = '', count = '8'] = process.argv.slice(2);
const store = await openStore(url);
const live: ConnectorHandle[] = [];
for (let k = 0; k < Number(count); k++) {
  live.push(
    await startConnector(store, {
      name: `remote-${k}`,
      sink: httpSink({ url: webhookUrl, connector: `remote-${k}` }),
      source: { from: 'end' },
    }),
  );
}
console.log('ready');
process.once('SIGTERM', async () => {
  const lag = await Promise.all(live.map(async (c) => (await c.progress()).lag));
  console.log(`lag ${lag.join(', ')}`);
  await Promise.all(live.map((c) => c.stop()));
  await store.close();
  process.exit(0);
});
