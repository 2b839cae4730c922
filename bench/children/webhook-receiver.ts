/**
 * Bench child: the webhook receiver the connectors deliver to, in its own process so that its
 * parsing and answering do not run on the writer's event loop. Prints its URL, then answers
 * every POST with 204 until killed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => response.writeHead(204).end());
});
server.listen(0, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
});
