/**
 * Retention and deletion on NATS JetStream (docs/lifecycle.md#retention-and-deletion).
 *
 * - Each stream's LifecycleRecord is the latest message on `<prefix>_life.<stream id>` in
 *   `<NAME>_LIFECYCLES`. A store keeps all of them in memory through one ordered consumer (last
 *   per subject, then live): its own changes apply at once, another process's within the
 *   consumer's delivery delay (milliseconds).
 * - A delete also writes a marker message (no events, header Logline-Deleted) on the stream's
 *   own log subject, published with the stream's last sequence as the expected one: the
 *   expected-version check is atomic, and a tombstone is the stream's last message for good, so
 *   every later append (from any process) finds it and fails with StreamDeleted.
 * - A scavenge deletes the log messages whose events are all hidden, except each stream's last
 *   message: it holds the stream's version (and the sequence appends expect). One message is one
 *   append, so an append with a visible event keeps its hidden ones on disk (hidden all the same).
 *   The event-id index keeps its entries (ids only); an id whose event was removed is no longer
 *   recognised as a retry.
 */
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { LifecycleRecord } from '../../core/retention.js';
import { decodeToken, type NatsLayout } from './schema.js';

type JetStreamModule = typeof import('@nats-io/jetstream');

/** Every stream's LifecycleRecord, kept current by one ordered consumer. */
export class LifecycleView {
  /** With the sequence of the message that set it: an older delivery never overwrites a newer record. */
  private readonly records = new Map<string, { record: LifecycleRecord; seq: number }>();
  private messages: ConsumerMessages | undefined;
  private started: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly layout: NatsLayout,
    private readonly jetstreamModule: JetStreamModule,
  ) {}

  /** Resolves once the records as they stood when first asked are loaded. */
  ready(): Promise<void> {
    this.started ??= this.start().catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  get(stream: string): LifecycleRecord | undefined {
    return this.records.get(stream)?.record;
  }

  /** A record stored at `seq` (this process's own change is seen at once; the consumer delivers it again later). */
  set(stream: string, record: LifecycleRecord, seq: number): void {
    const known = this.records.get(stream);
    if (!known || known.seq <= seq) this.records.set(stream, { record, seq });
  }

  entries(): [string, LifecycleRecord][] {
    return [...this.records.entries()].map(([stream, { record }]) => [stream, record]);
  }

  stop(): void {
    this.stopped = true;
    this.messages?.stop();
  }

  private async start(): Promise<void> {
    const { messages: stored } = (await this.jsm.streams.info(this.layout.lifecycles)).state;
    const consumer = await this.js.consumers.get(this.layout.lifecycles, {
      deliver_policy: this.jetstreamModule.DeliverPolicy.LastPerSubject,
    });
    const messages = await consumer.consume();
    this.messages = messages;
    const start = this.layout.prefix.length + '_life.'.length;
    let caughtUp: () => void = () => {};
    const loaded = new Promise<void>((resolve) => {
      caughtUp = resolve;
    });
    if (stored === 0) caughtUp();
    void (async () => {
      try {
        for await (const m of messages) {
          this.set(decodeToken(m.subject.slice(start)), m.json() as LifecycleRecord, m.seq);
          if (m.info.pending === 0) caughtUp();
        }
      } finally {
        // Ended by anything but stop() (the consumer was lost): the next ready() starts it again.
        if (!this.stopped && this.messages === messages) this.started = undefined;
      }
    })().catch(() => {});
    await loaded;
  }
}
