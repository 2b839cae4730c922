/**
 * Requests made in the same turn of the event loop, answered by one statement. Under concurrent
 * commands each command's reads (its stream, its subjects' keys) otherwise cost a statement, a
 * socket write and a server wake-up each. The batch is sent once the turn's callbacks have run
 * (setImmediate), so few requests wait together on an idle process and many on a busy one; a
 * lone request costs the same one statement it did alone.
 */
export function coalescedPerTurn<Request, Answer>(run: (batch: Request[]) => Promise<Answer[]>): (request: Request) => Promise<Answer> {
  let waiting: Array<{ request: Request; resolve: (answer: Answer) => void; reject: (error: unknown) => void }> = [];
  const send = () => {
    const batch = waiting;
    waiting = [];
    run(batch.map((w) => w.request)).then(
      (answers) => {
        for (const [i, w] of batch.entries()) w.resolve(answers[i] as Answer);
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error);
      },
    );
  };
  return (request) =>
    new Promise<Answer>((resolve, reject) => {
      if (waiting.push({ request, resolve, reject }) === 1) setImmediate(send);
    });
}
