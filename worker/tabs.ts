/**
 * Coordination between tabs of the same site. Every tab runs its own worker over the same IndexedDB
 * database, so two tabs could fine-tune on the same history and upload twice in a round, or serve
 * different model versions. The Web Locks API lets one tab at a time train and upload; a
 * BroadcastChannel tells the other tabs when new weights were adopted so they load them (from the
 * shared cache, not the network).
 */
import { createLogger } from '../protocol/logger.js';
import { capabilities } from './capabilities.js';

const log = createLogger('tabs');

/** Name of the Web Lock held while a tab trains and uploads. */
export const TRAINER_LOCK = 'hearth-trainer';
/** Name of the BroadcastChannel the tabs' workers share. */
export const TAB_CHANNEL = 'hearth';

/** What a tab announces after adopting new weights. */
export interface ModelAnnouncement {
  readonly type: 'model';
  /** The global version now served. */
  readonly version: number;
  /** True when the weights are the device's fine-tuned copy of that version (kept in the cache). */
  readonly local: boolean;
}

/** The slice of the Web Locks API the trainer lock uses. */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { ifAvailable: boolean },
    callback: (lock: unknown) => Promise<T> | T,
  ): Promise<T>;
}

/** This worker's Web Locks, when it has them (capabilities.ts), else null. */
export function workerLocks(): LockManagerLike | null {
  if (!capabilities().webLocks) return null;
  return (globalThis as unknown as { navigator: { locks: LockManagerLike } }).navigator.locks;
}

/**
 * Runs `task` while holding the trainer lock of `locks`. When another tab holds it, `busy` answers
 * at once instead of queueing: a second training on the same history would add nothing. Without Web
 * Locks (older browsers, Node) the task simply runs; the per-round meta check still stops double
 * uploads most of the time.
 */
export async function withTrainerLock<T>(
  task: () => Promise<T>,
  busy: () => T,
  locks: LockManagerLike | null,
): Promise<T> {
  if (!locks) return task();
  return locks.request(TRAINER_LOCK, { ifAvailable: true }, (lock) => (lock ? task() : busy()));
}

function isAnnouncement(data: unknown): data is ModelAnnouncement {
  const d = data as Partial<ModelAnnouncement> | null;
  return d?.type === 'model' && Number.isInteger(d.version) && typeof d.local === 'boolean';
}

/** This tab's end of the channel; a no-op where BroadcastChannel does not exist. */
export class TabChannel {
  private readonly channel: BroadcastChannel | null;

  constructor(onAnnouncement: (announcement: ModelAnnouncement) => void) {
    if (!capabilities().broadcastChannel) {
      this.channel = null;
      return;
    }
    this.channel = new BroadcastChannel(TAB_CHANNEL);
    this.channel.onmessage = (event: MessageEvent) => {
      if (isAnnouncement(event.data)) onAnnouncement(event.data);
    };
    // Node keeps its event loop alive for an open channel; a worker's lifetime is the page's anyway.
    (this.channel as { unref?: () => void }).unref?.();
  }

  /** Tells the other tabs which weights this tab now serves (never sent to this tab itself). */
  announce(version: number, local: boolean): void {
    const message: ModelAnnouncement = { type: 'model', version, local };
    try {
      this.channel?.postMessage(message);
    } catch (error) {
      log.warn('could not announce the model', error);
    }
  }

  /** Stops listening (the engine is being replaced). */
  close(): void {
    this.channel?.close();
  }
}
