/**
 * Child process for the multi-process test. All racers meet at a barrier before the first round
 * and before every round after it, so each round really is a race between every process (an
 * unfair busy handler otherwise lets one process that holds the lock keep winning). Each round it
 * reads the shared stream's version, tries to create stream `race-<round>` with expectedVersion
 * 'no_stream', then appends to the shared stream at the version it read (which every racer read at
 * about the same moment, so usually one of them wins it).
 * Prints one JSON line at the end: { won: number[], sharedWins: number }.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { WrongExpectedVersionError } from '../../../../src/index.js';
import { openSqliteStore } from '../../../../src/sqlite.js';

const [file = '', roundsArg = '50', who = '?', racersArg = who] = process.argv.slice(2);
const racers = racersArg.split(',');

/** Waits until every racer reached the barrier called `name` (a marker file per racer). */
async function barrier(name: string): Promise<void> {
  writeFileSync(`${file}.${name}.${who}`, '');
  while (!racers.every((racer) => existsSync(`${file}.${name}.${racer}`))) await new Promise((resolve) => setTimeout(resolve, 1));
}

const store = await openSqliteStore({ path: file, busyTimeoutMs: 20_000 });
const won: number[] = [];
let sharedWins = 0;
for (let round = 0; round < Number(roundsArg); round++) {
  await barrier(`round-${round}`);
  const version = await store.streamVersion('shared');
  try {
    await store.append(`race-${round}`, [{ type: 'Claimed', data: { who, round } }], { expectedVersion: 'no_stream' });
    won.push(round);
  } catch (error) {
    if (!(error instanceof WrongExpectedVersionError)) throw error;
  }
  try {
    await store.append(
      'shared',
      [
        { type: 'Bumped', data: { who, from: version } },
        { type: 'Bumped2', data: { who } },
      ],
      { expectedVersion: version },
    );
    sharedWins++;
  } catch (error) {
    if (!(error instanceof WrongExpectedVersionError)) throw error;
  }
}
await store.close();
process.stdout.write(`${JSON.stringify({ won, sharedWins })}\n`);
