/**
 * Child process for the multi-process test: for each round, tries to create stream `race-<round>`
 * with expectedVersion 'no_stream' and appends to a shared stream with the version it read.
 * Prints one JSON line at the end: { won: number[], sharedWins: number }.
 */
import { WrongExpectedVersionError } from '../../../../src/index.js';
import { openSqliteStore } from '../../../../src/sqlite.js';

const [file = '', roundsArg = '50', who = '?'] = process.argv.slice(2);
const store = await openSqliteStore({ path: file, busyTimeoutMs: 20_000 });
const won: number[] = [];
let sharedWins = 0;
for (let round = 0; round < Number(roundsArg); round++) {
  try {
    await store.append(`race-${round}`, [{ type: 'Claimed', data: { who, round } }], { expectedVersion: 'no_stream' });
    won.push(round);
  } catch (error) {
    if (!(error instanceof WrongExpectedVersionError)) throw error;
  }
  const version = await store.streamVersion('shared');
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
