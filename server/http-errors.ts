/**
 * Turning anything thrown while handling a request into the one error reply shape, `{ error: { code,
 * message } }`, with the catalogue's HTTP status. Clients branch on `code`, so fastify's own errors are
 * mapped onto catalogue codes too, and nothing internal (stack, SQL) leaks into a 500's message.
 */
import type { ErrorReply } from '../protocol/api.js';
import { ERRORS, HearthError, type ErrorCode } from '../protocol/errors.js';

/** An error reply ready to send. */
export interface HttpErrorReply {
  readonly status: number;
  readonly body: ErrorReply;
  /** True for faults of the server (to be logged), false for faults of the request. */
  readonly internal: boolean;
}

/** fastify error codes that have a catalogue code of their own. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'HEARTH_E_UPDATE_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'HEARTH_E_CONTENT_TYPE',
};

function reply(code: ErrorCode, message: string): HttpErrorReply {
  const status = ERRORS[code].status;
  return { status, body: { error: { code, message } }, internal: status >= 500 };
}

/**
 * Whether `error` says the disk (or the database's size limit) is full: SQLite's SQLITE_FULL, the
 * system's ENOSPC, PostgreSQL's disk_full (53100). The store rolled the request's transaction back,
 * so nothing of it was kept or acknowledged, and the next request works once there is room again.
 */
export function isStorageFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === '53100';
}

/** The reply for a thrown value. */
export function toErrorReply(error: unknown): HttpErrorReply {
  if (isStorageFull(error)) {
    return reply('HEARTH_E_STORAGE_FULL', ERRORS.HEARTH_E_STORAGE_FULL.message);
  }
  if (error instanceof HearthError) {
    // Device-side codes carry status 0: thrown here, they are a server bug.
    if (error.status >= 400) return reply(error.code, error.message);
    return reply('HEARTH_E_INTERNAL', ERRORS.HEARTH_E_INTERNAL.message);
  }
  const fastifyError = error as { code?: unknown; statusCode?: unknown };
  const mapped =
    typeof fastifyError.code === 'string' ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return reply(mapped, ERRORS[mapped].message);
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Bad JSON, bad content length and the like: the client's fault, shown with fastify's message.
    const message = error instanceof Error ? error.message : ERRORS.HEARTH_E_BAD_REQUEST.message;
    return reply('HEARTH_E_BAD_REQUEST', message);
  }
  return reply('HEARTH_E_INTERNAL', ERRORS.HEARTH_E_INTERNAL.message);
}
