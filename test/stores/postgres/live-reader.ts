/**
 * Child process for processes.test.ts: a live subscriber in its own process, from the start of
 * the log, woken by NOTIFY (its poll is 1 s away). Prints one line per event as it arrives:
 *   EV <position> <id>
 */
import { openPostgresStore } from '../../../src/postgres.js';

const url = process.argv[2] as string;
const store = await openPostgresStore({ url, poolSize: 2 });
process.stdout.write('READY\n');
for await (const event of store.subscribe()) process.stdout.write(`EV ${event.position} ${event.id}\n`);
